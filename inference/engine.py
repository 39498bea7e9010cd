"""The inference engine: whole-image or sliding-window, multi-scale and flip, merged as probabilities.

One function (:func:`infer`) serves training-time validation, validation.py, benchmark.py and predict.py. Its
settings are :class:`inference.settings.InferenceSettings`; the sliding windows are :mod:`inference.windows`.

Convention (MMSegmentation 0.x ``EncoderDecoder.inference`` / ``aug_test``, Contributors 2020,
https://github.com/open-mmlab/mmsegmentation):

* optional test scale ``resize = [long_max, short_max]`` (MMSeg's ``Resize(scale=..., keep_ratio=True)``, MMCV
  ``rescale_size``): the image is resized by ``s = min(long_max / long_side, short_max / short_side)`` to
  ``int(W*s + 0.5) x int(H*s + 0.5)`` (bilinear, ``align_corners=False``) before anything else; the result
  is still given at the original size (see below), so ``scales`` are relative to the resized image;
* a *view* is one (scale, flip) pair; the image is resized by ``scale`` (bilinear, ``align_corners=False``,
  size ``round(H*scale) x round(W*scale)``) and optionally flipped left-right;
* ``slide`` mode: windows of ``crop_size`` every ``stride`` (last window aligned to the border, MMSeg's
  ``slide_inference`` grid); the *logits* of overlapping windows are averaged;
* each view's logits are resized to the output size (bilinear, ``align_corners=False``), turned into
  softmax probabilities, flipped back, and the probabilities of all views are averaged;
* the label is the argmax of the average.

:func:`predict_labels` on a resized image upsamples each view's logits band by band (rows of the output) and
arg-maxes each band, so a 16-megapixel photo never holds the (1, K, H, W) probabilities; the per-image time
is then the model at the test scale plus a pass over the output pixels.

Memory: the (N, K, H_out, W_out) float32 accumulator is the only buffer that grows with the image. Windows
stream through the model ``window_batch`` at a time; the overlap count is kept as two vectors (rows,
columns: windows form a grid) and divided out in place. A single-view slide at scale 1.0 (predict.py on a
large photo) accumulates directly into the result; every further view adds one view-sized buffer while it
is merged. ``accumulate_on="cpu"`` keeps these buffers in host memory while the model runs on the GPU.

MS-OCR (Tao et al. 2020) does its own hierarchical multi-scale attention: a model with a truthy
``eval_scales`` attribute is run at scale 1.0 only (flip and slide still apply).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inference.settings import InferenceSettings, keep_ratio_size
from inference.windows import forward_logits, model_device, slide_logits, window_starts

log = logging.getLogger(__name__)

#: ``on_probs(probs, r0, r1)`` of :func:`predict_labels`: float32[N, K, r1 - r0, W_out] merged probabilities of
#: output rows ``r0:r1``; a buffer the engine reuses (read it, do not keep it)
ProbsCallback = Callable[[torch.Tensor, int, int], None]


def _softmax_(t: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 in place (temporaries are (N, 1, H, W) only)."""
    t.sub_(t.amax(dim=1, keepdim=True)).exp_()
    return t.div_(t.sum(dim=1, keepdim=True))


def _view_size(h: int, w: int, scale: float) -> tuple[int, int]:
    return max(1, round(h * scale)), max(1, round(w * scale))


