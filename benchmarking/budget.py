"""The per-image budget (``budget.seconds``, ``budget.memory_gib`` of ``config/benchmark.yaml``): checked on the
photos of ``photos=<dir>`` through predict.py's predictor (:func:`photo_budget`), else on the timed input
(:func:`timed_budget`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from benchmarking.protocol import device_sync
from core.measure import peak_memory
from core.records import BenchmarkRecord
from datasets.image_io import image_size


def photo_budget(model, cfg: DictConfig, device: torch.device, precision: str) -> dict:
    """Per-photo time and peak memory on the photos of ``cfg.photos`` against ``cfg.budget``, measured through
    predict.py's predictor (:class:`inference.predict.Predictor`, mode ``auto``, settings ``dataset.test`` then
    ``cfg.photos_preset``).

    Each photo is read (EXIF orientation applied) outside the timer; the timer covers normalisation,
    inference and the label map at full size (``Predictor.labels``), after one untimed warm-up on the
    smallest photo. Memory: :func:`core.measure.peak_memory` around the same call.

    Returns:
        dict with ``checked_on="photos"``, ``images``, ``max_seconds``, ``median_seconds``, ``max_memory_mib``
        (peak total), ``worst_time_image``, ``worst_memory_image``, ``per_image``, ``violations`` and ``ok``.

    Raises:
        FileNotFoundError: ``cfg.photos`` is not a folder or holds no image.
    """
    from inference.predict import Predictor, list_images, load_preset, read_rgb
    from inference.settings import InferenceSettings

    folder = Path(str(cfg.photos)).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"photos={folder}: not a folder")
    files = list_images([folder])
    if cfg.get("photos_limit"):
        files = files[: int(cfg.photos_limit)]
    preset = load_preset(cfg.get("photos_preset"))
    mode = preset.pop("mode", "auto")
    if mode != "auto":
        preset["mode"] = mode
    settings = InferenceSettings.from_config({**dict(cfg.dataset.get("test") or {}), **preset})
    pcfg = cfg.copy()
    OmegaConf.set_struct(pcfg, False)
    pcfg.precision, pcfg.channels_last = precision, False
    predictor = Predictor(model, pcfg, settings, device, mode)
    sync = device_sync(device)
    images = {}

    def load(p):
        if p not in images:
            images.clear()
            images[p] = read_rgb(p)
        return images[p]

    sizes = {}
    for p in files:
        w, h = image_size(p)  # header only
        sizes[p] = w * h
    predictor.labels(load(min(files, key=sizes.get)))
    rows = []
    for p in files:
        image = load(p)
        with peak_memory(device) as mem:
            sync()
            t0 = time.perf_counter()
            _labels, used = predictor.labels(image)
            sync()
            seconds = time.perf_counter() - t0
        rows.append((p.name, (image.shape[1], image.shape[0]), seconds, mem.peak_mib, mem.forward_mib, used.mode))
        del _labels
    b = cfg.budget
    max_s, max_mib = float(b.seconds), float(b.memory_gib) * 1024
    violations = [f"{n} ({w}x{h}): {s:.2f} s > {max_s:g} s" for n, (w, h), s, *_ in rows if s > max_s]
    violations += [f"{n} ({w}x{h}): {m:.0f} MiB > {b.memory_gib:g} GiB" for n, (w, h), _, m, *_ in rows if m > max_mib]
    return {
        "checked_on": "photos",
        "folder": str(folder),
        "preset": cfg.get("photos_preset"),
        "inference": settings.to_dict(),
        "images": len(rows),
        "seconds": max_s,
        "memory_gib": float(b.memory_gib),
        "max_seconds": max(r[2] for r in rows),
        "median_seconds": float(np.median([r[2] for r in rows])),
        "max_memory_mib": max(r[3] for r in rows),
        "worst_time_image": max(rows, key=lambda r: r[2])[0],
        "worst_memory_image": max(rows, key=lambda r: r[3])[0],
        "per_image": [
            {
                "image": n,
                "width": w,
                "height": h,
                "seconds": s,
                "memory_peak_mib": m,
                "memory_forward_mib": f,
                "mode": md,
            }
            for n, (w, h), s, m, f, md in rows
        ],
        "violations": violations,
        "ok": not violations,
    }


def timed_budget(rec: BenchmarkRecord, cfg: DictConfig) -> dict:
    """The budget checked on the timed input of ``rec`` (median latency per image, peak memory) when no
    ``photos`` were measured.

    Returns:
        dict with ``checked_on="timed input"``, ``seconds``, ``memory_gib``, ``violations`` and ``ok``.
    """
    b = cfg.budget
    sec = (rec.latency_ms_p50 or 0) / 1000 / max(rec.batch_size, 1)
    v = []
    if sec > float(b.seconds):
        v.append(f"timed input {rec.resolution}: {sec:.2f} s/img > {float(b.seconds):g} s")
    if rec.memory_peak_mib is not None and rec.memory_peak_mib > float(b.memory_gib) * 1024:
        v.append(f"timed input {rec.resolution}: {rec.memory_peak_mib:.0f} MiB > {float(b.memory_gib):g} GiB")
    return {
        "checked_on": "timed input",
        "seconds": float(b.seconds),
        "memory_gib": float(b.memory_gib),
        "violations": v,
        "ok": not v,
    }
