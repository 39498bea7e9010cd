"""Evaluate a model on a labelled split with the inference engine and write ``validation/<timestamp>/``.

Used by validation.py and ``benchmark.py evaluate=true``. Training-time validation (training/module.py) runs the
same :func:`inference.infer`
in ``whole`` mode under the same precision (Lightning's ``bf16-mixed``/``16-mixed`` = ``torch.autocast``),
memory format (``channels_last``) and ``val_batch_size``, so ``whole`` mode here reproduces its confusion
matrix exactly.

Calibration (Guo et al. 2017, "On Calibration of Modern Neural Networks", ICML; :mod:`metrics.calibration`): the
merged per-pixel probabilities of the engine fill 15 confidence bins over the labelled pixels, giving ``ECE`` and
``MCE`` (fractions in [0, 1]) of the model's own probabilities (``T = 1``). When the model carries a temperature
(:mod:`inference.temperature`), the labels are those of the scaled probabilities, whose bins give ``ECE_scaled``
and ``MCE_scaled``; the model's own probabilities then come from a second inference of each batch without it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Subset

from core.precision import autocast, canonical_precision
from datasets import build_dataset
from datasets.transforms import build_transforms
from inference.engine import predict_labels
from inference.settings import InferenceSettings
from inference.temperature import temperature_of, without_temperature
from inference.uncertainty import reliability_diagram
from inference.visualize import comparison, denormalize
from metrics import SegmentationMetrics, metrics_from_confusion
from metrics.aggregations import PerImageMIoU, aggregations
from metrics.calibration import SegmentationCalibration

log = logging.getLogger("segbench")


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: int64 (K, K) confusion matrix (rows = ground truth), the metrics of
    :func:`metrics.metrics_from_confusion` plus ``mIoU_image``, ``fwIoU``, ``IoU_micro``
    (:mod:`metrics.aggregations`), ``ECE``/``MCE`` (and ``ECE_scaled``/``MCE_scaled`` with a temperature; module
    docstring), image count, wall time (s) and up to ``keep`` samples
    ``(name, uint8[H,W,3] image, int64[H,W] target, int64[H,W] prediction)``; ``calibration``: ``"T = 1"`` (and
    ``"T = <t>"``) -> :meth:`metrics.calibration.SegmentationCalibration.compute` (bins for the reliability
    diagram)."""

    confmat: torch.Tensor
    metrics: dict
    num_images: int
    seconds: float
    samples: list = field(default_factory=list)
    calibration: dict = field(default_factory=dict)