def _resized(images: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """``images`` at the test scale of ``settings.resize`` (unchanged without one, or when the size stays)."""
    if settings.resize is None:
        return images
    h, w = images.shape[-2:]
    size = keep_ratio_size(h, w, settings.resize)
    return images if size == (h, w) else F.interpolate(images, size=size, mode="bilinear", align_corners=False)


def _views(model: nn.Module, images: torch.Tensor, s: InferenceSettings, acc_dev: torch.device):
    """Yield ``(flip, float32 logits[N, K, h_v, w_v] on acc_dev)`` of every view of ``images`` (flipped logits are
    not flipped back)."""
    _n, _, h, w = images.shape
    run_dev = model_device(model, images.device)
    scales = s.scales
    if getattr(model, "eval_scales", None):
        if list(scales) != [1.0]:
            log.debug(
                "model has eval_scales=%s: it runs its own multi-scale inference; engine scales %s ignored",
                model.eval_scales,
                scales,
            )
        scales = [1.0]
    for scale in scales:
        size = _view_size(h, w, scale)
        x = images if size == (h, w) else F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        for flip in [False, True] if s.flip else [False]:
            xv = torch.flip(x, dims=[-1]) if flip else x
            if s.mode == "slide":
                logits = slide_logits(model, xv, s, acc_dev)
            else:
                logits = forward_logits(model, xv.to(run_dev)).to(acc_dev, torch.float32)
            del xv
            yield flip, logits


def view_logits(
    model: nn.Module,
    images: torch.Tensor,
    settings: InferenceSettings | None = None,
    out_size: Sequence[int] | None = None,
):
    """The logits of every view :func:`infer` merges, at the output size, one view at a time.

    Args:
        model: segbench model, as in :func:`infer`.
        images: float[N, 3, H, W] normalised images.
        settings: :class:`InferenceSettings` (default: whole, scale 1, no flip, no resize).
        out_size: (H_out, W_out); default (H, W).

    Yields:
        ``(flip, logits)``: ``flip`` True for a left-right flipped view, whose logits are *not* flipped back;
        ``logits`` float32[N, K, H_out, W_out] (bilinear, ``align_corners=False``) on ``settings.accumulate_on``
        (default: the device of ``images``), divided by the model's temperature when it has one
        (:func:`inference.windows.forward_logits`). The consumer may modify it in place.
    """
    s = settings or InferenceSettings()
    _n, _, h, w = images.shape
    out_size = (int(out_size[0]), int(out_size[1])) if out_size is not None else (h, w)
    acc_dev = torch.device(s.accumulate_on) if s.accumulate_on else images.device
    x = _resized(images, s)
    for flip, logits in _views(model, x, s, acc_dev):
        if tuple(logits.shape[-2:]) != out_size:
            logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
        elif s.mode == "whole" and logits.data_ptr() == images.data_ptr():
            logits = logits.clone()  # an identity model: never write into the caller's images
        yield flip, logits
        del logits  # before the next view is computed


@torch.no_grad()
def infer(
    model: nn.Module,
    images: torch.Tensor,
    settings: InferenceSettings | None = None,
    out_size: Sequence[int] | None = None,
) -> torch.Tensor:
    """Class probabilities for a batch of normalised images (see the module docstring for the convention).

    Args:
        model: segbench model (``forward -> {"out": logits}``), in eval mode, on any device; ``images``
            (whole mode) or each batch of windows (slide mode) is moved to the model's device.
        images: float[N, 3, H, W] normalised images.
        settings: :class:`InferenceSettings` (whole, scale 1, no flip, no resize by default).
        out_size: (H_out, W_out) of the result; default (H, W) (also with ``settings.resize``).

    Returns:
        float32[N, K, H_out, W_out] softmax probabilities averaged over views, on ``settings.accumulate_on``
        (default: the device of ``images``).
    """
    acc, n_views = None, 0
    for flip, logits in view_logits(model, images, settings, out_size):
        probs = _softmax_(logits)
        if acc is None and not flip:
            acc = probs
        else:
            if acc is None:
                acc = torch.zeros_like(probs)
            for k in range(probs.shape[1]):  # flip back channel by channel: one (N, H, W) temporary
                acc[:, k].add_(probs[:, k].flip(-1) if flip else probs[:, k])
        del logits, probs
        n_views += 1
    return acc.div_(n_views) if n_views > 1 else acc


def _rows_bilinear(x: torch.Tensor, out_h: int, r0: int, r1: int) -> torch.Tensor:
    """Rows ``r0:r1`` of ``x`` (N, C, h, w) resized to ``out_h`` rows, bilinear with ``align_corners=False``
    (PyTorch's source index ``max((dst + 0.5) * h / out_h - 0.5, 0)``); width unchanged."""
    h = x.shape[-2]
    src = ((torch.arange(r0, r1, dtype=torch.float32, device=x.device) + 0.5) * (h / out_h) - 0.5).clamp_(min=0)
    i0 = src.long().clamp_(max=h - 1)
    i1 = (i0 + 1).clamp_(max=h - 1)
    lam = (src - i0).view(1, 1, -1, 1)
    return x[:, :, i0].mul_(1 - lam).add_(x[:, :, i1] * lam)


@torch.no_grad()
def predict_labels(
    model: nn.Module,
    images: torch.Tensor,
    settings: InferenceSettings | None = None,
    out_size: Sequence[int] | None = None,
    band_bytes: int = 64 * 2**20,
    on_probs: ProbsCallback | None = None,
) -> torch.Tensor:
    """Predicted trainIds int64[N, H_out, W_out] = argmax over classes of :func:`infer`.

    ``on_probs(probs, r0, r1)``, when given, receives the merged probabilities float32[N, K, r1 - r0, W_out] of
    output rows ``r0:r1`` (all rows at once, or band by band; see :data:`ProbsCallback`), e.g. to accumulate
    calibration bins or an entropy map without a second full-size buffer.

    When ``settings.resize`` changes the size, the same merge is done band by band: each view's logits
    (at the test scale) are upsampled to ``band_bytes`` worth of output rows (bilinear, ``align_corners=False``),
    turned into probabilities (skipped for a single view: softmax keeps the argmax), flipped back, summed and
    arg-maxed; memory stays (N, K, h, w) per view plus one band, whatever the output size. Labels equal
    ``infer(...).argmax(1)`` up to float rounding.
    """
    s = settings or InferenceSettings()
    _n, _, h, w = images.shape
    out_h, out_w = (int(out_size[0]), int(out_size[1])) if out_size is not None else (h, w)
    x = _resized(images, s)
    if x is images:
        probs = infer(model, images, s, (out_h, out_w))
        if on_probs is not None:
            on_probs(probs, 0, out_h)
        return probs.argmax(1)
    acc_dev = torch.device(s.accumulate_on) if s.accumulate_on else images.device
    views = list(_views(model, x, s, acc_dev))
    del x
    n, k = views[0][1].shape[:2]
    labels = torch.empty((n, out_h, out_w), dtype=torch.int64, device=acc_dev)
    rows = max(1, band_bytes // (4 * n * k * out_w))
    for r0 in range(0, out_h, rows):
        r1 = min(out_h, r0 + rows)
        merged = None
        for flip, logits in views:
            # channels-last bands: the class reductions (softmax, argmax) then run over contiguous memory
            band = _rows_bilinear(logits, out_h, r0, r1).contiguous(memory_format=torch.channels_last)
            band = F.interpolate(band, size=(r1 - r0, out_w), mode="bilinear", align_corners=False)
            band = band.flip(-1) if flip else band
            band = _softmax_(band) if len(views) > 1 else band
            merged = band if merged is None else merged.add_(band)
        labels[:, r0:r1] = merged.argmax(1)
        if on_probs is not None:
            on_probs(_softmax_(merged) if len(views) == 1 else merged.div_(len(views)), r0, r1)
    return labels


def streams_labels(model: nn.Module, settings: InferenceSettings) -> bool:
    """True when :func:`predict_labels_streaming` applies: slide mode at the single scale 1.0 (or a model with
    its own ``eval_scales``), flip allowed, no test-scale ``resize``."""
    return (
        settings.mode == "slide"
        and settings.resize is None
        and (list(settings.scales) == [1.0] or bool(getattr(model, "eval_scales", None)))
    )


@torch.no_grad()
def predict_labels_streaming(
    model: nn.Module, images: torch.Tensor, settings: InferenceSettings, on_probs: ProbsCallback | None = None
) -> torch.Tensor:
    """Labels of a slide inference at scale 1.0 without the full-size probability buffer (huge photos, large K).

    The same arithmetic as :func:`predict_labels` (window logits averaged, softmax per view, views averaged,
    argmax), done one row of windows at a time: window rows are separable (count = rows x columns), so the
    logits of a strip are averaged over its column windows, strips are summed into a band buffer of
    ``crop_size[0]`` rows, and rows no later window covers are divided by their row count, turned into
    probabilities, merged over the views and arg-maxed. Memory: (N, K, crop_h, W) float32 per view plus the
    int64 labels, instead of (N, K, H, W). Results equal :func:`predict_labels` up to float rounding
    (the division order differs).

    Args:
        model: segbench model; images: float[N, 3, H, W] normalised; settings: slide mode, scales [1.0]
            (see :func:`streams_labels`), flip/window_batch/accumulate_on as in :func:`infer`; on_probs: as in
            :func:`predict_labels` (called once per band of finished rows).

    Returns:
        int64[N, H, W] trainIds on ``settings.accumulate_on`` (default: the images' device).

    Raises:
        ValueError: settings :func:`streams_labels` does not accept.
    """
    s = settings
    if not streams_labels(model, s):
        raise ValueError(f"streaming labels need mode='slide' and scales=[1.0], got mode={s.mode!r} scales={s.scales}")
    n, _, h, w = images.shape
    dev = torch.device(s.accumulate_on) if s.accumulate_on else images.device
    (ch, cw), (sh, sw) = s.crop_size, s.stride
    ys, wh = window_starts(h, ch, sh), min(ch, h)
    strip_settings = InferenceSettings(mode="slide", crop_size=(wh, cw), stride=(wh, sw), window_batch=s.window_batch)
    cnt_y = torch.zeros(h, dtype=torch.float32, device=dev)
    for y0 in ys:
        cnt_y[y0 : y0 + wh] += 1
    views = [False, True] if s.flip else [False]
    bufs: dict[bool, torch.Tensor] = {}
    labels = torch.empty((n, h, w), dtype=torch.int64, device=dev)
    lo = 0

    def finalize(a: int, b: int) -> None:
        merged = None
        for flip in views:
            probs = _softmax_(bufs[flip][:, :, a - lo : b - lo] / cnt_y[a:b].view(1, 1, -1, 1))
            probs = probs.flip(-1) if flip else probs
            merged = probs if merged is None else merged.add_(probs)
        labels[:, a:b] = merged.argmax(1)
        if on_probs is not None:
            on_probs(merged.div_(len(views)) if len(views) > 1 else merged, a, b)

    for y0 in ys:
        if y0 > lo:
            finalize(lo, y0)
            d = y0 - lo
            for buf in bufs.values():
                buf[:, :, : wh - d] = buf[:, :, d:].clone()
                buf[:, :, wh - d :] = 0
            lo = y0
        for flip in views:
            strip = images[..., y0 : y0 + wh, :]
            strip = strip.flip(-1) if flip else strip
            logits = slide_logits(model, strip, strip_settings, dev)
            if flip not in bufs:
                bufs[flip] = torch.zeros_like(logits)
            bufs[flip].add_(logits)
            del strip, logits
    finalize(lo, h)
    return labels
