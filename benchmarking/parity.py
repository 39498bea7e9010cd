"""Parity of an exported or quantised backend against eager fp32: the numbers every such record carries.

* ``max_abs_logit``: max over images and pixels of |logit(backend) - logit(eager fp32)|, with the scale
  ``max_abs_reference`` = max |logit(eager fp32)| (random-weight HRNets reach 1e6, so tolerances are relative:
  ``max_abs_logit <= max_abs_logit_rel * max(1, max_abs_reference)``);
* ``label_agreement``: fraction of pixels whose argmax class is equal (over all compared images);
* ``delta_miou``: mIoU(backend) - mIoU(eager fp32) on the evaluation split (0..1 units, when ``evaluate=true``).

Images come through the normal dataset pipeline (``dataset.test`` augmentation + normalisation), evenly spaced
over a split: the evaluation split for parity, the training split for int8 calibration. :func:`measure_parity`
fills these numbers into the record of a measurement with an exported backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from omegaconf import DictConfig

from benchmarking.backends import BackendModule, eager
from benchmarking.evaluation import evaluate_miou
from benchmarking.run_record import error_text
from core.records import BenchmarkRecord

log = logging.getLogger("segbench.benchmark")


def evenly_spaced(length: int, n: int) -> list[int]:
    """``min(n, length)`` indices of ``range(length)``, evenly spaced with the first and last included (sorted)."""
    if length < 1 or n < 1:
        return []
    return sorted({int(i) for i in np.linspace(0, length - 1, min(n, length)).round()})


def _split_dataset(cfg: DictConfig, split: str):
    from datasets import build_dataset
    from datasets.transforms import build_transforms

    d, aug = cfg.dataset, cfg.get("augmentation")
    return build_dataset(d, split, build_transforms(aug.test if aug is not None else None, d.mean, d.std))


def split_images(cfg: DictConfig, split: str, n: int) -> list[torch.Tensor]:
    """``n`` images of ``split`` (evenly spaced over it, first and last included: :func:`evenly_spaced`), each
    float32[1, 3, H, W] normalised with the dataset's test transforms (``augmentation.test``).

    Raises:
        ValueError: ``n < 1``.
        FileNotFoundError / ValueError: the dataset's split cannot be read (from the dataset class).
    """
    if n < 1:
        raise ValueError(f"need at least one image of split {split!r}, asked for {n}")
    ds = _split_dataset(cfg, split)
    return [ds[i]["image"].unsqueeze(0).float() for i in evenly_spaced(len(ds), n)]


def held_out_samples(
    cfg: DictConfig, split: str, n_calibration: int, n: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` frames of ``split`` disjoint from the ``n_calibration`` calibration frames :func:`split_images` picks:
    evenly spaced (:func:`evenly_spaced`) over the split's other frames, fewer where fewer are left.

    Returns:
        (image float32[1, 3, H, W] normalised with the test transforms, mask int64[1, H, W] trainIds with the
        dataset's ``ignore_index``) per frame.

    Raises:
        ValueError: no frame of ``split`` is left after the calibration frames (the numbers named).
        FileNotFoundError / ValueError: the dataset's split cannot be read (from the dataset class).
    """
    ds = _split_dataset(cfg, split)
    taken = set(evenly_spaced(len(ds), n_calibration))
    rest = [i for i in range(len(ds)) if i not in taken]
    if not rest or n < 1:
        raise ValueError(
            f"calibration.accuracy_control.images: split {split!r} has {len(ds)} images and calibration.images takes "
            f"{len(taken)}; no held-out image is left (asked for {n})"
        )
    samples = (ds[rest[j]] for j in evenly_spaced(len(rest), n))
    return [(s["image"].unsqueeze(0).float(), s["mask"].unsqueeze(0).long()) for s in samples]


@torch.no_grad()
def compare(
    reference: Callable[[torch.Tensor], torch.Tensor],
    candidate: Callable[[torch.Tensor], torch.Tensor],
    images: Sequence[torch.Tensor],
) -> dict:
    """Parity of ``candidate`` against ``reference`` on ``images``.

    Args:
        reference: ``run(float32[1,3,H,W]) -> float[1,K,h,w]`` logits (eager fp32).
        candidate: the same for the backend under test (logits of equal shape).
        images: inputs, each float32[1, 3, H, W].

    Returns:
        ``{"max_abs_logit", "max_abs_reference", "label_agreement", "pixels", "images"}`` (floats / ints).

    Raises:
        ValueError: no image, or the two logits differ in shape (both named).
    """
    if not images:
        raise ValueError("parity needs at least one image")
    max_diff = max_ref = 0.0
    equal = pixels = 0
    for x in images:
        a, b = reference(x).float().cpu(), candidate(x).float().cpu()
        if a.shape != b.shape:
            raise ValueError(f"parity: reference logits {tuple(a.shape)} vs backend logits {tuple(b.shape)}")
        max_diff = max(max_diff, float((a - b).abs().max()))
        max_ref = max(max_ref, float(a.abs().max()))
        equal += int((a.argmax(1) == b.argmax(1)).sum())
        pixels += a.shape[0] * a.shape[-2] * a.shape[-1]
    return {
        "max_abs_logit": max_diff,
        "max_abs_reference": max_ref,
        "label_agreement": equal / pixels,
        "pixels": pixels,
        "images": len(images),
    }


