"""Shared parts of the author-checkpoint models (ESPNet, ESPNetv2): input convention, padding, loading.

* :class:`InputConvention` (defined in :mod:`models.normalization`, shared with the smp models) re-normalises
  the segbench input (normalised with the *dataset's* ``mean``/``std``, RGB, 0..1 scale) into the preprocessing
  an author checkpoint was trained with (e.g. ESPNet: BGR, per-channel mean/std on 0..255 values, then /255),
  configured in ``config/model/<name>.yaml`` (``input_conventions``).
* :func:`pad_to_multiple` / crop: the models concatenate encoder and decoder maps, so H and W are zero-padded
  to a multiple of the output stride and the logits cropped back.
* :func:`load_author_checkpoint`: strict loading of a plain state dict with an explicit key map.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.checkpoint import read_state_dict
from models.normalization import CHANNEL_ORDERS, InputConvention, build_input_convention  # noqa: F401


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad float[N,C,H,W] at the bottom/right to multiples of ``multiple``; returns (padded, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = math.ceil(h / multiple) * multiple - h, math.ceil(w / multiple) * multiple - w
    return (F.pad(x, (0, pw, 0, ph)) if ph or pw else x), (h, w)


def resolve_weights(
    path_or_name: str | os.PathLike, weights_dir: str | os.PathLike | None, subdir: str, suffix: str = ".pth"
) -> Path:
    """Find an author checkpoint: an existing path, else ``<weights_dir>/<subdir>/<name>[.pth]``.

    Raises:
        FileNotFoundError: neither exists; the message names the expected file and
            ``${environment.weights_dir}`` (``SEGBENCH_WEIGHTS``).
    """
    p = Path(path_or_name)
    if p.is_file():
        return p
    candidates = []
    if weights_dir is not None:
        base = Path(weights_dir) / subdir
        candidates = [base / p, base / f"{p}{suffix}"]
        for c in candidates:
            if c.is_file():
                return c
    expected = candidates[0] if candidates else p
    raise FileNotFoundError(
        f"checkpoint {str(path_or_name)!r} not found (expected {expected}); put the authors' file under "
        f"${{environment.weights_dir}}/{subdir}/ (SEGBENCH_WEIGHTS, weights_dir={weights_dir}) or give its path; "
        f"nothing is downloaded"
    )


def load_author_checkpoint(model: nn.Module, path: Path, key_map: Callable[[str], str | None] | None = None) -> None:
    """Load a plain state dict (or one wrapped in ``state_dict``) strictly after renaming keys with ``key_map``.

    ``key_map(key) -> new key`` (None drops the key, e.g. ``num_batches_tracked``). Shapes must match.

    Raises:
        ValueError: missing/unexpected keys or shape mismatches (counts and the first names are listed).
    """
    state = read_state_dict(path)
    renamed = {}
    for k, v in state.items():
        k = k[len("module.") :] if k.startswith("module.") else k
        nk = key_map(k) if key_map else k
        if nk is not None:
            renamed[nk] = v
    own = model.state_dict()
    missing = [k for k in own if k not in renamed and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in renamed if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(renamed[k].shape)} vs model {tuple(own[k].shape)}"
        for k in renamed
        if k in own and renamed[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"{path}: does not fit {type(model).__name__} ({getattr(model, 'describe', '')}): "
            f"{len(missing)} missing keys {missing[:4]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:4]}, {len(shapes)} shape mismatches {shapes[:3]} "
            f"(check p/q/s/num_classes/extra_classes)"
        )
    model.load_state_dict(renamed, strict=False)
