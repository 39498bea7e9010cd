"""ESPNetv2 segmentation network (Mehta et al., "ESPNetv2: A Light-weight, Power Efficient, and General Purpose
Convolutional Neural Network", CVPR 2019), written so that the authors' EdgeNets checkpoints
(github.com/sacmehta/EdgeNets ``model/segmentation/model_zoo/espnetv2/espnetv2_s_{s}_{city,pascal}_*.pth``)
load strictly.

Module names follow EdgeNets (``base_net.level1``, ``base_net.level{2,3,4}_0`` DownSamplers with EESP blocks and
input reinforcement, ``base_net.level{3,4}.<i>``, decoder ``bu_dec_l{1..4}`` efficient pyramid pooling,
``merge_enc_dec_l{2,3,4}`` efficient point-wise convs, ``bu_br_l{2,3,4}``); this is an independent
implementation of the same graph (EdgeNets ``nn_layers/eesp.py``, ``efficient_pyramid_pool.py``,
``efficient_pt.py``; encoder config ``model/classification/espnetv2_config.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from models.espnet.common import build_input_convention, load_author_checkpoint, pad_to_multiple, resolve_weights

#: output channels of levels 1..4 per width multiplier s (EdgeNets espnetv2_config.sc_ch_dict, levels 1-4)
CHANNELS = {
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.25: (32, 80, 160, 320),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
REPS = (3, 7)  # EESP blocks at levels 3 and 4
RECEPT_LIMIT = (13, 11, 9, 7, 5)  # max receptive field of the EESP branches per level
BRANCHES = 4
REINF_CHANNELS = 3


# --------------------------------------------------------------------------- encoder (EdgeNets espnet_utils names)
class CBR(nn.Module):
    """Conv(no bias) + BN + PReLU with keys ``conv``/``bn``/``act``."""

    def __init__(self, n_in, n_out, k, stride=1, groups=1, d=1):
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, k, stride, (k - 1) // 2 * d, dilation=d, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(n_out)
        self.act = nn.PReLU(n_out)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class CB(nn.Module):
    """Conv(no bias) + BN with keys ``conv``/``bn``."""

    def __init__(self, n_in, n_out, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, k, stride, (k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(n_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class BR(nn.Module):
    """BN + PReLU with keys ``bn``/``act``."""

    def __init__(self, n):
        super().__init__()
        self.bn = nn.BatchNorm2d(n)
        self.act = nn.PReLU(n)

    def forward(self, x):
        return self.act(self.bn(x))


class DWConv(nn.Module):
    """Depth-wise dilated 3x3 conv (key ``conv``)."""

    def __init__(self, n, stride, d):
        super().__init__()
        self.conv = nn.Conv2d(n, n, 3, stride, d, dilation=d, groups=n, bias=False)

    def forward(self, x):
        return self.conv(x)


class EESP(nn.Module):
    """Extremely Efficient Spatial Pyramid block: group 1x1 reduce -> k depth-wise dilated 3x3 branches with
    hierarchical fusion -> BR -> group 1x1 expand (-> + input -> PReLU unless a strided ``avg`` branch).

    float[N,n_in,H,W] -> float[N,n_out,H/stride,W/stride].
    """

    def __init__(self, n_in, n_out, stride=1, k=BRANCHES, r_lim=7, down_avg=False):
        super().__init__()
        n = n_out // k
        if n * k != n_out:
            raise ValueError(f"EESP: n_out={n_out} must be divisible by k={k}")
        self.stride, self.down_avg = stride, down_avg
        self.proj_1x1 = CBR(n_in, n, 1, 1, groups=k)
        k_sizes = sorted(3 + 2 * i if 3 + 2 * i <= r_lim else 3 for i in range(k))
        self.spp_dw = nn.ModuleList(DWConv(n, stride, (ks - 1) // 2) for ks in k_sizes)
        self.conv_1x1_exp = CB(n_out, n_out, 1, 1, groups=k)
        self.br_after_cat = BR(n_out)
        self.module_act = nn.PReLU(n_out)

    def forward(self, x):
        o = self.proj_1x1(x)
        outs = [self.spp_dw[0](o)]
        for conv in self.spp_dw[1:]:
            outs.append(conv(o) + outs[-1])
        expanded = self.conv_1x1_exp(self.br_after_cat(torch.cat(outs, 1)))
        if self.stride == 2 and self.down_avg:
            return expanded
        if expanded.shape == x.shape:
            expanded = expanded + x
        return self.module_act(expanded)


class DownSampler(nn.Module):
    """Strided EESP || avg-pool, concatenated, plus the input image reinforcement; halves H and W."""

    def __init__(self, n_in, n_out, k=BRANCHES, r_lim=9, reinf=True):
        super().__init__()
        self.eesp = EESP(n_in, n_out - n_in, stride=2, k=k, r_lim=r_lim, down_avg=True)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1)
        if reinf:
            self.inp_reinf = nn.Sequential(CBR(3, REINF_CHANNELS, 3, 1), CB(REINF_CHANNELS, n_out, 1, 1))
        self.act = nn.PReLU(n_out)

    def forward(self, x, image=None):
        avg = self.avg(x)
        out = torch.cat([avg, self.eesp(x)], 1)
        if image is not None:
            while image.shape[-2] > avg.shape[-2]:
                image = F.avg_pool2d(image, 3, stride=2, padding=1)
            out = out + self.inp_reinf(image)
        return self.act(out)


class EESPNetBase(nn.Module):
    """ESPNetv2 encoder levels 1-4 (the ImageNet network without level 5 and classifier)."""

    def __init__(self, s: float):
        super().__init__()
        if s not in CHANNELS:
            raise ValueError(f"ESPNetv2: width multiplier s={s} not supported; valid: {sorted(CHANNELS)}")
        ch = CHANNELS[s]
        self.config = ch
        self.level1 = CBR(3, ch[0], 3, 2)
        self.level2_0 = DownSampler(ch[0], ch[1], r_lim=RECEPT_LIMIT[0])
        self.level3_0 = DownSampler(ch[1], ch[2], r_lim=RECEPT_LIMIT[1])
        self.level3 = nn.ModuleList(EESP(ch[2], ch[2], r_lim=RECEPT_LIMIT[2]) for _ in range(REPS[0]))
        self.level4_0 = DownSampler(ch[2], ch[3], r_lim=RECEPT_LIMIT[2])
        self.level4 = nn.ModuleList(EESP(ch[3], ch[3], r_lim=RECEPT_LIMIT[3]) for _ in range(REPS[1]))

    def forward(self, x):
        """float[N,3,H,W] -> feature maps at 1/2, 1/4, 1/8, 1/16 (channels ``self.config``)."""
        l1 = self.level1(x)
        l2 = self.level2_0(l1, x)
        l3 = self.level3_0(l2, x)
        for layer in self.level3:
            l3 = layer(l3)
        l4 = self.level4_0(l3, x)
        for layer in self.level4:
            l4 = layer(l4)
        return l1, l2, l3, l4


# --------------------------------------------------------------------------- decoder (EdgeNets cnn_utils names)
class SeqCBR(nn.Module):
    """Conv + BN + PReLU as ``cbr.{0,1,2}``."""

    def __init__(self, n_in, n_out, k, stride=1, groups=1):
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(n_in, n_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(n_out),
            nn.PReLU(n_out),
        )

    def forward(self, x):
        return self.cbr(x)


class SeqBR(nn.Module):
    """BN + PReLU as ``br.{0,1}``."""

    def __init__(self, n):
        super().__init__()
        self.br = nn.Sequential(nn.BatchNorm2d(n), nn.PReLU(n))

    def forward(self, x):
        return self.br(x)


class Shuffle(nn.Module):
    """Channel shuffle (Zhang et al., ShuffleNet 2018) with ``groups`` groups."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class EfficientPyrPool(nn.Module):
    """Efficient pyramid pooling: project, depth-wise 3x3 at scales (2, 1.5, 1, 0.5, 0.1), shuffle, merge."""

    scales = (2.0, 1.5, 1.0, 0.5, 0.1)

    def __init__(self, n_in, proj, n_out, last_layer_br=True):
        super().__init__()
        self.projection_layer = SeqCBR(n_in, proj, 1)
        self.stages = nn.ModuleList(nn.Conv2d(proj, proj, 3, 1, 1, groups=proj, bias=False) for _ in self.scales)
        ns = len(self.scales)
        self.merge_layer = nn.Sequential(
            SeqBR(proj * ns),
            Shuffle(ns),
            SeqCBR(proj * ns, proj, 3, groups=proj),
            nn.Conv2d(proj, n_out, 1, bias=not last_layer_br),
        )
        self.last_layer_br = last_layer_br
        if last_layer_br:
            self.br = SeqBR(n_out)

    def forward(self, x):
        x = self.projection_layer(x)
        h, w = x.shape[-2:]
        hs = []
        for scale, stage in zip(self.scales, self.stages):
            hs_, ws_ = max(math.ceil(h * scale), 5), max(math.ceil(w * scale), 5)
            if scale < 1.0:
                y = F.interpolate(
                    stage(F.adaptive_avg_pool2d(x, (hs_, ws_))), (h, w), mode="bilinear", align_corners=True
                )
            elif scale > 1.0:
                y = F.adaptive_avg_pool2d(
                    stage(F.interpolate(x, (hs_, ws_), mode="bilinear", align_corners=True)), (h, w)
                )
            else:
                y = stage(x)
            hs.append(y)
        out = self.merge_layer(torch.cat(hs, 1))
        return self.br(out) if self.last_layer_br else out


