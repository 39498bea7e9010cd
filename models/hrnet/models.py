"""The four HRNet-family segmentation models of the MIC-DKFZ Cityscapes study, on one backbone.

=================  ==================================================  =======================================
model              reference                                           outputs (``output_names``)
=================  ==================================================  =======================================
``HRNetV2``        Sun et al. 2019, HRNet-Semantic-Segmentation        ``("out",)``
``HRNetOCR``       Yuan et al. ECCV 2020 (NVIDIA/MIC-DKFZ ``OCRNet``)  ``("out", "aux")``
``HRNetOCRASPP``   MIC-DKFZ ``hrnet_ocr_aspp.py`` (ASPP -> OCR+ASPP)   ``("out", "aux")``
``HRNetMSOCR``     Tao et al. 2020 (NVIDIA/MIC-DKFZ ``MscaleOCR``)     train: ``("out", "aux", "scale_0.5",
                                                                       "scale_1.0")``; eval: ``out``, ``aux``
=================  ==================================================  =======================================

All take ``x: float[N, 3, H, W]`` (normalised) and return logits ``float[N, K, H, W]`` at the input
resolution (bilinear with the model's ``align_corners``, as the reference code does). Parameter counts
with K=19 equal the official implementations (see ``tests/models/test_hrnet.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.hrnet.backbone import HRNetBackbone
from models.hrnet.heads import ASPP, OCRBlock, scale_attention_head
from models.hrnet.weights import LoadReport, load_pretrained_into


class HRNetSegmentationBase(nn.Module):
    """Shared part: the HRNetV2 backbone, resizing, and ``model.pretrained`` loading.

    Args:
        num_classes: K.
        width: HRNet width C (18 or 48; see :data:`models.hrnet.backbone.HRNET_WIDTHS`).
        align_corners: of every bilinear resize in the model.
        weights_dir: folder of the named weight files (``${environment.weights_dir}``).
        weight_files: ``{name: file name}`` for ``pretrained`` names (ImageNet, Paddle, Mapillary).
    """

    output_names: tuple[str, ...] = ("out",)

    def __init__(
        self,
        num_classes: int,
        width: int = 48,
        align_corners: bool = False,
        weights_dir: str | None = None,
        weight_files: dict | None = None,
    ):
        super().__init__()
        self.num_classes, self.align_corners = int(num_classes), bool(align_corners)
        self.weights_dir, self.weight_files = weights_dir, dict(weight_files or {})
        self.backbone = HRNetBackbone(width, align_corners)
        self.load_report: LoadReport | None = None

    def _resize(self, x: torch.Tensor, size) -> torch.Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=self.align_corners)

    def load_pretrained(self, path_or_name: str) -> None:
        """Load ``ImageNet`` / ``Paddle`` / ``Mapillary`` (files under ``weights_dir``) or a checkpoint path.

        Foreign keys are mapped by :func:`models.hrnet.weights.map_key`; missing, unexpected and
        shape-mismatched keys are logged and kept in ``self.load_report``.

        Raises:
            FileNotFoundError: the file is absent (names the expected file and ``${environment.weights_dir}``).
            ValueError: no backbone tensor matched (e.g. a W48 checkpoint for a W18 model).
        """
        self.load_report = load_pretrained_into(self, path_or_name, self.weights_dir, self.weight_files)

    def _maybe_load(self, pretrained: str | None) -> None:
        if pretrained:
            self.load_pretrained(pretrained)


class HRNetV2(HRNetSegmentationBase):
    """HRNetV2-W<C> (Sun et al. 2019): backbone representation (15C channels at 1/4) + ``last_layer`` head.

    ``last_layer`` = conv1x1(15C, 15C) + BN + ReLU + conv1x1(15C, K) (keys as in ``seg_hrnet.py``).
    Args: ``pretrained`` (None, a weight name or a path); the others (``width``, ``align_corners``,
    ``weights_dir``, ``weight_files``) as :class:`HRNetSegmentationBase`.
    ``forward(x: float[N, 3, H, W]) -> {"out": float[N, K, H, W]}``. Params at K=19: W48 65,859,379; W18 9,641,119.
    """

    output_names = ("out",)

    def __init__(self, num_classes: int, pretrained: str | None = None, **base_options):
        super().__init__(num_classes, **base_options)
        c = self.backbone.out_channels
        self.last_layer = nn.Sequential(
            nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, num_classes, 1)
        )
        self._maybe_load(pretrained)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self._resize(self.last_layer(self.backbone(x)), x.shape[-2:])}


class HRNetOCR(HRNetSegmentationBase):
    """HRNetV2 + OCR (Yuan et al. ECCV 2020), NVIDIA/MIC-DKFZ layout (``ocr.conv3x3_ocr``, ``ocr.aux_head`` ...).

    Args (besides :class:`HRNetSegmentationBase`): ``mid_channels`` (512), ``key_channels`` (256),
    ``dropout`` (0.05) of the OCR block; ``aspp_channels`` (None: plain OCR; an int: the OCR+ASPP variant,
    see :class:`HRNetOCRASPP`); ``pretrained`` (None, a weight name or a path).

    ``forward(x) -> {"out": float[N, K, H, W], "aux": float[N, K, H, W]}`` (aux = soft object regions head).
    Params at K=19: W48 70,372,678; W18 12,080,818.
    """

    output_names = ("out", "aux")

    def __init__(
        self,
        num_classes: int,
        width: int = 48,
        mid_channels: int = 512,
        key_channels: int = 256,
        dropout: float = 0.05,
        aspp_channels: int | None = None,
        align_corners: bool = True,
        pretrained: str | None = None,
        weights_dir: str | None = None,
        weight_files: dict | None = None,
    ):
        super().__init__(num_classes, width, align_corners, weights_dir, weight_files)
        in_channels = self.backbone.out_channels
        if aspp_channels:
            self.aspp = ASPP(in_channels, int(aspp_channels), output_stride=8)
            in_channels = self.aspp.out_channels
        else:
            self.aspp = None
        self.ocr = OCRBlock(in_channels, num_classes, mid_channels, key_channels, dropout, aspp_channels=aspp_channels)
        self._maybe_load(pretrained)

    def _single_scale(self, x: torch.Tensor):
        """(cls logits, aux logits, OCR features), all at 1/4 of ``x``."""
        feats = self.backbone(x)
        return self.ocr(self.aspp(feats) if self.aspp is not None else feats)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        cls, aux, _ = self._single_scale(x)
        return {"out": self._resize(cls, x.shape[-2:]), "aux": self._resize(aux, x.shape[-2:])}


class HRNetOCRASPP(HRNetOCR):
    """MIC-DKFZ OCR+ASPP: ASPP(15C -> 5x256) on the backbone, then OCR whose fusion also concatenates an
    ASPP(512 -> 5x256) of the OCR features (``hrnet_ocr_aspp.py``; ASPP rates 12/24/36 = output stride 8).

    Args: as :class:`HRNetOCR` with ``aspp_channels`` defaulting to 256 (both ASPPs).
    ``forward(x) -> {"out", "aux"}`` as HRNetOCR. Params at K=19: W48 83,892,326.

    Raises:
        ValueError: ``aspp_channels`` is not a positive int.
    """

    def __init__(self, num_classes: int, aspp_channels: int = 256, **ocr_options):
        if not aspp_channels or int(aspp_channels) <= 0:
            raise ValueError(f"HRNetOCRASPP needs aspp_channels > 0, got {aspp_channels!r}")
        super().__init__(num_classes, aspp_channels=aspp_channels, **ocr_options)


class HRNetMSOCR(HRNetOCR):
    """MS-OCR (Tao et al. 2020, "Hierarchical Multi-Scale Attention"): HRNet-OCR trunk + scale attention.

    Each scale s runs the trunk on the bilinearly resized image and predicts logits ``p_s`` and an attention
    ``a_s`` (from the OCR features, :func:`heads.scale_attention_head`), all resized to that scale's input
    size. Scales are merged from the largest down (NVIDIA ``nscale_forward``): for s >= 1
    ``p = a_s * p_s + (1 - a_s) * down(p)``; for s < 1 ``p = up(a_s * p_s) + (1 - up(a_s)) * p``.
    The auxiliary logits are merged with the same attention.

    Args (besides :class:`HRNetOCR`):
        train_scales: scales in training mode ([0.5, 1.0]).
        eval_scales: scales in eval mode ([0.5, 1.0, 2.0]); the inference engine sees this attribute and
            does not add its own scales.
        attn_channels: bottleneck channels of the attention head (256).
        ``aspp_channels`` is not an option (plain OCR on every scale).

    ``forward(x: float[N, 3, H, W])``: training -> ``{"out", "aux", "scale_<s>" for s in train_scales}``
    (per-scale logits resized to the output size); eval -> ``{"out", "aux"}``; all float[N, K, H, W] when
    1.0 is among the scales. Params at K=19: W48 72,143,430; W18 13,851,570.

    Raises:
        ValueError: empty or non-positive scales.
    """

    output_names = ("out", "aux", "scale_0.5", "scale_1.0")

    def __init__(
        self,
        num_classes: int,
        train_scales=(0.5, 1.0),
        eval_scales=(0.5, 1.0, 2.0),
        attn_channels: int = 256,
        mid_channels: int = 512,
        pretrained: str | None = None,
        **ocr_options,
    ):
        super().__init__(num_classes, mid_channels=mid_channels, aspp_channels=None, pretrained=None, **ocr_options)
        self.train_scales, self.eval_scales = (
            self._check_scales(train_scales, "train_scales"),
            self._check_scales(eval_scales, "eval_scales"),
        )
        self.output_names = ("out", "aux", *(f"scale_{s}" for s in self.train_scales))
        self.scale_attn = scale_attention_head(mid_channels, attn_channels)
        self._maybe_load(pretrained)

    @staticmethod
    def _check_scales(scales, name: str) -> list[float]:
        scales = [float(s) for s in (scales or [])]
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"model.{name} must be a non-empty list of positive scales, got {scales}")
        return scales

    def _one_scale(self, x: torch.Tensor, s: float):
        xs = (
            x
            if s == 1.0
            else F.interpolate(
                x, scale_factor=s, mode="bilinear", align_corners=self.align_corners, recompute_scale_factor=True
            )
        )
        cls, aux, feats = self._single_scale(xs)
        attn = self.scale_attn(feats)
        size = xs.shape[-2:]
        return self._resize(cls, size), self._resize(aux, size), self._resize(attn, size)

    def multiscale(self, x: torch.Tensor, scales) -> tuple[torch.Tensor, torch.Tensor, dict[float, torch.Tensor]]:
        """Hierarchical attention over ``scales``: returns (pred, aux, {scale: its own logits}) (see class doc)."""
        pred = aux = None
        per_scale: dict[float, torch.Tensor] = {}
        for s in sorted(scales, reverse=True):
            cls_s, aux_s, attn_s = self._one_scale(x, s)
            per_scale[s] = cls_s
            if pred is None:
                pred, aux = cls_s, aux_s
            elif s >= 1.0:
                pred = attn_s * cls_s + (1 - attn_s) * self._resize(pred, cls_s.shape[-2:])
                aux = attn_s * aux_s + (1 - attn_s) * self._resize(aux, cls_s.shape[-2:])
            else:
                attn_up = self._resize(attn_s, pred.shape[-2:])
                pred = self._resize(attn_s * cls_s, pred.shape[-2:]) + (1 - attn_up) * pred
                aux = self._resize(attn_s * aux_s, aux.shape[-2:]) + (1 - attn_up) * aux
        return pred, aux, per_scale

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.training:
            pred, aux, _ = self.multiscale(x, self.eval_scales)
            return {"out": pred, "aux": aux}
        pred, aux, per_scale = self.multiscale(x, self.train_scales)
        out = {"out": pred, "aux": aux}
        out.update({f"scale_{s}": self._resize(per_scale[s], pred.shape[-2:]) for s in self.train_scales})
        return out
