"""HRNetV2 backbone for segmentation: timm's HRNet modules with bilinear fuse upsampling.

Follows Sun et al. 2019, "High-Resolution Representations for Labeling Pixels and Regions"
(HRNetV2, https://github.com/HRNet/HRNet-Semantic-Segmentation, ``lib/models/seg_hrnet.py``):
stem (two stride-2 3x3 convs), stage 1 (4 bottlenecks, 64 -> 256 channels), stages 2-4 with 2/3/4
parallel branches of widths ``C, 2C, 4C, 8C`` at strides 4/8/16/32, and the HRNetV2 representation:
all four branch outputs bilinearly upsampled to the 1/4 branch and concatenated (``15C`` channels).

The modules (and so the parameters and ``state_dict`` keys) are those of ``timm.create_model(
"hrnet_w<C>", features_only=True, feature_location="")``, which has exactly the parameters of the
official segmentation backbone (65,325,120 at W48, 9,562,260 at W18) and the official key layout
(``conv1``, ``layer1.0.conv1``, ``transition1.1.0.0``, ``stage2.0.fuse_layers.0.1.0`` ...). timm's
fuse layers upsample with ``nn.Upsample(mode="nearest", scale_factor=2**k)``; the segmentation
version resizes bilinearly *to the size of the target branch* (which also works for input sizes not
divisible by 32). We drop those parameter-free ``nn.Upsample`` modules and run the stages with our
own forward (:meth:`HRNetBackbone._fuse`) that does exactly what ``seg_hrnet.py`` does.
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

HRNET_WIDTHS = (18, 30, 32, 40, 44, 48, 64)  # timm hrnet_w<C> variants with the HRNetV2 stage layout
_BACKBONE_CHILDREN = (
    "conv1",
    "bn1",
    "act1",
    "conv2",
    "bn2",
    "act2",
    "layer1",
    "transition1",
    "stage2",
    "transition2",
    "stage3",
    "transition3",
    "stage4",
)


class HRNetBackbone(nn.Module):
    """HRNetV2-W<C> trunk returning the concatenated high-resolution representation.

    Args:
        width: C, channels of the highest-resolution branch; one of :data:`HRNET_WIDTHS` (18, 48 in the papers).
        align_corners: ``align_corners`` of every bilinear resize (fuse layers and the final concat);
            the MIC-DKFZ configs use False for HRNetV2 and True for the OCR variants.

    ``forward(x: float[N, 3, H, W]) -> float[N, 15*C, ceil(H/4), ceil(W/4)]`` (720 channels at W48,
    270 at W18); any H, W >= 32 works. Attributes: ``width``, ``out_channels`` (15*C),
    ``branch_channels`` (C, 2C, 4C, 8C).

    Raises:
        ValueError: ``width`` not in :data:`HRNET_WIDTHS`.
    """

    def __init__(self, width: int = 48, align_corners: bool = False):
        super().__init__()
        if int(width) not in HRNET_WIDTHS:
            raise ValueError(f"HRNet width {width!r} is not available; valid widths: {list(HRNET_WIDTHS)}")
        self.width, self.align_corners = int(width), bool(align_corners)
        net = timm.create_model(f"hrnet_w{self.width}", pretrained=False, features_only=True, feature_location="")
        for name in _BACKBONE_CHILDREN:  # adopt the official-layout modules; keys stay e.g. "stage2.0.branches..."
            self.add_module(name, getattr(net, name))
        for stage in (self.stage2, self.stage3, self.stage4):
            for module in stage:
                for i, fuse_outer in enumerate(module.fuse_layers):
                    for j, f in enumerate(fuse_outer):
                        if j > i and isinstance(f[-1], nn.Upsample):
                            del f[-1]  # conv1x1 + BN remain; the bilinear resize happens in _fuse
        self.branch_channels = tuple(self.width * 2**i for i in range(4))
        self.out_channels = sum(self.branch_channels)

    def _fuse(self, module: nn.Module, x: list[torch.Tensor]) -> list[torch.Tensor]:
        """One HighResolutionModule: branches, then the multi-resolution fusion of ``seg_hrnet.py``."""
        x = [branch(xi) for branch, xi in zip(module.branches, x)]
        if module.num_branches == 1:
            return x
        out = []
        for i, fuse_outer in enumerate(module.fuse_layers):
            y = None
            for j, f in enumerate(fuse_outer):
                z = f(x[j])
                if j > i:
                    z = F.interpolate(z, size=x[i].shape[-2:], mode="bilinear", align_corners=self.align_corners)
                y = z if y is None else y + z
            out.append(module.fuse_act(y))
        return out

    def _stage(self, stage: nn.Module, x: list[torch.Tensor]) -> list[torch.Tensor]:
        for module in stage:
            x = self._fuse(module, x)
        return x

    @staticmethod
    def _transition(transition: nn.ModuleList, y: list[torch.Tensor]) -> list[torch.Tensor]:
        # existing branches pass through (Identity), new branches are made from the lowest resolution one
        return [t(y[i]) if i < len(y) else t(y[-1]) for i, t in enumerate(transition)]

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four branch outputs ``[float[N, C*2**i, H/2**(i+2), W/2**(i+2)] for i in 0..3]`` (sizes rounded up)."""
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        y = self._stage(self.stage2, [t(x) for t in self.transition1])
        y = self._stage(self.stage3, self._transition(self.transition2, y))
        return self._stage(self.stage4, self._transition(self.transition3, y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branches(x)
        size = y[0].shape[-2:]
        up = [F.interpolate(t, size=size, mode="bilinear", align_corners=self.align_corners) for t in y[1:]]
        return torch.cat([y[0], *up], dim=1)