class EfficientPWConv(nn.Module):
    """Group 3x3 CBR gated by a global-pool 1x1 sigmoid weight (EdgeNets EfficientPWConv)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(n_in, n_out, 1, bias=False), nn.Sigmoid())
        self.expansion_layer = SeqCBR(n_in, n_out, 3, groups=math.gcd(n_in, n_out))

    def forward(self, x):
        return self.expansion_layer(x) * self.wt_layer(x)


class ESPNetv2(nn.Module):
    """ESPNetv2 segmentation network as a segbench model.

    Args:
        num_classes: K (``${dataset.num_classes}``).
        s: width multiplier, one of 0.5, 1.0, 1.25, 1.5, 2.0 (checkpoints here: 1.0, 2.0).
        extra_classes: checkpoint outputs beyond K (Cityscapes checkpoints: 20 = 19 + 1 "ignore"); computed,
            then dropped from ``"out"`` (dropped at argmax time).
        decoder_planes: base width of the decoder (EdgeNets: 16 for city/pascal, 32 for coco).
        input_conventions: see :class:`models.espnet.ESPNet` (ESPNetv2: RGB, ImageNet mean/std).
        data_norm: see :class:`models.espnet.ESPNet`.
        pretrained: optional checkpoint (path or name under ``<weights_dir>/espnetv2/``) loaded at build time.
        weights_dir: ``${environment.weights_dir}``.

    Input float[N,3,H,W] (zero-padded to multiples of 16, cropped back); output ``{"out": float[N,K,H,W]}``.

    Raises:
        ValueError: unsupported ``s``; a checkpoint that does not fit.
        FileNotFoundError: ``pretrained`` not found.
    """

    output_names = ("out",)
    stride = 16

    def __init__(
        self,
        num_classes: int,
        s: float = 2.0,
        extra_classes: int = 0,
        decoder_planes: int = 16,
        input_conventions: Mapping | None = None,
        data_norm: Mapping | None = None,
        pretrained: str | None = None,
        weights_dir: str | None = None,
    ):
        super().__init__()
        if num_classes < 1 or extra_classes < 0:
            raise ValueError(f"ESPNetv2: num_classes={num_classes} must be >= 1 and extra_classes={extra_classes} >= 0")
        s = float(s)
        self.num_classes, self.extra_classes, self.s, self.weights_dir = num_classes, extra_classes, s, weights_dir
        self.describe = f"ESPNetv2 s={s} outputs={num_classes + extra_classes}"
        classes = num_classes + extra_classes
        self.input_convention = build_input_convention(input_conventions, data_norm) or nn.Identity()
        self.base_net = EESPNetBase(s)
        ch = self.base_net.config
        dec = (4 * decoder_planes, 3 * decoder_planes, 2 * decoder_planes, classes)
        proj = min(classes // 2, decoder_planes)
        self.bu_dec_l1 = EfficientPyrPool(ch[3], proj, dec[0])
        self.bu_dec_l2 = EfficientPyrPool(dec[0], proj, dec[1])
        self.bu_dec_l3 = EfficientPyrPool(dec[1], proj, dec[2])
        self.bu_dec_l4 = EfficientPyrPool(dec[2], proj, dec[3], last_layer_br=False)
        self.merge_enc_dec_l2 = EfficientPWConv(ch[2], dec[0])
        self.merge_enc_dec_l3 = EfficientPWConv(ch[1], dec[1])
        self.merge_enc_dec_l4 = EfficientPWConv(ch[0], dec[2])
        self.bu_br_l2 = nn.Sequential(nn.BatchNorm2d(dec[0]), nn.PReLU(dec[0]))
        self.bu_br_l3 = nn.Sequential(nn.BatchNorm2d(dec[1]), nn.PReLU(dec[1]))
        self.bu_br_l4 = nn.Sequential(nn.BatchNorm2d(dec[2]), nn.PReLU(dec[2]))
        for m in self.modules():  # EdgeNets init_params
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if pretrained:
            self.load_pretrained(pretrained)

    @staticmethod
    def _up2(x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """float[N,3,H,W] dataset-normalised -> ``{"out": logits float[N,K,H,W]}``."""
        x, (h, w) = pad_to_multiple(x, self.stride)  # before the convention, as an exported graph's runner pads
        x = self.input_convention(x)
        l1, l2, l3, l4 = self.base_net(x)
        out = self.bu_dec_l1(l4)
        out = self.bu_dec_l2(self.bu_br_l2(self._up2(out) + self.merge_enc_dec_l2(l3)))
        out = self.bu_dec_l3(self.bu_br_l3(self._up2(out) + self.merge_enc_dec_l3(l2)))
        out = self.bu_dec_l4(self.bu_br_l4(self._up2(out) + self.merge_enc_dec_l4(l1)))
        out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=True)
        return {"out": out[:, : self.num_classes, :h, :w]}

    def load_pretrained(self, path_or_name: str | os.PathLike) -> None:
        """Load an EdgeNets ESPNetv2 segmentation checkpoint strictly (keys as saved by the authors).

        Raises:
            FileNotFoundError: the file is missing (expected path and ``${environment.weights_dir}`` named).
            ValueError: missing/unexpected keys or shape mismatches (e.g. wrong ``s`` or 20 vs 21 outputs).
        """
        path = resolve_weights(path_or_name, self.weights_dir, "espnetv2")
        load_author_checkpoint(self, path)
