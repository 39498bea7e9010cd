"""MMSCopE, SegMAN's decoder (Fu et al., CVPR 2025; official ``SegMANDecoder`` of ``segman_decoder.py``).

Mamba-based Multi-Scale Context Extraction:

1. the stage-2/3/4 encoder maps are projected to ``P`` channels by per-pixel linear layers, resized to the
   stage-2 size (1/8) and fused by a 1x1 conv-BN-ReLU into ``x`` with ``E`` channels (stage 1 is not used);
2. ``x`` is taken at three scales: as is, through a 3x3 stride-2 conv (``2E`` channels) and through a 5x5 stride-4
   conv (``4E`` channels); the first two are pixel-unshuffled (by 4 and 2) to the size of the third (1/32), all
   three reduced to ``E`` channels by 1x1 convs and concatenated, so every position of the ``3E``-channel map
   holds the same image region at three scales (the paper's scale-wise concatenation of equally sized maps);
3. one SS2D block (VMamba four-direction selective scan + convolutional FFN) models the global context of this
   multi-scale map at linear cost, and its output is resized back to 1/8;
4. the context is projected to ``P`` channels and added to each projected stage feature; the concatenation of a
   1x1 shortcut of ``x``, an image-pooling branch, the ``3E``-channel context and the three enriched stage
   features is fused by a 1x1 conv-BN-ReLU; dropout (0.1) and a 1x1 classifier give the logits at 1/8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.segman.layers import ConvBNReLU, ConvFFN, LayerNorm2d
from models.segman.ss2d import SS2D

__all__ = ["MMSCopE", "SS2DBlock"]


class SS2DBlock(nn.Module):
    """Pre-norm SS2D block of the decoder: ``x += cpe1(x); x += SS2D(norm1(x)); x += cpe2(x); x += FFN(norm2(x))``.

    Args:
        dim: C.
        mlp_ratio: FFN hidden width ``mlp_ratio * C`` (4 in SegMAN).
        scan_chunk_size: see :class:`models.segman.ss2d.SS2D`.

    Input and output float[N, C, H, W].
    """

    def __init__(self, dim: int, mlp_ratio: int = 4, scan_chunk_size: int = 16):
        super().__init__()
        self.cpe1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = LayerNorm2d(dim)
        self.ss2d = SS2D(dim, d_state=1, scan_chunk_size=scan_chunk_size)
        self.cpe2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm2 = LayerNorm2d(dim)
        self.ffn = ConvFFN(dim, mlp_ratio * dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.cpe1(x)
        x = x + self.ss2d(self.norm1(x))
        x = x + self.cpe2(x)
        return x + self.ffn(self.norm2(x))


def _project(linear: nn.Linear, x: Tensor) -> Tensor:
    """Per-pixel linear layer on float[N, C, H, W] -> float[N, C', H, W] (SegFormer's MLP embedding)."""
    return linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _resize(x: Tensor, size) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class MMSCopE(nn.Module):
    """SegMAN's decoder head.

    Args:
        in_channels: channels of the four encoder stages (stage 1 is accepted and unused, as in the official head).
        num_classes: K.
        channels: ``E`` (MMSeg ``channels``: 128 / 144 / 180 for T / S / B).
        feat_proj_dim: ``P`` (192 / 288 / 320).
        dropout: dropout before the classifier (``nn.Dropout2d``, 0.1 in SegMAN).
        scan_chunk_size: see :class:`models.segman.ss2d.SS2D`.

    Input: the four stage maps float[N, C_i, H / 2^(i+2), W / 2^(i+2)] of a float[N, 3, H, W] image whose H and W
    are multiples of 32 (pixel-unshuffle needs the 1/8 map divisible by 4). Output: logits float[N, K, H/8, W/8].
    """

    def __init__(
        self,
        in_channels: tuple[int, int, int, int],
        num_classes: int,
        channels: int,
        feat_proj_dim: int,
        dropout: float = 0.1,
        scan_chunk_size: int = 16,
    ):
        super().__init__()
        e, p = channels, feat_proj_dim
        self.proj_c2 = nn.Linear(in_channels[1], p)
        self.proj_c3 = nn.Linear(in_channels[2], p)
        self.proj_c4 = nn.Linear(in_channels[3], p)
        self.fuse = ConvBNReLU(3 * p, e)
        self.short_path = ConvBNReLU(e, e)
        self.image_pool = ConvBNReLU(e, e)
        self.down2 = ConvBNReLU(e, 2 * e, 3, stride=2, padding=1)
        self.down4 = ConvBNReLU(e, 4 * e, 5, stride=4, padding=1)
        self.reduce = nn.ModuleList(ConvBNReLU(4 * e * 2**i, e) for i in range(3))  # 1/4, 1/2 and full scale
        self.context = SS2DBlock(3 * e, mlp_ratio=4, scan_chunk_size=scan_chunk_size)
        self.proj_out = ConvBNReLU(3 * e, p)
        self.merge = ConvBNReLU(5 * e + 3 * p, e)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(e, num_classes, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, features: list[Tensor]) -> Tensor:
        _, c2, c3, c4 = features
        size = c2.shape[2:]
        c2 = _project(self.proj_c2, c2)
        c3 = _resize(_project(self.proj_c3, c3), size)
        c4 = _resize(_project(self.proj_c4, c4), size)
        x = self.fuse(torch.cat([c4, c3, c2], dim=1))

        pooled = self.image_pool(F.adaptive_avg_pool2d(x, 1)).expand(-1, -1, *size)
        scales = [
            self.reduce[0](self.down4(x)),
            self.reduce[1](F.pixel_unshuffle(self.down2(x), 2)),
            self.reduce[2](F.pixel_unshuffle(x, 4)),
        ]
        context = _resize(self.context(torch.cat(scales[::-1], dim=1)), size)
        projected = self.proj_out(context)
        out = torch.cat([self.short_path(x), pooled, context, c2 + projected, c3 + projected, c4 + projected], dim=1)
        return self.classifier(self.dropout(self.merge(out)))
