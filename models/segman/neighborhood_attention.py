"""2-D neighbourhood attention in pure PyTorch (CPU and GPU, any float dtype, autograd).

Follows Hassani et al., "Neighborhood Attention Transformer", CVPR 2023 (NAT) and the semantics of the NATTEN
library's ``na2d_qk`` / ``na2d_av`` / ``na2d``: every query at (i, j) attends to a window of ``kh x kw`` keys centred on
it; near the borders the window is shifted inward so that it always holds ``kh x kw`` keys. With dilation ``d`` the
feature map splits into ``d x d`` interleaved sub-grids (positions with equal ``i % d``, ``j % d``) and neighbourhood
attention runs inside each sub-grid. The optional relative positional bias ``rpb`` of shape
``(heads, 2*kh - 1, 2*kw - 1)`` adds ``rpb[h, kh - 1 + (i' - i) / d, kw - 1 + (j' - j) / d]`` to the logit of query
(i, j) and key (i', j'), as in NAT.

Layouts match SegMAN (Fu et al., CVPR 2025), which calls NATTEN: the unfused path (``na2d_qk``, softmax, ``na2d_av``)
uses heads-first tensors ``(N, heads, H, W, head_dim)`` and the fused path (``na2d``) heads-last tensors
``(N, H, W, heads, head_dim)``. The neighbourhood of a key slot is ordered row-major over the window, so the last
axis of the attention weights has size ``kh * kw`` with index ``a * kw + b`` for window row ``a`` and column ``b``.

Memory: the logits are ``O(N * heads * H * W * kh * kw)``; keys and values are gathered one window offset at a
time (a Python loop over the ``kh * kw`` offsets), so no ``(..., kh * kw, head_dim)`` tensor is ever built, in
either the forward or the backward pass.

NATTEN itself is not a dependency: its latest PyPI release (0.21.7) ships only a source distribution that builds
its kernels for CUDA only (on CPU it can only use the flex-attention backend), and it no longer provides
``na2d_qk`` / ``na2d_av`` or relative positional bias, which SegMAN's unfused path needs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from core.measure import count_kernel_flops

__all__ = ["na2d", "na2d_av", "na2d_qk", "neighborhood_indices", "neighborhood_rpb_indices"]


def _pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    """``value`` as a pair of ints; ValueError when it is not an int or a pair of ints."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def _check_window(kernel_size: tuple[int, int], dilation: tuple[int, int], height: int, width: int) -> None:
    """ValueError for an even or non-positive kernel, a non-positive dilation, or a dilated kernel larger than the map."""
    for axis, k, d, size in (
        ("height", kernel_size[0], dilation[0], height),
        ("width", kernel_size[1], dilation[1], width),
    ):
        if k < 1 or k % 2 == 0:
            raise ValueError(f"kernel size must be a positive odd number, got {k} along {axis}")
        if d < 1:
            raise ValueError(f"dilation must be >= 1, got {d} along {axis}")
        if k * d > size:
            raise ValueError(f"kernel size {k} x dilation {d} = {k * d} exceeds the feature map {axis} {size}")


