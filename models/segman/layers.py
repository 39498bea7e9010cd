"""Small layers shared by the SegMAN encoder and decoder (Fu et al., CVPR 2025): channels-first LayerNorm,
LayerScale, conv-BN-ReLU, the convolutional feed-forward network and the 2-D rotary position embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvBNReLU", "ConvFFN", "LayerNorm2d", "LayerScale", "apply_rope", "rope_2d"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a float[N, C, H, W] map (eps 1e-6, as SegMAN); returns the same shape."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


class LayerScale(nn.Module):
    """Per-channel affine ``weight * x + bias`` of a float[N, C, H, W] residual branch (SegMAN-B's LayerScale).

    Args:
        channels: C.
        init_value: initial ``weight`` (bias starts at 0).
    """

    def __init__(self, channels: int, init_value: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(init_value)))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class ConvBNReLU(nn.Module):
    """Conv2d without bias, BatchNorm2d, ReLU (MMCV's ``ConvModule`` with BN, as the SegMAN decoder uses it).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel.
        stride: stride.
        padding: zero padding.

    Input float[N, in, H, W]; output float[N, out, H', W'] with the usual convolution arithmetic.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class ConvFFN(nn.Module):
    """SegMAN's feed-forward network: 1x1 conv, GELU, residual 3x3 depth-wise conv, 1x1 conv.

    Args:
        channels: C, input and output channels.
        hidden: hidden channels.

    Input and output float[N, C, H, W].
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.gelu(self.fc1(x))
        return self.fc2(x + self.dwconv(x))


def rope_2d(head_dim: int, height: int, width: int, device=None, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Sine and cosine tables of SegMAN's 2-D rotary position embedding (RoPE, Su et al. 2021, as in RMT).

    The first half of each head's channels rotates with the row index, the second half with the column index;
    channel pair ``(2m, 2m+1)`` of each half turns by ``pos * theta_m`` with ``theta_m = 10000^(-m / (head_dim/4 - 1))``
    for ``m = 0 .. head_dim/4 - 1`` (``1 / 10000 ** linspace(0, 1, head_dim // 4)``).

    Args:
        head_dim: channels per head; must be divisible by 4.
        height: H of the feature map.
        width: W of the feature map.
        device: device of the tables.
        dtype: dtype of the tables.

    Returns:
        ``(sin, cos)``, each float ``(H, W, head_dim)``.

    Raises:
        ValueError: ``head_dim`` not divisible by 4.
    """
    if head_dim % 4:
        raise ValueError(f"2-D RoPE needs head_dim divisible by 4, got {head_dim}")
    quarter = head_dim // 4
    theta = 1.0 / (10000 ** torch.linspace(0, 1, quarter, device=device, dtype=torch.float32))
    theta = theta.repeat_interleave(2)  # (head_dim / 2,): one angle per channel pair
    rows = torch.arange(height, device=device, dtype=torch.float32)[:, None] * theta  # (H, head_dim/2)
    cols = torch.arange(width, device=device, dtype=torch.float32)[:, None] * theta  # (W, head_dim/2)
    angle = torch.cat(
        [rows[:, None, :].expand(height, width, -1), cols[None, :, :].expand(height, width, -1)], dim=-1
    )  # (H, W, head_dim)
    return angle.sin().to(dtype), angle.cos().to(dtype)


def apply_rope(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Rotate channel pairs of ``x`` float[N, heads, H, W, head_dim] by the angles of :func:`rope_2d`.

    ``(a, b) -> (a cos - b sin, b cos + a sin)`` for every pair ``(2m, 2m+1)``; returns the same shape.
    """
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos + rotated * sin
