"""Sliding-window inference: the MMSeg ``slide_inference`` grid (:func:`window_starts`) and the logits of
overlapping windows averaged in place (:func:`slide_logits`), windows streamed through the model ``window_batch``
at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inference.settings import InferenceSettings

#: attribute of a model holding the temperature ``T`` its logits are divided by (temperature scaling, set by
#: :func:`inference.loading.load_for_inference` from the run's ``calibration/temperature.json``); absent or None: 1
TEMPERATURE_ATTR = "logit_temperature"


def forward_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The ``"out"`` logits of ``model(x)`` (a dict), or the output itself (a tensor), divided by the model's
    temperature when it has one (attribute :data:`TEMPERATURE_ATTR`)."""
    out = model(x)
    logits = out["out"] if isinstance(out, dict) else out
    t = getattr(model, TEMPERATURE_ATTR, None)
    return logits if t is None else logits / t


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """The device of ``model``'s first parameter; ``fallback`` for a model without parameters."""
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else fallback


def window_starts(size: int, crop: int, stride: int) -> list[int]:
    """Start offsets of slide windows along one axis (MMSeg ``slide_inference`` grid).

    ``n = max(size - crop + stride - 1, 0) // stride + 1`` windows start at ``i * stride``; a window that
    would cross the border is shifted back so that it ends at ``size`` (last window aligned to the
    border). With ``size <= crop`` there is one window covering ``[0, size)``.
    """
    n = max(size - crop + stride - 1, 0) // stride + 1
    return [max(min(i * stride + crop, size) - crop, 0) for i in range(n)]


@torch.no_grad()
def slide_logits(
    model: nn.Module, x: torch.Tensor, settings: InferenceSettings, accumulate_on: torch.device | str | None = None
) -> torch.Tensor:
    """Sliding-window logits: the mean of the logits of every window covering a pixel.

    Args:
        model: segbench model (``forward -> {"out": float[B, K, h, w]}``); windows are moved to its device.
        x: float[N, 3, H, W] (normalised) image batch, on any device.
        settings: gives ``crop_size``, ``stride`` (H, W) and ``window_batch``.
        accumulate_on: device of the result (default: ``x.device``).

    Returns:
        float32[N, K, H, W] averaged logits on ``accumulate_on``. Window outputs smaller than the window
        are resized to it (bilinear, ``align_corners=False``) before they are added.
    """
    (ch, cw), (sh, sw) = settings.crop_size, settings.stride
    n, _, h, w = x.shape
    dev = torch.device(accumulate_on) if accumulate_on is not None else x.device
    run_dev = model_device(model, x.device)
    ys, xs = window_starts(h, ch, sh), window_starts(w, cw, sw)
    wh, ww = min(ch, h), min(cw, w)
    cnt_y = torch.zeros(h, dtype=torch.float32, device=dev)
    cnt_x = torch.zeros(w, dtype=torch.float32, device=dev)
    for y0 in ys:
        cnt_y[y0 : y0 + wh] += 1
    for x0 in xs:
        cnt_x[x0 : x0 + ww] += 1
    windows = [(y0, x0) for y0 in ys for x0 in xs]
    acc = None
    for i in range(0, len(windows), settings.window_batch):
        chunk = windows[i : i + settings.window_batch]
        batch = torch.cat([x[..., y0 : y0 + wh, x0 : x0 + ww] for y0, x0 in chunk]).to(run_dev, non_blocking=True)
        logits = forward_logits(model, batch)
        if tuple(logits.shape[-2:]) != (wh, ww):
            logits = F.interpolate(logits, size=(wh, ww), mode="bilinear", align_corners=False)
        logits = logits.to(dev, torch.float32)
        if acc is None:
            acc = torch.zeros((n, logits.shape[1], h, w), dtype=torch.float32, device=dev)
        for j, (y0, x0) in enumerate(chunk):
            acc[..., y0 : y0 + wh, x0 : x0 + ww] += logits[j * n : (j + 1) * n]
        del batch, logits
    return acc.div_(cnt_y.view(1, 1, h, 1)).div_(cnt_x.view(1, 1, 1, w))
