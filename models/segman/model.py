"""SegMAN segmentor: SegMAN Encoder + MMSCopE decoder behind the segbench model contract.

Fu, Lou, Yu, "SegMAN: Omni-scale Context Modeling with State Space Models and Local Attention for Semantic
Segmentation", CVPR 2025 (official code: github.com/yunxiangfu2001/SegMAN, MMSeg v0.30 ``EncoderDecoder`` with
``SegMANEncoder_{t,s,b}`` and ``SegMANDecoder``). Neighbourhood attention and the selective scan run in pure PyTorch
(:mod:`models.segman.neighborhood_attention`, :mod:`models.segman.selective_scan`) instead of the NATTEN and
VMamba CUDA kernels: same results, slower.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from models.espnet.common import resolve_weights
from models.normalization import build_input_convention
from models.segman.decoder import MMSCopE
from models.segman.encoder import SegMANEncoder
from models.segman.variants import get_variant
from models.segman.weights import read_official

__all__ = ["SegMAN"]

log = logging.getLogger("segbench")

#: the official release's ImageNet-1k encoder files, looked up under ``<weights_dir>/segman/``
ENCODER_FILES = {"t": "SegMAN_Encoder_t.pth.tar", "s": "SegMAN_Encoder_s.pth.tar", "b": "SegMAN_Encoder_b.pth.tar"}
STRIDE = 32


class SegMAN(nn.Module):
    """SegMAN-T/S/B for semantic segmentation.

    Args:
        num_classes: K (``${dataset.num_classes}``).
        variant: ``t``, ``s`` or ``b`` (hyper-parameters in :mod:`models.segman.variants`).
        pretrained: optional official checkpoint loaded at build time: ``ImageNet`` (the release's encoder file
            ``SegMAN_Encoder_<variant>.pth.tar`` under ``<weights_dir>/segman/``), a file name under that folder,
            or a path; an ImageNet encoder file or an MMSeg segmentor checkpoint (:meth:`load_pretrained`).
        weights_dir: ``${environment.weights_dir}``.
        drop_path_rate: encoder stochastic depth (0 in the official segmentation configs).
        dropout: dropout before the classifier (0.1).
        scan_chunk_size: chunk length of the pure-PyTorch selective scan (speed/memory only, same result).
        input_conventions: ``{dataset name or "*": {channel_order, mean, std, value_range, divisor}}``: the
            normalisation the ImageNet weights expect, applied inside the model (:mod:`models.normalization`).
        data_norm: ``{name, mean, std}`` of the dataset feeding the model.

    Input float32[N, 3, H, W] (dataset-normalised). The official pipelines feed sides that are multiples of 32
    (``AlignedResize`` with ``size_divisor=32``, 512x512 crops) and at least 224 (NATTEN needs every window to fit
    its map); other inputs are zero-padded at the bottom and right up to that (after the input convention, as
    MMSeg's ``Pad`` pads normalised images) and the logits are cropped back. Output
    ``{"out": float32[N, K, H, W]}``: the decoder's 1/8 logits resized bilinearly (``align_corners=False``) to the
    padded input, as MMSeg's ``EncoderDecoder`` does, then cropped.

    Raises:
        ValueError: unknown variant, K < 1, or a checkpoint that does not fit (:meth:`load_pretrained`).
        FileNotFoundError: ``pretrained`` not found (the expected path under ``<weights_dir>/segman/`` named).
    """

    output_names = ("out",)

    def __init__(
        self,
        num_classes: int,
        variant: str = "t",
        pretrained: str | None = None,
        weights_dir: str | None = None,
        drop_path_rate: float = 0.0,
        dropout: float = 0.1,
        scan_chunk_size: int = 16,
        input_conventions: Mapping | None = None,
        data_norm: Mapping | None = None,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"SegMAN: num_classes={num_classes} must be >= 1")
        self.variant_name = str(variant).lower()
        self.variant = get_variant(variant)
        self.num_classes, self.weights_dir = num_classes, weights_dir
        self.input_convention = build_input_convention(input_conventions, data_norm) or nn.Identity()
        self.encoder = SegMANEncoder(self.variant, drop_path_rate, scan_chunk_size)
        self.decoder = MMSCopE(
            self.variant.embed_dims,
            num_classes,
            self.variant.decoder_channels,
            self.variant.feat_proj_dim,
            dropout,
            scan_chunk_size,
        )
        if pretrained:
            self.load_pretrained(pretrained)

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) after padding: multiples of 32, at least the variant's smallest input side."""
        low = self.variant.min_input_size
        return tuple(max(math.ceil(s / STRIDE) * STRIDE, low) for s in (height, width))  # type: ignore[return-value]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """float[N,3,H,W] dataset-normalised -> ``{"out": logits float[N,K,H,W]}``."""
        h, w = x.shape[-2:]
        ph, pw = self.padded_size(h, w)
        x = self.input_convention(x)
        if (ph, pw) != (h, w):
            x = F.pad(x, (0, pw - w, 0, ph - h))
        logits = self.decoder(self.encoder(x))
        logits = F.interpolate(logits, size=(ph, pw), mode="bilinear", align_corners=False)
        return {"out": logits[:, :, :h, :w]}

    def load_pretrained(self, path_or_name: str | os.PathLike) -> None:
        """Load an official SegMAN checkpoint (key names mapped by :mod:`models.segman.weights`).

        ``ImageNet`` names the release's encoder file of this variant. An encoder-only file (ImageNet) must hold
        every encoder tensor and leaves the decoder initialised; a segmentor file must hold every tensor, except a
        classifier of another class count, which keeps its initialisation (logged).

        Raises:
            FileNotFoundError: the file is missing (the expected path under ``<weights_dir>/segman/`` named).
            ValueError: unexpected or missing tensors or shape mismatches (counts and first names listed).
        """
        name = ENCODER_FILES[self.variant_name] if str(path_or_name) == "ImageNet" else path_or_name
        path = resolve_weights(name, self.weights_dir, "segman")
        state = read_official(path)
        own = self.state_dict()
        if not any(k.startswith("decoder.") for k in state):
            own = {k: v for k, v in own.items() if k.startswith("encoder.")}
        skipped = [
            k for k in state if k.startswith("decoder.classifier.") and k in own and state[k].shape != own[k].shape
        ]
        if skipped:
            log.warning(f"{path}: classifier of another class count not loaded ({skipped})")
        state = {k: v for k, v in state.items() if k not in skipped}
        missing = [k for k in own if k not in state and k not in skipped and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in state if k not in own]
        shapes = [
            f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
            for k, v in state.items()
            if k in own and v.shape != own[k].shape
        ]
        if missing or unexpected or shapes:
            raise ValueError(
                f"{path} does not fit SegMAN-{self.variant_name.upper()}: {len(missing)} missing {missing[:3]}, "
                f"{len(unexpected)} unexpected {unexpected[:3]}, {len(shapes)} shape mismatches {shapes[:3]} "
                f"(check model.variant)"
            )
        self.load_state_dict(state, strict=False)
