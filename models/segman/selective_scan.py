"""Selective scan (Mamba's S6 recurrence) and VMamba's four-direction cross-scan, in pure PyTorch.

The selective scan follows Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces" (2023),
with the calling convention of its ``selective_scan_fn`` as VMamba's SS2D uses it (Liu et al., "VMamba: Visual State
Space Model", NeurIPS 2024), which is also how SegMAN (Fu et al., CVPR 2025) calls it in its state-space module:

    delta <- softplus(delta + delta_bias)            (each step optional)
    h_t   = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t   = <C_t, h_t> + D * u_t

per channel ``d`` with a state of ``d_state`` entries. ``B`` and ``C`` come in ``groups`` groups along the channel axis:
channel ``d`` uses group ``d // (D_in // groups)`` (SS2D stacks its four scan directions as four groups).

:func:`cross_scan` / :func:`cross_merge` are SS2D's four traversals of an (H, W) map (row-major, column-major and
both reversed) and their adjoint, as SegMAN's encoder uses them around the scan.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from core.measure import count_kernel_flops

__all__ = ["cross_merge", "cross_scan", "selective_scan", "selective_scan_reference"]


def _prepare(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, torch.dtype]:
    """Validate shapes; return u, delta (N, G, D_in/G, L), A (G, D_in/G, n), B, C (N, G, 1, n, L) in the compute dtype."""
    if u.dim() != 3:
        raise ValueError(f"u must be 3-D (N, D_in, L), got shape {tuple(u.shape)}")
    if delta.shape != u.shape:
        raise ValueError(f"delta shape {tuple(delta.shape)} differs from u shape {tuple(u.shape)}")
    batch, channels, length = u.shape
    if A.dim() != 2 or A.shape[0] != channels:
        raise ValueError(f"A must be (D_in, d_state) = ({channels}, d_state), got shape {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("complex A is not supported")
    d_state = A.shape[1]
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    for name, x in (("B", B), ("C", C)):
        if x.dim() != 4 or x.shape[0] != batch or x.shape[2:] != (d_state, length):
            raise ValueError(
                f"{name} must be (N, groups, d_state, L) = ({batch}, groups, {d_state}, {length}), got {tuple(x.shape)}"
            )
    groups = B.shape[1]
    if C.shape[1] != groups:
        raise ValueError(f"B has {groups} groups but C has {C.shape[1]}")
    if channels % groups:
        raise ValueError(f"D_in {channels} is not divisible by the number of groups {groups}")
    if D is not None and D.shape != (channels,):
        raise ValueError(f"D must be (D_in,) = ({channels},), got shape {tuple(D.shape)}")
    if delta_bias is not None and delta_bias.shape != (channels,):
        raise ValueError(f"delta_bias must be (D_in,) = ({channels},), got shape {tuple(delta_bias.shape)}")

    out_dtype = u.dtype
    dtype = torch.promote_types(u.dtype, torch.float32)
    u, delta = u.to(dtype), delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    per_group = channels // groups
    u = u.reshape(batch, groups, per_group, length)
    delta = delta.reshape(batch, groups, per_group, length)
    A = A.to(dtype).reshape(groups, per_group, d_state)
    B = B.to(dtype).unsqueeze(2)
    C = C.to(dtype).unsqueeze(2)
    return u, delta, A, B, C, out_dtype


def _recurrence(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """The explicit step-by-step recurrence on the tensors of :func:`_prepare`; ``y`` ``(N, G, D_in/G, L)``."""
    decay = torch.exp(delta.unsqueeze(-2) * A.unsqueeze(-1))  # (N, G, Dg, n, L)
    drive = (delta * u).unsqueeze(-2) * B  # (N, G, Dg, n, L)
    h = torch.zeros_like(decay[..., 0])
    ys = []
    for t in range(u.shape[-1]):
        h = decay[..., t] * h + drive[..., t]
        ys.append((h * C[..., t]).sum(-1))
    return torch.stack(ys, dim=-1)


def _segment_sums(x: Tensor) -> Tensor:
    """``out[..., t, s] = x[..., s+1] + ... + x[..., t]`` for ``s <= t`` and ``-inf`` above the diagonal.

    Built by a cumulative sum down the columns of a strictly lower-triangular copy of ``x``, so every entry is a direct
    sum of the terms it covers (no difference of two long prefix sums, hence no cancellation).
    """
    size = x.shape[-1]
    below = torch.ones(size, size, dtype=torch.bool, device=x.device).tril(-1)
    sums = torch.where(below, x.unsqueeze(-1), 0.0).cumsum(dim=-2)
    return sums.masked_fill(~below.logical_or(torch.eye(size, dtype=torch.bool, device=x.device)), float("-inf"))


def _chunked(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk_size: int) -> Tensor:
    """The chunked closed form (see :func:`selective_scan`) on the tensors of :func:`_prepare`."""
    length = u.shape[-1]
    size = min(chunk_size, length)
    chunks = -(-length // size)
    pad = chunks * size - length  # padded steps have delta = 0: no decay, no input, outputs dropped
    log_decay = (F.pad(delta, (0, pad)).unsqueeze(-2) * A.unsqueeze(-1)).unflatten(-1, (chunks, size))
    drive = (F.pad(delta * u, (0, pad)).unsqueeze(-2) * F.pad(B, (0, pad))).unflatten(-1, (chunks, size))
    # states of every chunk started from zero: (N, G, D_in/G, d_state, chunks, T); a product and a sum rather than a
    # matmul, so that torch.utils.flop_counter sees none of it (the scan reports its kernel's count instead)
    states = (torch.exp(_segment_sums(log_decay)) * drive.unsqueeze(-2)).sum(-1)
    decay_from_start = torch.exp(log_decay.cumsum(-1))
    carry = [torch.zeros_like(states[..., 0, 0])]
    for i in range(chunks - 1):
        carry.append(decay_from_start[..., i, -1] * carry[-1] + states[..., i, -1])
    states = states + decay_from_start * torch.stack(carry, dim=-1).unsqueeze(-1)
    return (states.flatten(-2)[..., :length] * C).sum(-2)


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    chunk_size: int | None = 16,
) -> Tensor:
    """Selective scan (Mamba, Gu & Dao 2023), chunked: closed form inside all chunks at once, then the state carried
    from chunk to chunk; ``chunk_size=None`` runs the explicit step-by-step recurrence instead (the reference).

    The chunked closed form follows the segment-sum formulation of Mamba-2 (Dao & Gu 2024). Inside a chunk of ``T``
    steps ``h_t = exp(S_t) h_0 + sum_{s <= t} exp(S_t - S_s) delta_s B_s u_s`` with ``S`` the running sum of
    ``delta * A``; the decays ``S_t - S_s`` are summed directly over ``(s, t]``. The chunk-local terms are computed for
    every chunk at once (an element-wise product and a sum, which ``torch.utils.flop_counter`` does not count); only the
    carry of the ``(N, D_in, d_state)`` state runs as a Python loop, one element-wise step per chunk (``L / T`` steps
    instead of ``L``). It does about ``T`` times the arithmetic of the recurrence; fewer sequential steps pay off where
    each step is a kernel launch (GPUs). Under :func:`core.measure.count_flops` it reports the CUDA kernel's count as
    VMamba's fvcore handle gives it (``9 N L D_in d_state + N D_in L`` multiply-adds with ``D``).

    Args:
        u: input ``(N, D_in, L)``, any float dtype (computed in float32 at least).
        delta: step sizes ``(N, D_in, L)``.
        A: real state matrix diagonal ``(D_in, d_state)``.
        B: input projection ``(N, groups, d_state, L)`` (or ``(N, d_state, L)`` for one group); ``D_in`` must be
            divisible by ``groups``.
        C: output projection, shaped as ``B``.
        D: optional skip ``(D_in,)``.
        delta_bias: optional ``(D_in,)`` added to ``delta`` before the softplus.
        delta_softplus: apply softplus to ``delta``.
        chunk_size: steps per chunk ``T >= 1``; work and memory (forward and autograd) grow as
            ``N * D_in * d_state * L * T``. None: the step-by-step recurrence (``L`` sequential steps).

    Returns:
        ``y`` ``(N, D_in, L)`` in ``u``'s dtype.

    Raises:
        ValueError: on any shape mismatch (the culprit and expected shape named), a complex ``A`` or
            ``chunk_size < 1``.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    u, delta, A, B, C, out_dtype = _prepare(u, delta, A, B, C, D, delta_bias, delta_softplus)
    # VMamba's fvcore handle of the CUDA kernel (flops_selective_scan_fn): 9 B L D N + B D L (with D), as MACs
    batch, groups, per_group, length = u.shape
    macs = 9 * batch * length * groups * per_group * A.shape[-1] + (
        batch * groups * per_group * length if D is not None else 0
    )
    count_kernel_flops(2 * macs)
    y = _recurrence(u, delta, A, B, C) if chunk_size is None else _chunked(u, delta, A, B, C, chunk_size)
    if D is not None:
        y = y + D.to(y.dtype).reshape(u.shape[1], u.shape[2], 1) * u
    return y.flatten(1, 2).to(out_dtype)


