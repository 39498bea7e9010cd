"""Stored matmul peaks of a machine (``benchmark.py peak``) and the ``% of peak`` of a benchmark record.

One JSON file per hardware profile (:func:`benchmarking.like_for_like.hardware_of`: CPU model + ISA flags, or GPU
name) in ``<LOGDIR>/benchmark/peaks/`` (:func:`default_peaks_dir`), holding per thread count and precision the
measured peak::

    {"schema": 1, "hardware_profile": "AMD EPYC [avx2 avx512_bf16 avx512_vnni avx512f]",
     "peaks": {"2": {"fp32": {"tflops": 0.17, "kernel": "torch.matmul float32", "size": 4096, ...},
                     "bf16": {...}, "int8": {...}}}}

A record's ``% of peak`` uses the peak of its own precision (:func:`peak_precision`: fp32 for ``32-true``, bf16 for
``bf16-mixed``, int8 for ``int8``, whatever the backend) measured on the same hardware profile with the same thread
count (:func:`lookup_peak`); without one the cell stays empty. This module imports neither torch nor the runtimes,
so table scripts read peaks in milliseconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.precision import canonical_precision
from core.records import atomic_write_text
from core.run_folder import safe_name

SCHEMA = 1
#: precisions ``benchmark.py peak`` measures, in this order
PEAK_PRECISIONS = ("fp32", "bf16", "int8")
#: CPU flags (:func:`core.measure.cpu_flags`) of which one makes a precision native; fp32 needs none
NATIVE_FLAGS = {"fp32": (), "bf16": ("avx512_bf16", "amx_bf16"), "int8": ("avx512_vnni", "avx_vnni", "amx_int8")}
#: canonical record precision (:mod:`core.precision`) -> the peak it is measured against
RECORD_PEAK = {"32-true": "fp32", "bf16-mixed": "bf16", "int8": "int8"}


def default_peaks_dir() -> Path:
    """``$SEGBENCH_LOGDIR/benchmark/peaks``, else ``<repository>/logs/benchmark/peaks`` (the ``LOGDIR`` of
    ``config/environment/default.yaml``)."""
    logdir = os.environ.get("SEGBENCH_LOGDIR") or Path(__file__).resolve().parents[1] / "logs"
    return Path(logdir) / "benchmark" / "peaks"


def peak_precision(precision) -> str | None:
    """The peak a record of ``precision`` is measured against: ``fp32`` (``32-true``: eager, ONNX Runtime and
    OpenVINO fp32), ``bf16`` (``bf16-mixed``: autocast and OpenVINO bf16) or ``int8``; None for other precisions
    (``16-mixed``) and unknown names."""
    try:
        return RECORD_PEAK.get(canonical_precision(precision, quantized=True))
    except ValueError:
        return None


def peaks_file(folder: str | os.PathLike, hardware: str) -> Path:
    """The peaks file of ``hardware`` (a hardware profile) in ``folder``: ``<folder>/<safe name>.json``."""
    return Path(folder) / f"{safe_name(hardware) or 'unknown'}.json"


def read_peaks(folder: str | os.PathLike, hardware: str) -> dict[int, dict[str, dict]]:
    """Stored peaks of ``hardware``: ``{threads: {precision: entry}}`` (entry: ``tflops`` and how it was measured);
    empty when none are stored.

    Raises:
        ValueError: the file exists but is no peaks file of ``hardware`` (the path named).
    """
    path = peaks_file(folder, hardware)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("hardware_profile") != hardware:
            raise ValueError(f"it holds peaks of {data.get('hardware_profile')!r}, not {hardware!r}")
        return {int(t): dict(v) for t, v in data["peaks"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a peaks file ({e}); move it away and run `benchmark.py peak` again") from e


def store_peaks(folder: str | os.PathLike, hardware: str, threads: int, peaks: dict[str, dict]) -> Path:
    """Add the ``peaks`` (``{precision: entry}``) of ``threads`` threads to the file of ``hardware``: entries of
    the same thread count and precision are replaced, the others kept. Written atomically under a lock, so the
    file is the old one or the new one, never a mix; call it only with complete results (a failed measurement
    stores nothing).

    Returns:
        the peaks file.

    Raises:
        ValueError: the existing file is unreadable (it is left as it is).
    """
    from filelock import FileLock

    path = peaks_file(folder, hardware)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        stored = read_peaks(folder, hardware)
        stored.setdefault(int(threads), {}).update(peaks)
        data = {
            "schema": SCHEMA,
            "hardware_profile": hardware,
            "peaks": {str(t): stored[t] for t in sorted(stored)},
        }
        return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def lookup_peak(folder: str | os.PathLike, hardware: str, threads: int | None, precision) -> float | None:
    """The stored peak (TFLOP/s; TOPS for int8) a record of ``precision`` on ``hardware`` with ``threads`` threads
    is measured against (:func:`peak_precision`); None when none is stored or the file is unreadable."""
    name = peak_precision(precision)
    if name is None or not threads:
        return None
    try:
        entry = read_peaks(folder, hardware).get(int(threads), {}).get(name)
    except ValueError:
        return None
    return float(entry["tflops"]) if entry and entry.get("tflops") else None


def percent_of_peak(gflops: float, fps: float, peak_tflops: float) -> float:
    """``100 * gflops * fps / (1000 * peak_tflops)``: the share of the peak a model's arithmetic reaches
    (GFLOPs per image with 1 MAC = 2 FLOPs, fps in img/s, peak in TFLOP/s)."""
    return 100.0 * gflops * fps / (1000.0 * peak_tflops)
