"""The inference engine: whole-image or sliding-window, multi-scale and flip, merged as probabilities.

Convention (as MMSegmentation): every view (scale x flip x window) yields softmax probabilities that are
resized to the original image size (bilinear, ``align_corners=False``) and averaged; the label is the
argmax of the average.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class InferenceSettings:
    """Test-time settings (``dataset.test`` in the configs).

    Attributes:
        mode: ``whole`` (one forward per view) or ``slide`` (windows of ``crop_size`` every ``stride``).
        crop_size: (H, W) of slide windows in pixels.
        stride: (H, W) step of slide windows in pixels.
        scales: image scale factors, e.g. ``[0.5, 1.0, 2.0]``.
        flip: also run the horizontally flipped image.
        window_batch: slide windows per forward.
        accumulate_on: device of the full-size accumulator (``None`` = the image's device, ``"cpu"``).
    """

    mode: str = "whole"
    crop_size: Sequence[int] | None = None
    stride: Sequence[int] | None = None
    scales: Sequence[float] = field(default_factory=lambda: [1.0])
    flip: bool = False
    window_batch: int = 4
    accumulate_on: str | None = None

    @classmethod
    def from_config(cls, cfg) -> "InferenceSettings":
        """Build from a mapping (e.g. ``cfg.dataset.test``); unknown keys are ignored, None keeps defaults."""
        if cfg is None:
            return cls()
        names = {f for f in cls.__dataclass_fields__}
        kw = {k: (list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v)
              for k, v in dict(cfg).items() if k in names and v is not None}
        return cls(**kw)


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out["out"] if isinstance(out, dict) else out


@torch.no_grad()
def infer(model: nn.Module, images: torch.Tensor, settings: InferenceSettings | None = None,
          out_size: Sequence[int] | None = None) -> torch.Tensor:
    """Class probabilities for a batch of normalised images.

    Args:
        model: segbench model (``forward -> {"out": logits}``), in eval mode.
        images: float[N, 3, H, W] normalised images.
        settings: :class:`InferenceSettings` (whole, scale 1, no flip by default).
        out_size: (H_out, W_out) of the result; default (H, W).

    Returns:
        float32[N, K, H_out, W_out] softmax probabilities averaged over views.

    Raises:
        ValueError: unknown mode, or slide mode without crop_size/stride.
    """
    s = settings or InferenceSettings()
    if s.mode not in ("whole", "slide"):
        raise ValueError(f"inference mode must be 'whole' or 'slide', got {s.mode!r}")
    if s.mode == "slide" and (not s.crop_size or not s.stride):
        raise ValueError("slide inference needs crop_size and stride (H, W)")
    h, w = images.shape[-2:]
    out_size = tuple(out_size or (h, w))
    acc = None
    n_views = 0
    for scale in s.scales:
        x = images if scale == 1.0 else F.interpolate(images, scale_factor=scale, mode="bilinear",
                                                      align_corners=False)
        for flip in ([False, True] if s.flip else [False]):
            xv = torch.flip(x, dims=[-1]) if flip else x
            logits = _forward(model, xv) if s.mode == "whole" else _slide(model, xv, s)
            probs = F.interpolate(logits.float(), size=out_size, mode="bilinear", align_corners=False).softmax(1) \
                if tuple(logits.shape[-2:]) != out_size else logits.float().softmax(1)
            if flip:
                probs = torch.flip(probs, dims=[-1])
            if s.accumulate_on:
                probs = probs.to(s.accumulate_on)
            acc = probs if acc is None else acc.add_(probs)
            n_views += 1
    return acc / n_views


def _slide(model: nn.Module, x: torch.Tensor, s: InferenceSettings) -> torch.Tensor:
    """Sliding-window logits float[N,K,H,W] (placeholder for the full engine of the inference issue)."""
    ch, cw = s.crop_size
    sh, sw = s.stride
    n, _, h, w = x.shape
    rows = max(h - ch + sh - 1, 0) // sh + 1
    cols = max(w - cw + sw - 1, 0) // sw + 1
    acc, cnt = None, torch.zeros((1, 1, h, w), device=x.device)
    for r in range(rows):
        for c in range(cols):
            y0, x0 = min(r * sh, max(h - ch, 0)), min(c * sw, max(w - cw, 0))
            y1, x1 = min(y0 + ch, h), min(x0 + cw, w)
            logits = _forward(model, x[..., y0:y1, x0:x1])
            logits = F.interpolate(logits.float(), size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
            if acc is None:
                acc = x.new_zeros((n, logits.shape[1], h, w), dtype=torch.float32)
            acc[..., y0:y1, x0:x1] += logits
            cnt[..., y0:y1, x0:x1] += 1
    return acc / cnt


def predict_labels(model: nn.Module, images: torch.Tensor, settings: InferenceSettings | None = None,
                   out_size: Sequence[int] | None = None) -> torch.Tensor:
    """Predicted trainIds int64[N, H_out, W_out] = argmax of :func:`infer`."""
    return infer(model, images, settings, out_size).argmax(1)
