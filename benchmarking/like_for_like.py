"""What makes two measurements comparable: the setting labels that comparisons group on.

A benchmark figure (fps, latency, memory) depends on the backend, precision, resolution, batch size, threads and
the hardware profile (GPU name, or CPU model + ISA flags); a test-split figure (mIoU, aAcc, mAcc) on the split, the
checkpoint evaluated, the inference mode (whole / slide with crop_size and stride), scales, flip, test-scale resize,
precision and the number of images. Two figures enter one mean or one ratio only when their labels are equal
(``benchmark.py compare``, ``scripts/deploy_table.py``); everything else is a separate row or column.
"""

from __future__ import annotations

from pathlib import Path

from core.precision import canonical_precision


def hardware_of(rec) -> str:
    """The hardware a record was measured on: its ``hardware_profile`` (GPU name, or CPU model + ISA flags); records
    written before the profile existed fall back to their ``device_name`` / ``hardware``."""
    return rec.hardware_profile or rec.device_name or rec.hardware or "unknown hardware"


def bench_setting(rec) -> str:
    """Setting label of a :class:`core.records.BenchmarkRecord`, e.g.
    ``"eager/32-true 512x512 batch 1, 2 threads, AMD EPYC [avx2 avx512f]"``.

    The hardware is :func:`hardware_of`.
    """
    try:
        precision = canonical_precision(rec.precision, quantized=True)
    except ValueError:
        precision = str(rec.precision)
    hardware = hardware_of(rec)
    threads = f"{rec.threads} threads" if rec.threads else "threads unknown"
    return f"{rec.backend}/{precision} {rec.resolution or 'native size'} batch {rec.batch_size}, {threads}, {hardware}"


def checkpoint_kind(checkpoint) -> str:
    """``"best"`` / ``"last"`` for a run's ``checkpoints/best.ckpt`` / ``last.ckpt``, else the file name."""
    if not checkpoint:
        return "unknown checkpoint"
    name = Path(str(checkpoint)).name
    return {"best.ckpt": "best", "last.ckpt": "last"}.get(name, name)


def eval_setting(metrics: dict) -> str:
    """Setting label of a validation.py ``metrics.json`` (without the checkpoint), e.g.
    ``"test, whole, scales [1.0], 233 images, 32-true"`` or ``"test, slide 512x512/341x341, scales [0.5, 1.0],
    flip, resize [2048, 1024], 500 images, bf16-mixed"``."""
    inf = metrics.get("inference") or {}
    mode = str(inf.get("mode", "whole"))
    if mode == "slide":
        crop, stride = inf.get("crop_size") or [], inf.get("stride") or []
        mode = f"slide {'x'.join(map(str, crop))}/{'x'.join(map(str, stride))}"
    parts = [str(metrics.get("split")), mode, f"scales {list(inf.get('scales') or [1.0])}"]
    if inf.get("flip"):
        parts.append("flip")
    if inf.get("resize"):
        parts.append(f"resize {list(inf['resize'])}")
    if metrics.get("num_images") is not None:
        parts.append(f"{metrics['num_images']} images")
    if metrics.get("precision"):
        parts.append(str(metrics["precision"]))
    if metrics.get("temperature") is not None:  # scaled views merge differently: labels may differ
        parts.append(f"temperature {metrics['temperature']:.4g}")
    robustness = metrics.get("robustness") or {}
    if robustness:  # validation.py corruptions=...: mPC / rPC only compare over the same corruption grid
        names = robustness.get("label") or "+".join(robustness.get("corruptions") or [])
        parts.append(f"corrupted: {names} x severities {robustness.get('severities')}, seed {robustness.get('seed')}")
    return ", ".join(parts)