def tolerance_for(tolerances: DictConfig | dict | None, precision: str) -> dict | None:
    """The entry of ``parity.tolerance`` (``config/benchmark.yaml``) for ``precision``: keys and ``precision`` are
    both mapped to one name by :func:`core.precision.canonical_precision` (``fp32`` and ``32-true`` are the same
    key; the config spells them ``fp32``/``bf16``/``int8`` because ``32-true`` cannot be a Hydra override key).

    Raises:
        ValueError: a key or ``precision`` that is no precision name (the accepted names listed).
    """
    from core.precision import canonical_precision

    by_name = {canonical_precision(k, quantized=True): v for k, v in (tolerances or {}).items()}
    return by_name.get(canonical_precision(precision, quantized=True))


def violations(parity: dict, tolerance: DictConfig | dict | None, delta_miou: float | None = None) -> list[str]:
    """Tolerances exceeded by ``parity`` (:func:`compare`) and ``delta_miou`` (0..1), one line each.

    ``tolerance`` keys (any may be null = unchecked): ``max_abs_logit_rel`` (relative to
    ``max(1, max_abs_reference)``), ``label_agreement`` (minimum fraction), ``delta_miou_points`` (max
    |ΔmIoU| in points).
    """
    t = dict(tolerance or {})
    out = []
    rel = t.get("max_abs_logit_rel")
    if rel is not None:
        limit = float(rel) * max(1.0, parity["max_abs_reference"])
        if parity["max_abs_logit"] > limit:
            out.append(f"max |Δ logit| {parity['max_abs_logit']:.3g} > {limit:.3g}")
    if t.get("label_agreement") is not None and parity["label_agreement"] < float(t["label_agreement"]):
        out.append(f"label agreement {parity['label_agreement']:.4f} < {float(t['label_agreement']):g}")
    dm = t.get("delta_miou_points")
    if dm is not None and delta_miou is not None and abs(100 * delta_miou) > float(dm):
        out.append(f"|ΔmIoU| {abs(100 * delta_miou):.2f} points > {float(t['delta_miou_points']):g}")
    return out


def measure_parity(rec: BenchmarkRecord, cfg: DictConfig, model, runner, device: torch.device, fallback) -> None:
    """Fill the ``parity_*`` fields of ``rec``: ``runner`` vs eager 32-true on ``parity.images`` images of the
    evaluation split (``fallback``, the timed input, when the split cannot be read), and with ``evaluate=true``
    the backend's mIoU (validation.py's evaluation) minus eager 32-true's; checked against
    ``parity.tolerance[precision]``."""
    p = cfg.get("parity") or {}
    split = str(cfg.get("eval_split") or cfg.dataset.get("val_split", "val"))
    try:
        images, rec.parity_images = split_images(cfg, split, int(p.get("images", 4))), split
    except (OSError, ValueError) as e:
        log.warning(f"parity on the timed input: split {split!r} unreadable ({error_text(e)})")
        images, rec.parity_images = [fallback], "timed input"
    rec.parity_images += f" ({len(images)} images)"
    res = compare(eager(model, fallback, "32-true", device), runner, images)
    rec.parity_reference = "eager 32-true"
    rec.parity_max_abs_logit, rec.parity_max_abs_reference = res["max_abs_logit"], res["max_abs_reference"]
    rec.parity_label_agreement = res["label_agreement"]
    if cfg.get("evaluate"):
        ref, _, _ = evaluate_miou(model, cfg, device, "32-true")
        rec.mIoU, rec.eval_split, rec.eval_images = evaluate_miou(BackendModule(runner, model), cfg, device, "32-true")
        rec.parity_delta_mIoU = rec.mIoU - ref
    rec.parity_violations = violations(res, tolerance_for(p.get("tolerance"), rec.precision), rec.parity_delta_mIoU)
    rec.parity_ok = not rec.parity_violations
