"""Pretrained weights for the HRNet family: name resolution and foreign-key mapping.

``model.pretrained`` is ``null``, a name of ``model.weight_files`` (``ImageNet``, ``Paddle``, ``Mapillary``;
files under ``${environment.weights_dir}``) or a path. Nothing is downloaded. Checkpoint layouts mapped
onto our modules (whose keys are ``backbone.<official HRNet key>``, ``last_layer.*``, ``aspp.*``, ``ocr.*``,
``scale_attn.*``):

- official HRNet ImageNet classification (HRNet-Image-Classification ``hrnetv2_w48_imagenet_pretrained.pth``,
  ``HRNet_W48_C_ssld_pretrained.pth``): flat ``conv1.weight``, ``stage4.2.fuse_layers...`` -> ``backbone.*``;
  its classifier (``incre_modules``, ``downsamp_modules``, ``final_layer``, ``classifier``) is reported unexpected;
- NVIDIA semantic-segmentation / MIC-DKFZ MS-OCR (``mapillary_ocrnet.HRNet_Mscale_fast-rattlesnake.pth``):
  ``{"state_dict": {"module.backbone.*", "module.ocr.*", "module.scale_attn.*"}}``; tensors whose shape
  differs (Mapillary's 65-class ``cls_head``/``aux_head``) are skipped and reported;
- HRNet-Semantic-Segmentation (``model.`` prefix, flat backbone, HRNetV2 ``last_layer.*``; HRNet-OCR flat
  ``conv3x3_ocr.1.*`` / ``aux_head.{1,3}.*`` BN/conv indices renamed to the NVIDIA nesting), MIC-DKFZ and
  segbench Lightning checkpoints (``model.`` prefix).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from models.checkpoint import read_state_dict

log = logging.getLogger("segbench")

_BACKBONE_ROOTS = (
    "conv1.",
    "bn1.",
    "conv2.",
    "bn2.",
    "layer1.",
    "transition1.",
    "transition2.",
    "transition3.",
    "stage2.",
    "stage3.",
    "stage4.",
)
_WRAPPER_PREFIXES = ("module.", "model.")
_IMAGENET_CLASSIFIER = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")  # expected leftovers
_FLAT_OCR_ROOTS = ("conv3x3_ocr.", "aux_head.", "cls_head.", "ocr_gather_head.", "ocr_distri_head.")
# HRNet-Semantic-Segmentation seg_hrnet_ocr.py puts BN directly in Sequential(conv, BN, ReLU[, conv]); NVIDIA nests BNReLU
_FLAT_OCR_RENAMES = (
    (re.compile(r"^conv3x3_ocr\.1\."), "conv3x3_ocr.1.0."),
    (re.compile(r"^aux_head\.1\."), "aux_head.1.0."),
    (re.compile(r"^aux_head\.3\."), "aux_head.2."),
)
_SOURCES = {  # where users get the named files (README "Models: HRNet family")
    "ImageNet": "https://github.com/HRNet/HRNet-Image-Classification (ImageNet pretrained models)",
    "Paddle": "https://github.com/HRNet/HRNet-Image-Classification/releases (PretrainedWeights)",
    "Mapillary": "https://github.com/NVIDIA/semantic-segmentation#download-weights",
}


@dataclass
class LoadReport:
    """What :func:`load_hrnet_state` did: key lists (our names) and the number of tensors copied."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # our keys the checkpoint did not provide
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys (mapped) we have no module for
    mismatched: list[str] = field(default_factory=list)  # present in both, different shape: kept ours

    def summary(self) -> str:
        def head(keys):
            return f"{len(keys)}" + (f" (e.g. {keys[:4]})" if keys else "")

        return (
            f"loaded {len(self.loaded)} tensors; missing {head(self.missing)}; unexpected {head(self.unexpected)}; "
            f"shape mismatch {head(self.mismatched)}"
        )


