"""Shared parts of the author-checkpoint models (ESPNet, ESPNetv2): input convention, padding, loading.

* :class:`InputConvention` re-normalises the segbench input (normalised with the *dataset's* ``mean``/``std``,
  RGB, 0..1 scale) into the preprocessing an author checkpoint was trained with (e.g. ESPNet: BGR,
  per-channel mean/std on 0..255 values, then /255). It is one fixed per-channel affine map plus a channel
  permutation, configured in ``config/model/<name>.yaml`` (``input_conventions``), so the dataset pipeline
  stays the same for every model.
* :func:`pad_to_multiple` / crop: the models concatenate encoder and decoder maps, so H and W are zero-padded
  to a multiple of the output stride and the logits cropped back.
* :func:`load_author_checkpoint`: strict loading of a plain state dict with an explicit key map.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.checkpoint import read_state_dict

CHANNEL_ORDERS = ("RGB", "BGR")


class InputConvention(nn.Module):
    """Map dataset-normalised RGB input to an author checkpoint's input convention.

    The segbench pipeline feeds ``x = (rgb / 255 - dataset_mean) / dataset_std`` (RGB, float32[N,3,H,W]).
    The checkpoint expects ``y = (v - mean) / std / divisor`` with ``v = rgb / 255 * value_range`` reordered
    to ``channel_order``, ``mean``/``std`` given in that channel order on the ``value_range`` scale.
    Examples: ESPNet (Mehta et al. 2018, sacmehta/ESPNet ``VisualizeResults.py``): BGR, mean/std on 0..255,
    ``value_range=255``, ``divisor=255``; ESPNetv2 (EdgeNets): RGB ImageNet mean/std, ``value_range=1``.
    Both are the per-channel affine ``y_c = a_c * x_{perm(c)} + b_c`` computed once here.

    Args:
        dataset_mean: 3 floats, the dataset config's ``mean`` (RGB, 0..1 scale).
        dataset_std: 3 floats, the dataset config's ``std`` (RGB, 0..1 scale).
        mean: 3 floats, the checkpoint's means in ``channel_order`` on the ``value_range`` scale.
        std: 3 floats, the checkpoint's standard deviations in ``channel_order`` on the ``value_range`` scale.
        channel_order: ``"RGB"`` or ``"BGR"``.
        value_range: full-scale value of the pixels the statistics refer to (255 or 1).
        divisor: extra division after normalising (ESPNet: 255).

    Raises:
        ValueError: an unknown ``channel_order`` or a statistic that is not 3 numbers (std must be > 0).
    """

    def __init__(
        self,
        dataset_mean: Sequence[float],
        dataset_std: Sequence[float],
        mean: Sequence[float],
        std: Sequence[float],
        channel_order: str = "RGB",
        value_range: float = 1.0,
        divisor: float = 1.0,
    ):
        super().__init__()
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"input convention channel_order={channel_order!r}; valid: {list(CHANNEL_ORDERS)}")
        for name, v in (("dataset mean", dataset_mean), ("dataset std", dataset_std), ("mean", mean), ("std", std)):
            if len(list(v)) != 3:
                raise ValueError(f"input convention {name} must have 3 values, got {list(v)}")
        if min(list(std) + list(dataset_std)) <= 0:
            raise ValueError(
                f"input convention std values must be > 0, got std={list(std)} dataset std={list(dataset_std)}"
            )
        perm = [2, 1, 0] if channel_order == "BGR" else [0, 1, 2]
        dm = torch.tensor(dataset_mean, dtype=torch.float64)[perm]
        ds = torch.tensor(dataset_std, dtype=torch.float64)[perm]
        m, s = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
        scale = ds * value_range / (s * divisor)
        shift = (dm * value_range - m) / (s * divisor)
        self.channel_order = channel_order
        self.register_buffer("perm", torch.tensor(perm), persistent=False)
        self.register_buffer("scale", scale.float().view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.float().view(1, 3, 1, 1), persistent=False)
        self.identity = bool(
            perm == [0, 1, 2]
            and torch.allclose(scale, torch.ones_like(scale), atol=1e-6)
            and torch.allclose(shift, torch.zeros_like(shift), atol=1e-6)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float[N,3,H,W] dataset-normalised RGB -> float[N,3,H,W] in the checkpoint's convention."""
        if self.identity:
            return x
        if self.channel_order == "BGR":
            x = x.flip(1)
        return torch.addcmul(self.shift.to(x.dtype), x, self.scale.to(x.dtype))

    def extra_repr(self) -> str:
        return f"channel_order={self.channel_order}, identity={self.identity}"


def build_input_convention(conventions: Mapping | None, data_norm: Mapping | None) -> InputConvention | None:
    """Pick the convention for ``data_norm["name"]`` (else the ``"*"`` entry) from a model config table.

    Args:
        conventions: ``{dataset name or "*": {channel_order, mean, std, value_range, divisor}}`` or None.
        data_norm: ``{"name", "mean", "std"}`` of the dataset config feeding the model, or None.

    Returns:
        The module, or None when no entry applies (the dataset normalisation is used as is).
    """
    if not conventions or not data_norm:
        return None
    spec = conventions.get(data_norm.get("name")) or conventions.get("*")
    if spec is None:
        return None
    return InputConvention(data_norm["mean"], data_norm["std"], **dict(spec))


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