def selective_scan_reference(*args, **kwargs) -> Tensor:
    """The explicit step-by-step recurrence: :func:`selective_scan` with ``chunk_size=None`` (same arguments)."""
    return selective_scan(*args, **kwargs, chunk_size=None)


def cross_scan(x: Tensor) -> Tensor:
    """VMamba SS2D's four traversals of a feature map (Liu et al. 2024), in SegMAN's order.

    Args:
        x: ``(N, C, H, W)``.

    Returns:
        ``(N, 4, C, H * W)``: row-major, column-major, reversed row-major, reversed column-major.

    Raises:
        ValueError: when ``x`` is not 4-D.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    rows = x.flatten(2)
    cols = x.transpose(2, 3).flatten(2)
    return torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)


def cross_merge(ys: Tensor) -> Tensor:
    """Adjoint of :func:`cross_scan`: map the four sequences back to row-major order and sum them (VMamba SS2D).

    Args:
        ys: ``(N, 4, C, H, W)``: the four ``(N, C, H * W)`` sequences of :func:`cross_scan`, each viewed as
            ``(H, W)`` as SegMAN passes them (the view only carries H and W, needed to undo the column-major order).

    Returns:
        ``(N, C, H * W)`` in row-major order; ``cross_merge(cross_scan(x).view(N, 4, C, H, W)) == 4 * x.flatten(2)``.

    Raises:
        ValueError: when ``ys`` is not ``(N, 4, C, H, W)``.
    """
    if ys.dim() != 5 or ys.shape[1] != 4:
        raise ValueError(f"ys must be (N, 4, C, H, W), got shape {tuple(ys.shape)}")
    batch, _, channels, height, width = ys.shape
    seq = ys.flatten(3)
    rows = seq[:, 0] + seq[:, 2].flip(-1)
    cols = seq[:, 1] + seq[:, 3].flip(-1)
    cols = cols.reshape(batch, channels, width, height).transpose(2, 3).flatten(2)
    return rows + cols
