"""Segmentation heads on the HRNetV2 representation: OCR, ASPP, scale attention (HRNetV2's own 1x1 head is
``HRNetV2.last_layer``).

Module and parameter names follow NVIDIA's ``semantic-segmentation`` (``network/ocrnet.py``,
``network/ocr_utils.py``, ``network/mynn.py``) as reused by MIC-DKFZ ``semantic_segmentation``
(``models/hrnet_ocr*.py``), so their checkpoints load by name (see :mod:`models.hrnet.weights`):

- OCR: Yuan et al., "Object-Contextual Representations for Semantic Segmentation", ECCV 2020.
- ASPP: Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation" (DeepLabv3), 2017.
- Scale attention: Tao et al., "Hierarchical Multi-Scale Attention for Semantic Segmentation", 2020.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


def bn_relu(channels: int) -> nn.Sequential:
    """``BatchNorm2d`` + ``ReLU`` as one ``nn.Sequential`` (NVIDIA ``BNReLU``; keys ``<name>.0.*``)."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU())


def conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int = 1, dilation: int = 1) -> nn.Sequential:
    """Bias-free conv + BN + ReLU (keys ``0.weight``, ``1.*``), 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3) in the NVIDIA/MIC-DKFZ form used by OCR+ASPP.

    Branches: image pooling -> conv1x1, conv1x1, and three 3x3 convs with dilations ``rates`` (each
    bias-free conv + BN + ReLU with ``reduction`` channels); outputs concatenated in that order
    (pooling first), no projection. ``output_stride=8`` doubles the rates (6, 12, 18) -> (12, 24, 36),
    as MIC-DKFZ builds it on the stride-4 HRNet features.

    ``forward(float[N, C, h, w]) -> float[N, 5*reduction, h, w]``; ``out_channels = 5 * reduction``.
    """

    def __init__(self, in_channels: int, reduction: int = 256, rates=(6, 12, 18), output_stride: int = 8):
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"ASPP output_stride must be 8 or 16, got {output_stride!r}")
        rates = [2 * r for r in rates] if output_stride == 8 else list(rates)
        self.features = nn.ModuleList(
            [conv_bn_relu(in_channels, reduction, 1)]
            + [conv_bn_relu(in_channels, reduction, 3, dilation=r) for r in rates]
        )
        self.img_pooling = nn.AdaptiveAvgPool2d(1)
        self.img_conv = conv_bn_relu(in_channels, reduction, 1)
        self.out_channels = reduction * (len(rates) + 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.img_conv(self.img_pooling(x)).expand(-1, -1, *x.shape[-2:])  # bilinear from 1x1 == broadcast
        return torch.cat([pooled, *(f(x) for f in self.features)], dim=1)


class SpatialGather(nn.Module):
    """OCR soft object regions: class centres ``f_k = sum_i softmax_i(aux_k) * x_i``.

    ``forward(feats: float[N, C, h, w], probs: float[N, K, h, w]) -> float[N, C, K, 1]`` (the spatial
    softmax over the K auxiliary logit maps weights the pixel features).
    """

    def forward(self, feats: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        n, k = probs.shape[:2]
        probs = F.softmax(probs.reshape(n, k, -1), dim=2)  # N, K, hw
        context = torch.matmul(probs, feats.reshape(n, feats.shape[1], -1).permute(0, 2, 1))  # N, K, C
        return context.permute(0, 2, 1).unsqueeze(3)


class ObjectAttentionBlock(nn.Module):
    """OCR pixel-region relation and object-contextual representation (Yuan et al. 2020, eq. 2-3).

    query = f_pixel(x), key = f_object(centres), value = f_down(centres);
    context = f_up(softmax(query^T key / sqrt(key_channels)) value).
    ``forward(x: float[N, C, h, w], proxy: float[N, C, K, 1]) -> float[N, C, h, w]``.
    """

    def __init__(self, in_channels: int, key_channels: int):
        super().__init__()
        self.key_channels = key_channels

        def two_layer():
            return nn.Sequential(
                nn.Conv2d(in_channels, key_channels, 1, bias=False),
                bn_relu(key_channels),
                nn.Conv2d(key_channels, key_channels, 1, bias=False),
                bn_relu(key_channels),
            )

        self.f_pixel = two_layer()
        self.f_object = two_layer()
        self.f_down = nn.Sequential(nn.Conv2d(in_channels, key_channels, 1, bias=False), bn_relu(key_channels))
        self.f_up = nn.Sequential(nn.Conv2d(key_channels, in_channels, 1, bias=False), bn_relu(in_channels))

    def forward(self, x: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        query = self.f_pixel(x).reshape(n, self.key_channels, -1).permute(0, 2, 1)  # N, hw, Ck
        key = self.f_object(proxy).reshape(n, self.key_channels, -1)  # N, Ck, K
        value = self.f_down(proxy).reshape(n, self.key_channels, -1).permute(0, 2, 1)  # N, K, Ck
        sim = F.softmax(torch.matmul(query, key) * self.key_channels**-0.5, dim=-1)
        context = torch.matmul(sim, value).permute(0, 2, 1).reshape(n, self.key_channels, h, w)
        return self.f_up(context)


class SpatialOCR(nn.Module):
    """OCR augmentation: ``conv_bn_dropout(cat[context, (aspp(x)), x])`` -> ``out_channels``.

    With ``aspp_channels`` set, an :class:`ASPP` on the pixel features is concatenated too (the MIC-DKFZ
    OCR+ASPP variant). ``forward(feats: float[N, C, h, w], proxy: float[N, C, K, 1]) -> float[N, out, h, w]``.
    """

    def __init__(
        self,
        in_channels: int,
        key_channels: int,
        out_channels: int,
        dropout: float = 0.05,
        aspp_channels: int | None = None,
    ):
        super().__init__()
        self.object_context_block = ObjectAttentionBlock(in_channels, key_channels)
        cat_channels = 2 * in_channels
        if aspp_channels:
            self.aspp = ASPP(in_channels, aspp_channels)
            cat_channels += self.aspp.out_channels
        else:
            self.aspp = None
        self.conv_bn_dropout = nn.Sequential(
            nn.Conv2d(cat_channels, out_channels, 1, bias=False), bn_relu(out_channels), nn.Dropout2d(dropout)
        )

    def forward(self, feats: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:
        context = self.object_context_block(feats, proxy)
        parts = [context, self.aspp(feats), feats] if self.aspp is not None else [context, feats]
        return self.conv_bn_dropout(torch.cat(parts, dim=1))


class OCRBlock(nn.Module):
    """The OCR head (NVIDIA ``OCR_block``): soft object regions from an auxiliary head, gather, attention.

    Args:
        in_channels: channels of the input features (720 for HRNetV2-W48, 1280 after ASPP).
        num_classes: K.
        mid_channels: OCR pixel/region representation channels (512).
        key_channels: attention key/query channels (256).
        dropout: Dropout2d after the fusion conv (0.05).
        aspp_channels: if set, the fusion also gets an ASPP of the OCR features (OCR+ASPP variant; 256).

    ``forward(x: float[N, C, h, w]) -> (cls: float[N, K, h, w], aux: float[N, K, h, w], feats: float[N, mid, h, w])``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        mid_channels: int = 512,
        key_channels: int = 256,
        dropout: float = 0.05,
        aspp_channels: int | None = None,
    ):
        super().__init__()
        self.conv3x3_ocr = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 3, padding=1), bn_relu(mid_channels))
        self.ocr_gather_head = SpatialGather()
        self.ocr_distri_head = SpatialOCR(mid_channels, key_channels, mid_channels, dropout, aspp_channels)
        self.cls_head = nn.Conv2d(mid_channels, num_classes, 1)
        self.aux_head = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 1), bn_relu(in_channels), nn.Conv2d(in_channels, num_classes, 1)
        )

    def forward(self, x: torch.Tensor):
        feats = self.conv3x3_ocr(x)
        aux = self.aux_head(x)
        ocr_feats = self.ocr_distri_head(feats, self.ocr_gather_head(feats, aux))
        return self.cls_head(ocr_feats), aux, ocr_feats


def scale_attention_head(in_channels: int = 512, bottleneck: int = 256) -> nn.Sequential:
    """Tao et al. 2020 attention head (NVIDIA ``make_attn_head`` with ``MSCALE_INNER_3x3``, no dropout).

    conv3x3(in, 256) + BN + ReLU, conv3x3(256, 256) + BN + ReLU, conv1x1(256, 1), sigmoid; bias-free convs.
    ``float[N, in, h, w] -> float[N, 1, h, w]`` in (0, 1).
    """
    return nn.Sequential(
        OrderedDict(
            [
                ("conv0", nn.Conv2d(in_channels, bottleneck, 3, padding=1, bias=False)),
                ("bn0", nn.BatchNorm2d(bottleneck)),
                ("re0", nn.ReLU(inplace=True)),
                ("conv1", nn.Conv2d(bottleneck, bottleneck, 3, padding=1, bias=False)),
                ("bn1", nn.BatchNorm2d(bottleneck)),
                ("re1", nn.ReLU(inplace=True)),
                ("conv2", nn.Conv2d(bottleneck, 1, 1, bias=False)),
                ("sig", nn.Sigmoid()),
            ]
        )
    )