def _binner(metric: SegmentationCalibration, target: torch.Tensor):
    """The engine's ``on_probs`` callback adding rows ``a:b`` of a batch to ``metric``."""
    return lambda probs, a, b: metric.update(probs, target[:, a:b])


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader,
    settings: InferenceSettings,
    num_classes: int,
    ignore_index: int = 255,
    device: torch.device | str = "cpu",
    precision="32-true",
    channels_last: bool = False,
    keep: int = 0,
    mean=None,
    std=None,
) -> Evaluation:
    """Run ``model`` over ``loader`` (batches of ``{"image": float[N,3,H,W], "mask": int64[N,H,W]}``) with the
    inference engine and accumulate one confusion matrix (ignore pixels dropped) and the calibration bins of the
    merged probabilities (module docstring).

    ``keep`` > 0 also returns that many de-normalised samples (needs ``mean``/``std``) for pictures.
    """
    device = torch.device(device)
    model = model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    metric = SegmentationMetrics(num_classes, ignore_index).to(device)
    image_miou = PerImageMIoU(num_classes, ignore_index).to(device)
    temperature = temperature_of(model)
    calib = SegmentationCalibration(ignore_index).to(device)
    scaled = SegmentationCalibration(ignore_index).to(device) if temperature is not None else None
    samples, n, t0 = [], 0, time.perf_counter()
    for batch in loader:
        images, target = batch["image"].to(device), batch["mask"].to(device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        size = target.shape[-2:]
        with autocast(precision, device):
            bins = _binner(calib if scaled is None else scaled, target)
            pred = predict_labels(model, images, settings, size, on_probs=bins)
            if scaled is not None:
                with without_temperature(model):
                    predict_labels(model, images, settings, size, on_probs=_binner(calib, target))
        metric.update(pred, target)
        image_miou.update(pred, target)
        n += images.shape[0]
        for i in range(images.shape[0]):
            if len(samples) < keep:
                samples.append(
                    (
                        batch["name"][i],
                        denormalize(images[i], mean, std),
                        target[i].cpu().numpy(),
                        pred[i].cpu().numpy(),
                    )
                )
    confmat = metric.confusion().cpu()
    metrics = metrics_from_confusion(confmat) | aggregations(confmat, float(image_miou.compute()))
    calibration = {"T = 1": calib.compute()}
    metrics.update({k: calibration["T = 1"][k] for k in ("ECE", "MCE")})
    if scaled is not None:
        calibration[f"T = {temperature:.4g}"] = res = scaled.compute()
        metrics.update({"ECE_scaled": res["ECE"], "MCE_scaled": res["MCE"]})
    return Evaluation(confmat, metrics, n, time.perf_counter() - t0, samples, calibration)


def _num(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def iou_table(metrics: dict, class_names) -> str:
    """Per-class IoU/Acc table (percent) with the mIoU/aAcc/mAcc summary, as printed by validation.py."""
    rows = [f"{'class':<20} {'IoU':>7} {'Acc':>7}"]
    for name, iou, acc in zip(class_names, metrics["IoU"], metrics["Acc"]):
        fmt = lambda v: "    n/a" if v is None or math.isnan(v) else f"{100 * v:7.2f}"
        rows.append(f"{name!s:<20} {fmt(iou)} {fmt(acc)}")
    rows.append(f"mIoU {100 * metrics['mIoU']:.2f}  aAcc {100 * metrics['aAcc']:.2f}  mAcc {100 * metrics['mAcc']:.2f}")
    if "fwIoU" in metrics:
        more = "  ".join(f"{k} {100 * metrics[k]:.2f}" for k in ("mIoU_image", "fwIoU", "IoU_micro") if k in metrics)
        rows.append(more)
    return "\n".join(rows)


def calibration_line(record: dict) -> str:
    """``ECE 4.10 %  MCE 12.30 %`` (and ``after temperature T = 1.52: ECE 1.20 %  MCE 5.00 %``) of a record."""
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"
    line = f"ECE {pct(record.get('ECE'))}  MCE {pct(record.get('MCE'))} (15 bins, labelled pixels)"
    if record.get("temperature") is not None:
        line += (
            f"; after temperature T = {record['temperature']:.4g}: ECE {pct(record.get('ECE_scaled'))}  "
            f"MCE {pct(record.get('MCE_scaled'))}"
        )
    return line


def write_calibration(calibration: dict, out: Path, title: str = "") -> None:
    """``reliability.png`` and ``calibration_bins.csv`` of :attr:`Evaluation.calibration` into ``out``."""
    from metrics.calibration import reliability

    if not calibration:
        return
    reliability_diagram(calibration, out / "reliability.png", title)
    frames = []
    for name, res in calibration.items():
        r = {k: v.numpy() for k, v in reliability(res["count"], res["conf_sum"], res["correct"]).items()}
        frames.append(
            pd.DataFrame({"temperature": name, **{k: r[k] for k in ("lower", "upper", "count")}}).assign(
                confidence=r["confidence"], accuracy=r["accuracy"]
            )
        )
    pd.concat(frames).rename(columns={"count": "pixels"}).to_csv(out / "calibration_bins.csv", index=False)


def eval_loader(
    cfg: DictConfig, split: str, limit: int | None = None, corruption: tuple[str, int, int] | None = None
) -> tuple[DataLoader, str]:
    """The loader validation.py and ``benchmark.py evaluate=true`` read: ``split`` (``val``/``test``/a name,
    see :func:`inference.loading.resolve_split`) with the test transforms, ``val_batch_size``, no shuffling;
    the first ``limit`` images only when given. ``corruption`` = ``(name, severity, seed)`` puts
    :class:`datasets.corruptions.Corrupt` first in the test transforms (the uint8 image, before normalisation;
    labels untouched).

    Returns:
        (loader, split name of the dataset).

    Raises:
        ValueError: unlabelled split (labelled ones listed).
    """
    from inference.loading import resolve_split

    d = cfg.dataset
    split_name = resolve_split(d, split)
    steps = list((cfg.get("augmentation") or {}).get("test") or [])
    if corruption is not None:
        name, severity, seed = corruption
        corrupt = {"_target_": "datasets.corruptions.Corrupt", "corruption": name, "severity": severity}
        steps.insert(0, {**corrupt, "corruption_seed": seed})
    dataset = build_dataset(d, split_name, build_transforms(steps, d.mean, d.std))
    if limit is not None:
        dataset = Subset(dataset, range(min(int(limit), len(dataset))))
    loader = DataLoader(
        dataset,
        batch_size=int(cfg.get("val_batch_size", 1)),
        shuffle=False,
        drop_last=False,
        num_workers=int(cfg.get("num_workers", 0)),
    )
    return loader, split_name


def evaluate_config(
    model: torch.nn.Module,
    cfg: DictConfig,
    split: str,
    device,
    precision=None,
    channels_last=None,
    keep: int = 0,
    limit: int | None = None,
    corruption: tuple[str, int, int] | None = None,
) -> tuple[Evaluation, str, InferenceSettings]:
    """:func:`evaluate` of ``model`` on ``split`` (first ``limit`` images; ``corruption`` as in :func:`eval_loader`)
    with the settings of ``cfg`` (``dataset.test``, ``precision``, ``channels_last``; ``precision``/``channels_last``
    given here win). Returns (evaluation, split name, settings)."""
    d = cfg.dataset
    loader, split_name = eval_loader(cfg, split, limit, corruption)
    settings = InferenceSettings.from_config(d.get("test"))
    ev = evaluate(
        model,
        loader,
        settings,
        d.num_classes,
        d.ignore_index,
        device,
        cfg.get("precision", "32-true") if precision is None else precision,
        bool(cfg.get("channels_last", False)) if channels_last is None else channels_last,
        keep=keep,
        mean=d.mean,
        std=d.std,
    )
    return ev, split_name, settings


def run_validation(
    cfg: DictConfig,
    model: torch.nn.Module,
    split: str,
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    num_vis: int | None = None,
) -> dict:
    """Evaluate ``model`` (from :func:`inference.loading.load_for_inference`) on ``split`` using ``cfg.dataset.test``.

    Writes into ``out_dir``: ``metrics.json`` (mIoU, aAcc, mAcc, per-class IoU/Acc by name, split, checkpoint,
    inference settings, images, seconds), ``per_class.csv`` (class, IoU, Acc), ``ConfusionMatrix.pt`` (int64
    (K, K)), ``config.yaml`` (the resolved config used, ``dataset.test`` = the settings applied) and
    ``predictions/<name>.png`` (image | ground truth | prediction) for ``num_vis`` images
    (default ``cfg.num_vis``), ``reliability.png`` (reliability diagram, one panel per temperature) and
    ``calibration_bins.csv`` (per temperature and bin: edges, pixels, mean confidence, accuracy). ``metrics.json``
    also holds ``ECE``, ``MCE`` (fractions in [0, 1], the model's own probabilities), ``temperature`` (T applied,
    or null) and with a temperature ``ECE_scaled``, ``MCE_scaled`` (module docstring).

    Returns:
        the ``metrics.json`` content.

    Raises:
        ValueError: unlabelled split, bad test settings or precision.
    """
    d = cfg.dataset
    src = cfg.get("loaded_from") or {}
    num_vis = int(cfg.get("num_vis", 4) if num_vis is None else num_vis)
    log.info(f"Validating {src.get('weights')} ({src.get('loaded_by')}) on {d.name}/{split}")
    ev, split_name, settings = evaluate_config(model, cfg, split, device, keep=num_vis)
    names = [str(n) for n in (d.get("class_names") or range(d.num_classes))]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = ev.metrics
    record = {
        "mIoU": _num(m["mIoU"]),
        "aAcc": _num(m["aAcc"]),
        "mAcc": _num(m["mAcc"]),
        **{key: _num(m.get(key)) for key in ("mIoU_image", "fwIoU", "IoU_micro", "ECE", "MCE")},
        "temperature": temperature_of(model),
        **{key: _num(m[key]) for key in ("ECE_scaled", "MCE_scaled") if key in m},
        "IoU": {n: _num(v) for n, v in zip(names, m["IoU"])},
        "Acc": {n: _num(v) for n, v in zip(names, m["Acc"])},
        "dataset": str(d.name),
        "split": split_name,
        "checkpoint": src.get("weights"),
        "weights_loaded_by": src.get("loaded_by"),
        "inference": settings.to_dict(),
        "precision": canonical_precision(cfg.get("precision", "32-true")),
        "channels_last": bool(cfg.get("channels_last", False)),
        "device": str(device),
        "num_images": ev.num_images,
        "seconds": round(ev.seconds, 3),
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    pd.DataFrame({"class": names, "IoU": m["IoU"], "Acc": m["Acc"]}).to_csv(out / "per_class.csv", index=False)
    torch.save(ev.confmat, out / "ConfusionMatrix.pt")
    write_calibration(ev.calibration, out, f"{d.name} / {split_name}, {ev.num_images} images")
    used = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    used.dataset.test = settings.to_dict()
    (out / "config.yaml").write_text(OmegaConf.to_yaml(used))
    if ev.samples:
        (out / "predictions").mkdir(exist_ok=True)
        for name, image, target, pred in ev.samples:
            comparison(image, target, pred, d.palette, d.ignore_index).save(out / "predictions" / f"{name}.png")
    print(iou_table(m, names))
    print(calibration_line(record))
    print(f"{ev.num_images} images in {ev.seconds:.1f} s -> {out}")
    return record