def neighborhood_indices(length: int, kernel_size: int, dilation: int = 1, device=None) -> Tensor:
    """Key positions of every query along one axis of neighbourhood attention (NATTEN's window placement).

    Args:
        length: size of the axis (H or W).
        kernel_size: odd window size ``k``.
        dilation: spacing ``d`` between window positions.
        device: device of the returned tensor.

    Returns:
        int64 tensor of shape ``(length, k)``; row ``i`` lists the ``k`` key positions of query ``i`` in increasing
        order: the window ``i - (k // 2) * d, ..., i + (k // 2) * d`` shifted inward at the borders so that it stays
        inside the sub-grid ``{p : p % d == i % d}``.

    Raises:
        ValueError: even or non-positive ``kernel_size``, ``dilation < 1``, or ``kernel_size * dilation > length``.
    """
    _check_window((kernel_size, 1), (dilation, 1), length, 1)
    pos = torch.arange(length, device=device)
    residue, sub = pos % dilation, pos // dilation
    sub_length = (length - residue + dilation - 1) // dilation  # size of the sub-grid holding each position
    start = torch.minimum((sub - kernel_size // 2).clamp(min=0), sub_length - kernel_size)
    return residue[:, None] + (start[:, None] + torch.arange(kernel_size, device=device)) * dilation


def neighborhood_rpb_indices(length: int, kernel_size: int, dilation: int = 1, device=None) -> Tensor:
    """Relative-position-bias index of every (query, window slot) pair along one axis.

    Args and Raises: as :func:`neighborhood_indices`.

    Returns:
        int64 tensor ``(length, k)`` with values in ``[0, 2k - 2]``: ``k - 1 + (key - query) / dilation``.
    """
    keys = neighborhood_indices(length, kernel_size, dilation, device)
    query = torch.arange(length, device=device)[:, None]
    return kernel_size - 1 + torch.div(keys - query, dilation, rounding_mode="floor")


def _gather(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``x[..., rows[i], cols[j], :]`` for ``x`` (N, heads, H, W, C), ``rows`` (H,), ``cols`` (W,)."""
    return x.index_select(2, rows).index_select(3, cols)


def _scatter(src: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Adjoint of :func:`_gather`: sums ``src[..., i, j, :]`` into position ``(rows[i], cols[j])``."""
    out = torch.zeros_like(src).index_add_(3, cols, src)
    return torch.zeros_like(src).index_add_(2, rows, out)


def _window_dot(x: Tensor, y: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``out[..., a * kw + b] = (x * y[..., rows[i, a], cols[j, b], :]).sum(-1)``: ``x`` and ``y`` (N, heads, H, W, C),
    ``rows`` (H, kh), ``cols`` (W, kw) -> (N, heads, H, W, kh * kw) in ``x``'s dtype."""
    kh, kw = rows.shape[1], cols.shape[1]
    out = x.new_empty(*x.shape[:-1], kh * kw)
    for a in range(kh):
        for b in range(kw):
            out[..., a * kw + b] = (x * _gather(y, rows[:, a], cols[:, b])).sum(-1)
    return out


def _window_sum(w: Tensor, y: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``sum_{a,b} w[..., a * kw + b, None] * y[..., rows[i, a], cols[j, b], :]``: ``w`` (N, heads, H, W, kh * kw),
    ``y`` (N, heads, H, W, C) -> (N, heads, H, W, C), summed one window offset at a time in row-major order."""
    kh, kw = rows.shape[1], cols.shape[1]
    out = torch.zeros(*w.shape[:-1], y.shape[-1], dtype=y.dtype, device=y.device)
    for a in range(kh):
        for b in range(kw):
            out = out + w[..., a * kw + b, None] * _gather(y, rows[:, a], cols[:, b])
    return out


def _window_scatter(w: Tensor, x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Adjoint of :func:`_window_sum` in ``y``: ``sum_{a,b}`` of ``w[..., a * kw + b, None] * x`` scattered back to
    the key positions ``(rows[i, a], cols[j, b])``; ``w`` (N, heads, H, W, kh * kw), ``x`` (N, heads, H, W, C)."""
    kh, kw = rows.shape[1], cols.shape[1]
    out = torch.zeros_like(x)
    for a in range(kh):
        for b in range(kw):
            out = out + _scatter(w[..., a * kw + b, None] * x, rows[:, a], cols[:, b])
    return out


class _NeighborhoodProduct(torch.autograd.Function):
    """The two products of neighbourhood attention, gathering one window offset at a time.

    ``logits=True``: ``q . k`` over each query's neighbourhood, (..., C) x (..., C) -> (..., kh * kw).
    ``logits=False``: the attention-weighted sum of each neighbourhood of values, (..., kh * kw) x (..., C) -> (..., C).
    Each one's input gradients are the other product and the scatter (:func:`_window_scatter`).
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, rows: Tensor, cols: Tensor, logits: bool) -> Tensor:
        ctx.save_for_backward(a, b, rows, cols)
        ctx.logits = logits
        return (_window_dot if logits else _window_sum)(a, b, rows, cols)

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, b, rows, cols = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        if ctx.logits:  # a: query, b: key
            grad_a = _window_sum(grad, b, rows, cols) if need_a else None
            grad_b = _window_scatter(grad, a, rows, cols) if need_b else None
        else:  # a: attention weights, b: value
            grad_a = _window_dot(grad, b, rows, cols) if need_a else None
            grad_b = _window_scatter(a, grad, rows, cols) if need_b else None
        return grad_a, grad_b, None, None, None


def _check_heads_first(name: str, x: Tensor) -> None:
    if x.dim() != 5:
        raise ValueError(f"{name} must be 5-D (N, heads, H, W, head_dim), got shape {tuple(x.shape)}")


def na2d_qk(
    query: Tensor,
    key: Tensor,
    kernel_size: int | tuple[int, int],
    dilation: int | tuple[int, int] = 1,
    rpb: Tensor | None = None,
) -> Tensor:
    """Neighbourhood attention logits (NATTEN ``na2d_qk``; NAT, Hassani et al., CVPR 2023). No scaling is applied.

    Args:
        query: float tensor ``(N, heads, H, W, head_dim)``.
        key: tensor of the same shape and dtype as ``query``.
        kernel_size: odd window size ``k`` or ``(kh, kw)``.
        dilation: ``d`` or ``(dh, dw)``.
        rpb: optional relative positional bias ``(heads, 2*kh - 1, 2*kw - 1)``, added to the logits.

    Returns:
        logits ``(N, heads, H, W, kh * kw)``, window slots in row-major order, dtype of ``query``.

    Raises:
        ValueError: shapes that are not 5-D or do not match, an even kernel, ``dilation < 1``, a dilated kernel larger
            than H or W, or an ``rpb`` of the wrong shape.
    """
    _check_heads_first("query", query)
    if key.shape != query.shape:
        raise ValueError(f"key shape {tuple(key.shape)} differs from query shape {tuple(query.shape)}")
    kernel, dil = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation")
    heads, height, width = query.shape[1:4]
    _check_window(kernel, dil, height, width)
    rows = neighborhood_indices(height, kernel[0], dil[0], query.device)
    cols = neighborhood_indices(width, kernel[1], dil[1], query.device)
    logits = _NeighborhoodProduct.apply(query, key, rows, cols, True)
    count_kernel_flops(2 * query.numel() * kernel[0] * kernel[1])  # NATTEN's qk handle: one MAC per q.k term
    if rpb is not None:
        expected = (heads, 2 * kernel[0] - 1, 2 * kernel[1] - 1)
        if tuple(rpb.shape) != expected:
            raise ValueError(f"rpb shape {tuple(rpb.shape)} does not match (heads, 2*kh-1, 2*kw-1) = {expected}")
        bias_rows = neighborhood_rpb_indices(height, kernel[0], dil[0], query.device)
        bias_cols = neighborhood_rpb_indices(width, kernel[1], dil[1], query.device)
        bias = rpb[:, bias_rows[:, None, :, None], bias_cols[None, :, None, :]]  # (heads, H, W, kh, kw)
        logits = logits + bias.reshape(heads, height, width, -1).to(logits.dtype)
    return logits


def na2d_av(
    attn: Tensor, value: Tensor, kernel_size: int | tuple[int, int], dilation: int | tuple[int, int] = 1
) -> Tensor:
    """Apply neighbourhood attention weights to values (NATTEN ``na2d_av``; NAT, Hassani et al., CVPR 2023).

    Args:
        attn: weights ``(N, heads, H, W, kh * kw)`` as returned by :func:`na2d_qk` (after softmax).
        value: float tensor ``(N, heads, H, W, head_dim)`` of the same dtype.
        kernel_size: as in :func:`na2d_qk`.
        dilation: as in :func:`na2d_qk`.

    Returns:
        ``(N, heads, H, W, head_dim)``.

    Raises:
        ValueError: as :func:`na2d_qk`, or when ``attn``'s leading dims or last dim do not match ``value`` / the kernel.
    """
    _check_heads_first("value", value)
    kernel, dil = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation")
    _check_window(kernel, dil, value.shape[2], value.shape[3])
    expected = (*value.shape[:-1], kernel[0] * kernel[1])
    if tuple(attn.shape) != expected:
        raise ValueError(f"attn shape {tuple(attn.shape)} does not match (N, heads, H, W, kh*kw) = {expected}")
    rows = neighborhood_indices(value.shape[2], kernel[0], dil[0], value.device)
    cols = neighborhood_indices(value.shape[3], kernel[1], dil[1], value.device)
    count_kernel_flops(2 * value.numel() * kernel[0] * kernel[1])  # NATTEN's av handle: one MAC per a.v term
    return _NeighborhoodProduct.apply(attn, value, rows, cols, False)


def na2d(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    kernel_size: int | tuple[int, int],
    dilation: int | tuple[int, int] = 1,
    scale: float | None = None,
    rpb: Tensor | None = None,
) -> Tensor:
    """Full 2-D neighbourhood attention, heads-last layout (NATTEN ``na2d``; NAT, Hassani et al., CVPR 2023).

    ``softmax(scale * q . k + rpb)`` over each query's ``kh x kw`` neighbourhood, applied to the values.

    Args:
        query: float tensor ``(N, H, W, heads, head_dim)``.
        key: as ``query`` (same shape and dtype).
        value: as ``query`` (same shape and dtype).
        kernel_size: as in :func:`na2d_qk`.
        dilation: as in :func:`na2d_qk`.
        rpb: as in :func:`na2d_qk`.
        scale: logit scale; ``head_dim ** -0.5`` when None.

    Returns:
        ``(N, H, W, heads, head_dim)``.

    Raises:
        ValueError: as :func:`na2d_qk`, or when the three inputs differ in shape.
    """
    if query.dim() != 5:
        raise ValueError(f"query must be 5-D (N, H, W, heads, head_dim), got shape {tuple(query.shape)}")
    for name, x in (("key", key), ("value", value)):
        if x.shape != query.shape:
            raise ValueError(f"{name} shape {tuple(x.shape)} differs from query shape {tuple(query.shape)}")
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    q, k, v = (x.permute(0, 3, 1, 2, 4) for x in (query, key, value))
    attn = na2d_qk(q * scale, k, kernel_size, dilation, rpb).softmax(dim=-1)
    return na2d_av(attn, v, kernel_size, dilation).permute(0, 2, 3, 1, 4)
