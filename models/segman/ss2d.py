"""SS2D: VMamba's 2-D selective-scan module (Liu et al., NeurIPS 2024) in the form SegMAN uses it (Fu et al., CVPR 2025).

The map is read along four traversals (row-major, column-major and both reversed; :func:`cross_scan`), each
traversal runs its own selective scan (Mamba's S6, state size 1 in SegMAN), and the four outputs are mapped back and
summed (:func:`cross_merge`). SegMAN's variant has no input/output projections or gating around the scan (expansion
ratio 1): the per-direction ``x_proj`` produces the step size ``delta`` (through a rank-``R`` ``dt_proj``), ``B`` and
``C`` from the input itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.segman.selective_scan import cross_merge, cross_scan, selective_scan

__all__ = ["SS2D"]

DIRECTIONS = 4


class SS2D(nn.Module):
    """Four-direction selective scan over a float[N, C, H, W] map; returns float[N, C, H, W].

    Parameters keep VMamba's names and layouts (``x_proj_weight`` ``(4 * (R + 2 * d_state), C, 1)``,
    ``dt_projs_weight`` ``(4, C, R)``, ``dt_projs_bias`` ``(4, C)``, ``A_logs`` ``(4 * C, d_state)``, ``Ds``
    ``(4 * C,)``) with ``R = ceil(C / 16)``, and its initialisation (S4D-real ``A``, ``delta`` bias drawn so that
    ``softplus(bias)`` is log-uniform in [0.001, 0.1]).

    Args:
        channels: C (the scan's inner width; SegMAN uses expansion ratio 1).
        d_state: state size per channel (1 in SegMAN).
        scan_chunk_size: chunk length of :func:`models.segman.selective_scan.selective_scan` (pure PyTorch; the
            official model calls a CUDA kernel with the same semantics).
    """

    def __init__(self, channels: int, d_state: int = 1, scan_chunk_size: int = 16):
        super().__init__()
        rank = math.ceil(channels / 16)
        self.channels, self.d_state, self.rank, self.scan_chunk_size = channels, d_state, rank, scan_chunk_size
        x_proj = torch.empty(DIRECTIONS * (rank + 2 * d_state), channels, 1)
        nn.init.kaiming_uniform_(x_proj, a=math.sqrt(5))  # nn.Linear's default init, as VMamba
        self.x_proj_weight = nn.Parameter(x_proj)
        std = rank**-0.5
        self.dt_projs_weight = nn.Parameter(torch.empty(DIRECTIONS, channels, rank).uniform_(-std, std))
        dt = torch.exp(torch.rand(DIRECTIONS, channels) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
        dt = dt.clamp(min=1e-4)
        self.dt_projs_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(DIRECTIONS * channels, 1)
        self.A_logs = nn.Parameter(torch.log(a))
        self.Ds = nn.Parameter(torch.ones(DIRECTIONS * channels))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        length = h * w
        xs = cross_scan(x).reshape(n, DIRECTIONS * c, length)
        x_dbl = F.conv1d(xs, self.x_proj_weight, groups=DIRECTIONS).view(n, DIRECTIONS, -1, length)
        dts, bs, cs = torch.split(x_dbl, [self.rank, self.d_state, self.d_state], dim=2)
        dts = F.conv1d(
            dts.reshape(n, DIRECTIONS * self.rank, length),
            self.dt_projs_weight.reshape(DIRECTIONS * c, self.rank, 1),
            groups=DIRECTIONS,
        )
        ys = selective_scan(
            xs,
            dts,
            -torch.exp(self.A_logs.float()),
            bs.contiguous(),
            cs.contiguous(),
            self.Ds.float(),
            self.dt_projs_bias.reshape(-1).float(),
            delta_softplus=True,
            chunk_size=self.scan_chunk_size,
        )
        return cross_merge(ys.view(n, DIRECTIONS, c, h, w)).view(n, c, h, w)