def resolve_weights(pretrained: str, weights_dir: str | os.PathLike | None, weight_files: dict | None) -> Path:
    """Map ``pretrained`` (a name of ``weight_files`` or a path) to an existing file.

    Raises:
        FileNotFoundError: the file is absent; the message names the expected file, ``${environment.weights_dir}``
            (``SEGBENCH_WEIGHTS``) and where the file comes from.
    """
    weight_files = dict(weight_files or {})
    if pretrained in weight_files:
        path = Path(weights_dir or "weights") / str(weight_files[pretrained])
        if not path.is_file():
            raise FileNotFoundError(
                f"model.pretrained={pretrained}: expected {path} (${{environment.weights_dir}}={weights_dir}, "
                f"set SEGBENCH_WEIGHTS or environment.weights_dir); nothing is downloaded. Get "
                f"{Path(str(weight_files[pretrained])).name} from {_SOURCES.get(pretrained, 'its authors')}"
            )
        return path
    path = Path(str(pretrained)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"model.pretrained={pretrained!r} is neither one of {sorted(weight_files)} (files under "
            f"${{environment.weights_dir}}={weights_dir}) nor an existing file"
        )
    return path


def map_key(key: str) -> str:
    """Foreign checkpoint key -> our key: strip ``module.``/``model.`` wrappers, prefix flat backbone keys.

    e.g. ``module.backbone.stage2.0.branches.0.0.conv1.weight`` -> ``backbone.stage2.0.branches.0.0.conv1.weight``,
    ``conv1.weight`` -> ``backbone.conv1.weight``, ``model.ocr.cls_head.bias`` -> ``ocr.cls_head.bias``,
    ``model.aux_head.3.weight`` (official HRNet-OCR) -> ``ocr.aux_head.2.weight``.
    """
    changed = True
    while changed:
        changed = False
        for p in _WRAPPER_PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    if key.startswith(_BACKBONE_ROOTS):
        key = "backbone." + key
    elif key.startswith(_FLAT_OCR_ROOTS):  # official HRNet-OCR (HRNet-Semantic-Segmentation) layout
        for pattern, repl in _FLAT_OCR_RENAMES:
            key = pattern.sub(repl, key)
        key = "ocr." + key
    return key


def load_hrnet_state(model: nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """Copy the tensors of a foreign ``state`` into ``model`` by :func:`map_key`; shapes must match.

    Raises:
        ValueError: no backbone tensor could be loaded (wrong file, or another width: the message says which).
    """
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        mapped.setdefault(map_key(k), v)
    report = LoadReport()
    load = {}
    for k, v in mapped.items():
        if k not in ours:
            report.unexpected.append(k)
        elif tuple(v.shape) != tuple(ours[k].shape):
            report.mismatched.append(k)
        else:
            load[k] = v
    report.loaded = sorted(load)
    report.missing = sorted(k for k in ours if k not in load and k not in report.mismatched)
    if not any(k.startswith("backbone.") for k in load):
        width = getattr(getattr(model, "backbone", None), "width", "?")
        probe, hint = (
            "backbone.stage2.0.branches.0.0.conv1.weight",
            "",
        )  # first conv of the C-wide branch: C x C x 3 x 3
        if probe in report.mismatched:
            w = mapped[probe].shape[0]
            hint = f"; the checkpoint is HRNet-W{w}, the model W{width} (set model.width={w})"
        raise ValueError(f"no backbone weights matched the HRNet-W{width} model ({report.summary()}){hint}")
    model.load_state_dict(load, strict=False)
    return report


def load_pretrained_into(model: nn.Module, path_or_name: str, weights_dir=None, weight_files=None) -> LoadReport:
    """Resolve, read, map and load; logs the report. See :func:`resolve_weights`, :func:`load_hrnet_state`."""
    path = resolve_weights(path_or_name, weights_dir, weight_files)
    report = load_hrnet_state(model, read_state_dict(path))
    surprising = report.mismatched or [k for k in report.unexpected if not k.startswith(_IMAGENET_CLASSIFIER)]
    (log.warning if surprising else log.info)(f"{type(model).__name__}: weights from {path}: {report.summary()}")
    return report
