"""SegMAN building blocks: neighbourhood attention equals masked full attention built query by query, the chunked
selective scan equals the step-by-step recurrence, SS2D cross-scan/merge are each other's adjoint; gradients checked."""

import itertools

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.measure import count_flops
from models.segman import (
    cross_merge,
    cross_scan,
    na2d,
    na2d_av,
    na2d_qk,
    neighborhood_indices,
    selective_scan,
    selective_scan_reference,
)


def window_1d(length: int, i: int, k: int, d: int) -> list[int]:
    """Keys of query ``i``: among all runs of ``k`` consecutive positions of i's dilation sub-grid, the run whose
    centre is closest to ``i`` (the centred one inside the map, the one nearest the border otherwise)."""
    grid = [p for p in range(length) if p % d == i % d]
    runs = [grid[s : s + k] for s in range(len(grid) - k + 1)]
    return min(runs, key=lambda run: abs(run[k // 2] - i))


def masked_full_attention(q, k, v, kernel, dilation, rpb, scale):
    """Softmax attention of every query over all H*W keys with non-neighbours masked out, one query at a time.

    q, k, v: (N, H, W, heads, dim). Returns the output (N, H, W, heads, dim) and the window logits
    (N, heads, H, W, kh*kw) in row-major window order."""
    n, height, width, heads, _ = q.shape
    out = torch.zeros_like(q)
    logits = q.new_zeros(n, heads, height, width, kernel[0] * kernel[1])
    keys = k.reshape(n, height * width, heads, -1)
    values = v.reshape(n, height * width, heads, -1)
    for i, j in itertools.product(range(height), range(width)):
        rows, cols = window_1d(height, i, kernel[0], dilation[0]), window_1d(width, j, kernel[1], dilation[1])
        scores = torch.einsum("nhc,nlhc->nhl", q[:, i, j] * scale, keys)  # (N, heads, H*W)
        mask = torch.full((height * width,), float("-inf"), dtype=q.dtype)
        bias = torch.zeros(heads, height * width, dtype=q.dtype)
        for r in rows:
            for c in cols:
                mask[r * width + c] = 0.0
                if rpb is not None:
                    bias[:, r * width + c] = rpb[
                        :, kernel[0] - 1 + (r - i) // dilation[0], kernel[1] - 1 + (c - j) // dilation[1]
                    ]
        scores = scores + bias + mask
        logits[:, :, i, j] = torch.stack([scores[..., r * width + c] for r in rows for c in cols], dim=-1)
        out[:, i, j] = torch.einsum("nhl,nlhc->nhc", scores.softmax(-1), values)
    return out, logits


NA_CASES = [
    # (H, W, kernel, dilation)
    (7, 9, (3, 3), (1, 1)),
    (7, 9, (5, 5), (1, 1)),
    (7, 9, (3, 3), (2, 2)),
    (11, 10, (5, 5), (2, 2)),
    (7, 9, (3, 5), (2, 1)),
    (6, 7, (5, 7), (1, 1)),  # kernel as large as the map along W
]


class TestNeighborhoodAttention:
    @pytest.mark.parametrize("height,width,kernel,dilation", NA_CASES)
    @pytest.mark.parametrize("with_rpb", [False, True])
    @pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
    def test_equals_masked_full_attention(self, height, width, kernel, dilation, with_rpb, dtype, tol):
        torch.manual_seed(0)
        n, heads, dim = 2, 3, 4
        q, k, v = (torch.randn(n, height, width, heads, dim, dtype=dtype) for _ in range(3))
        rpb = torch.randn(heads, 2 * kernel[0] - 1, 2 * kernel[1] - 1, dtype=dtype) if with_rpb else None
        scale = dim**-0.5
        expected, expected_logits = masked_full_attention(q, k, v, kernel, dilation, rpb, scale)

        out = na2d(q, k, v, kernel, dilation, rpb=rpb)  # heads-last, default scale dim ** -0.5
        assert out.shape == q.shape and out.dtype == dtype
        assert (out - expected).abs().max() < tol

        # heads-first unfused path, as SegMAN calls it: logits, softmax, weighted values
        qh, kh, vh = (x.permute(0, 3, 1, 2, 4) for x in (q, k, v))
        logits = na2d_qk(qh * scale, kh, kernel, dilation, rpb=rpb)
        assert logits.shape == (n, heads, height, width, kernel[0] * kernel[1])
        assert (logits - expected_logits).abs().max() < tol
        out_hf = na2d_av(logits.softmax(-1), vh, kernel, dilation)
        assert (out_hf.permute(0, 2, 3, 1, 4) - expected).abs().max() < tol

    def test_window_is_centred_inside_and_shifted_at_borders(self):
        assert neighborhood_indices(7, 3).tolist() == [
            [0, 1, 2],
            [0, 1, 2],
            [1, 2, 3],
            [2, 3, 4],
            [3, 4, 5],
            [4, 5, 6],
            [4, 5, 6],
        ]
        # dilation 2: two sub-grids {0,2,4,6,8} and {1,3,5,7}
        assert neighborhood_indices(9, 3, 2).tolist()[7] == [3, 5, 7]
        assert neighborhood_indices(9, 3, 2).tolist()[8] == [4, 6, 8]
        assert neighborhood_indices(9, 3, 2).tolist()[1] == [1, 3, 5]

    def test_gradcheck(self):
        torch.manual_seed(0)
        shape = (1, 5, 6, 2, 3)  # (N, H, W, heads, dim)
        q, k, v = (torch.randn(shape, dtype=torch.float64, requires_grad=True) for _ in range(3))
        rpb = torch.randn(2, 5, 5, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda q, k, v, b: na2d(q, k, v, 3, (1, 2), rpb=b), (q, k, v, rpb))

    @pytest.mark.parametrize(
        "kernel,dilation,match",
        [
            (9, 1, "kernel size 9 x dilation 1 = 9 exceeds the feature map height 7"),
            (3, 3, "kernel size 3 x dilation 3 = 9 exceeds the feature map height 7"),
            (4, 1, "positive odd"),
            (3, 0, "dilation must be >= 1"),
        ],
    )
    def test_bad_window_raises(self, kernel, dilation, match):
        q = torch.zeros(1, 2, 7, 9, 4)
        with pytest.raises(ValueError, match=match):
            na2d_qk(q, q, kernel, dilation)

    def test_bad_shapes_raise(self):
        q = torch.zeros(1, 2, 7, 9, 4)
        with pytest.raises(ValueError, match="rpb shape"):
            na2d_qk(q, q, 3, rpb=torch.zeros(2, 3, 3))
        with pytest.raises(ValueError, match="key shape"):
            na2d_qk(q, q[..., :3], 3)
        with pytest.raises(ValueError, match="attn shape"):
            na2d_av(torch.zeros(1, 2, 7, 9, 8), q, 3)
        with pytest.raises(ValueError, match="5-D"):
            na2d(q[0], q[0], q[0], 3)


def scan_inputs(n, channels, length, d_state, groups, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(n, channels, length, generator=gen, dtype=dtype)
    delta = torch.randn(n, channels, length, generator=gen, dtype=dtype)
    A = -torch.exp(torch.randn(channels, d_state, generator=gen, dtype=dtype))  # negative, as Mamba's -exp(A_log)
    B = torch.randn(n, groups, d_state, length, generator=gen, dtype=dtype)
    C = torch.randn(n, groups, d_state, length, generator=gen, dtype=dtype)
    D = torch.randn(channels, generator=gen, dtype=dtype)
    bias = torch.randn(channels, generator=gen, dtype=dtype)
    return u, delta, A, B, C, D, bias


SCAN_SHAPES = [
    # (N, D_in, L, d_state, groups)
    (2, 4, 17, 3, 1),
    (1, 8, 64, 1, 4),  # SegMAN: d_state 1, four directions as four groups
    (2, 6, 33, 2, 3),
    (1, 2, 1, 4, 2),
]


class TestSelectiveScan:
    @pytest.mark.parametrize("shape", SCAN_SHAPES)
    @pytest.mark.parametrize(
        "with_d,with_bias,softplus", [(False, False, False), (True, True, True), (True, False, True)]
    )
    @pytest.mark.parametrize("chunk_size", [1, 5, 32])
    @pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
    def test_chunked_equals_recurrence(self, shape, with_d, with_bias, softplus, chunk_size, dtype, tol):
        u, delta, A, B, C, D, bias = scan_inputs(*shape, dtype=dtype)
        if not softplus:
            delta = delta.abs() * 0.5  # positive step sizes without softplus
        args = (u, delta, A, B, C, D if with_d else None, bias if with_bias else None, softplus)
        expected = selective_scan_reference(*args)
        out = selective_scan(*args, chunk_size=chunk_size)
        assert out.shape == u.shape and out.dtype == dtype
        assert (out - expected).abs().max() < tol * max(1.0, expected.abs().max().item())

    def test_reference_matches_hand_computed_recurrence(self):
        # one channel, one state: h_t = exp(dt*a) h_{t-1} + dt*b_t*u_t, y_t = c_t h_t + d u_t
        u, dt, b, c = [1.0, -2.0, 0.5], [0.1, 0.3, 0.2], [1.0, 2.0, -1.0], [0.5, 1.0, 2.0]
        a, d = -1.5, 0.7
        h, expected = 0.0, []
        for t in range(3):
            h = torch.exp(torch.tensor(dt[t] * a, dtype=torch.float64)).item() * h + dt[t] * b[t] * u[t]
            expected.append(c[t] * h + d * u[t])
        f64 = dict(dtype=torch.float64)
        out = selective_scan_reference(
            torch.tensor([[u]], **f64),
            torch.tensor([[dt]], **f64),
            torch.tensor([[a]], **f64),
            torch.tensor([[b]], **f64),  # (N, d_state, L): one group
            torch.tensor([[[c]]], **f64),
            torch.tensor([d], **f64),
        )
        assert torch.allclose(out[0, 0], torch.tensor(expected, **f64), rtol=0, atol=1e-14)

    def test_gradients_equal_the_recurrence_and_gradcheck(self):
        inputs = [x.requires_grad_() for x in scan_inputs(1, 4, 9, 2, 2)]
        fn = lambda *xs: selective_scan(*xs, delta_softplus=True, chunk_size=4)
        assert torch.autograd.gradcheck(fn, inputs)
        grads = torch.autograd.grad(fn(*inputs).square().sum(), inputs)
        ref = torch.autograd.grad(selective_scan_reference(*inputs, delta_softplus=True).square().sum(), inputs)
        assert max((g - r).abs().max().item() for g, r in zip(grads, ref)) < 1e-10

    def test_half_precision_computes_in_float32(self):
        args = [x.to(torch.bfloat16) for x in scan_inputs(1, 4, 10, 2, 1)]
        out = selective_scan(*args[:5], delta_softplus=True)
        assert out.dtype == torch.bfloat16
        expected = selective_scan_reference(*[x.float() for x in args[:5]], delta_softplus=True)
        assert (out.float() - expected).abs().max() < 0.05

    def test_bad_shapes_raise(self):
        u, delta, A, B, C, D, _ = scan_inputs(2, 6, 5, 2, 3)
        with pytest.raises(ValueError, match="not divisible by the number of groups 4"):
            selective_scan(u, delta, A, B[:, :1].expand(2, 4, 2, 5), C[:, :1].expand(2, 4, 2, 5))
        with pytest.raises(ValueError, match="delta shape"):
            selective_scan(u, delta[..., :4], A, B, C)
        with pytest.raises(ValueError, match="A must be"):
            selective_scan(u, delta, A[:5], B, C)
        with pytest.raises(ValueError, match="C must be"):
            selective_scan(u, delta, A, B, C[..., :4])
        with pytest.raises(ValueError, match="D must be"):
            selective_scan(u, delta, A, B, C, D=D[:2])
        with pytest.raises(ValueError, match="chunk_size"):
            selective_scan(u, delta, A, B, C, chunk_size=0)


class TestCrossScan:
    def test_directions(self):
        x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)
        ys = cross_scan(x)
        assert ys.shape == (2, 4, 3, 20)
        assert torch.equal(ys[:, 0], x.flatten(2))  # row-major
        assert torch.equal(ys[:, 1, :, 2 * 4 + 3], x[:, :, 3, 2])  # column-major: position w * H + h
        assert torch.equal(ys[:, 2], ys[:, 0].flip(-1))
        assert torch.equal(ys[:, 3], ys[:, 1].flip(-1))

    @pytest.mark.parametrize("height,width", [(4, 5), (1, 7), (6, 6)])
    def test_merge_of_scan_is_four_times_the_input_and_merge_is_the_adjoint(self, height, width):
        torch.manual_seed(0)
        x = torch.randn(2, 3, height, width, dtype=torch.float64)
        ys = cross_scan(x)
        assert torch.equal(cross_merge(ys.view(2, 4, 3, height, width)), 4 * x.flatten(2))
        y = torch.randn(2, 4, 3, height, width, dtype=torch.float64)
        lhs, rhs = (ys * y.flatten(3)).sum(), (x.flatten(2) * cross_merge(y)).sum()
        assert abs(lhs - rhs) < 1e-12

    def test_gradcheck_and_bad_shapes(self):
        x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: cross_merge(cross_scan(t).view(1, 4, 2, 3, 4) ** 2), (x,))
        with pytest.raises(ValueError, match="4-D"):
            cross_scan(x[0])
        with pytest.raises(ValueError, match=r"\(N, 4, C, H, W\)"):
            cross_merge(torch.zeros(1, 3, 2, 3, 4))


class _Call(nn.Module):
    """``fn`` as a module, for :func:`core.measure.count_flops`."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class TestKernelFlops:
    """Under :func:`core.measure.count_flops` the pure-PyTorch kernels add their CUDA kernels' counts (NATTEN's and
    VMamba's fvcore handles, 1 MAC = 2 FLOPs), and ``FlopCounterMode`` sees none of their own ops (no double count)."""

    def test_neighbourhood_attention_counts_one_mac_per_term_of_each_product(self):
        q = torch.randn(2, 3, 9, 10, 4)  # (N, heads, H, W, head_dim), 3x5 windows: 15 keys per query
        attend = _Call(lambda x: na2d_av(na2d_qk(x, x, (3, 5)).softmax(-1), x, (3, 5)))
        assert count_flops(attend, q) == 2 * (2 * 3 * 9 * 10 * 4 * 15) * 2  # q.k and a.v
        with FlopCounterMode(display=False) as counter:
            attend(q)
        assert counter.get_total_flops() == 0

    @pytest.mark.parametrize("chunk_size", [None, 2, 16])
    def test_selective_scan_counts_vmamba_formula(self, chunk_size):
        u, delta, A, B, C, D, _ = scan_inputs(2, 6, 5, 2, 3)  # N=2, D_in=6, L=5, d_state=2, 3 groups
        with_d = _Call(lambda x: selective_scan(x, delta, A, B, C, D, chunk_size=chunk_size))
        without_d = _Call(lambda x: selective_scan(x, delta, A, B, C, chunk_size=chunk_size))
        assert count_flops(with_d, u) == 2 * (9 * 2 * 5 * 6 * 2 + 2 * 6 * 5)
        assert count_flops(without_d, u) == 2 * (9 * 2 * 5 * 6 * 2)
        with FlopCounterMode(display=False) as counter:
            with_d(u)
        assert counter.get_total_flops() == 0
