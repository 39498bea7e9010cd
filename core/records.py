"""Benchmark records: one JSON file per measurement in a run's ``benchmark/`` folder.

A record holds what ``../shared/DESIGN.md`` promises (model, method, params, FLOPs with the counter
named, resolution, batch, precision, backend, device, warm-up and timed iterations, fps, latency
p50/p95 ms, memory MiB (peak total incl. weights; peak growth during the forward), mIoU if evaluated, status
ok/failed with the error; parity vs eager 32-true for exported/quantised backends) plus provenance
(config overrides, weights, torch version, threads, git commit, 1-min load average).  Files are written atomically under a name claimed
atomically (:func:`write_new_text`), so a reader never sees half a record and no record replaces another.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1


@dataclass
class BenchmarkRecord:
    """One measurement. Units: fps img/s, latency ms, memory MiB, FLOPs (1 MAC = 2 FLOPs), mIoU in [0, 1]."""

    name: str
    method: str
    model: str = ""  # config group choice (model=<this>)
    config: str = ""  # command-line overrides that define the measurement
    weights: str = "random"  # checkpoint path or "random"
    dataset: str = ""
    resolution: str = ""  # "WxH" of the timed input, e.g. "1024x512"
    height: int = 0
    width: int = 0
    batch_size: int = 1
    precision: str = "32-true"  # Lightning names (core/precision.py)
    backend: str = "eager"
    status: str = "ok"  # ok | failed
    error: str = ""
    timed_region: str = "model forward + bilinear resize to input size + argmax"
    warmup: int = 0
    iterations: int = 0
    repeat: int = 0
    fps: float | None = None
    fps_var: float | None = None
    fps_runs: list[float] = field(default_factory=list)
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    latency_ms_mean: float | None = None
    overhead_ms: float | None = None
    overhead_pct: float | None = None
    params: int | None = None
    trainable_params: int | None = None
    flops: int | None = None
    gflops: float | None = None
    flops_counter: str = ""
    flops_convention: str = ""
    memory_peak_mib: float | None = None  # peak total during the timed forward, weights included
    memory_forward_mib: float | None = None  # peak growth during the forward (activations, workspaces)
    memory_kind: str = ""  # cuda_allocated (torch allocator) | cpu_rss (process resident set)
    mIoU: float | None = None
    eval_split: str | None = None
    eval_images: int | None = None
    budget: dict = field(default_factory=dict)
    # exported/quantised backends (onnxruntime, openvino) vs eager fp32 (benchmarking/parity.py); None elsewhere
    parity_reference: str = ""  # "eager fp32"
    parity_images: str = ""  # e.g. "val (4 images)"
    parity_max_abs_logit: float | None = None  # max |Δ logit|
    parity_max_abs_reference: float | None = None  # max |logit| of eager fp32 (scale of the above)
    parity_label_agreement: float | None = None  # fraction of pixels with equal argmax
    parity_delta_mIoU: float | None = None  # mIoU(backend) - mIoU(eager fp32), 0..1, when evaluated
    parity_ok: bool | None = None  # False: a tolerance of config/benchmark.yaml parity.tolerance exceeded
    parity_violations: list[str] = field(default_factory=list)
    calibration: str = ""  # int8: e.g. "train (32 images, nncf.quantize)"
    accuracy_control: dict = field(default_factory=dict)  # int8 by nncf accuracy control: choices, measured drop
    quantizers: int | None = None  # int8 (openvino): FakeQuantize nodes in the timed IR (fewer: layers left in float)
    batchnorm_folded: int | None = None  # channels_last / compile with fold_bn: BatchNorms folded into their conv
    runtime_properties: dict = field(default_factory=dict)  # what the compiled runtime reports (openvino)
    device: str = ""
    device_name: str = ""
    hardware: str = ""
    hardware_profile: str = ""  # GPU name, or CPU model + ISA flags (core.measure.hardware_profile)
    threads: int | None = None
    torch_version: str = ""
    commit: str = ""  # the code measured: short git sha, "+dirty" with uncommitted changes (core.versions)
    load_1min: float | None = None  # 1-min load average of the machine when the measurement started
    extra: dict = field(default_factory=dict)
    timestamp: str = field(default_factory=lambda: _dt.datetime.now().isoformat(timespec="seconds"))
    schema: int = SCHEMA_VERSION
    source: str = "reproduced"

    def to_dict(self) -> dict:
        """Plain dict with NaN/inf replaced by None (valid JSON)."""

        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        return clean(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> BenchmarkRecord:
        """Build from :meth:`to_dict` output; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in d.items() if k in names}
        rest = {k: v for k, v in d.items() if k not in names}
        rec = cls(**known)
        rec.extra.update(rest)
        return rec

    def filename(self) -> str:
        """``<timestamp>_<backend>_<precision>_<WxH>.json`` (filesystem-safe)."""
        stamp = self.timestamp.replace(":", "-")
        return f"{stamp}_{self.backend}_{self.precision}_{self.resolution or 'na'}.json"


def _temp_copy(folder: Path, name: str, text: str) -> str:
    """``text`` in a new temporary file of ``folder`` (flushed to disk); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``.

    An interruption at any point leaves either the old file or the new one, never a partial file.
    """
    path = Path(path)
    tmp = _temp_copy(path.parent, path.name, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_new_text(path: str | os.PathLike, text: str, max_tries: int = 10_000) -> Path:
    """Write ``text`` to ``path``, or ``<stem>_1<suffix>``, ``<stem>_2<suffix>``, ... when taken; never replaces a file.

    The name is claimed atomically, also between processes: the complete temporary file is hard-linked to the name
    (``os.link`` fails when the name exists), so a reader never sees a partial file and two writers never share a
    name. On a file system without hard links the name is claimed with ``O_CREAT | O_EXCL`` and the content then
    moved onto it (``os.replace``).

    Args:
        path: the wanted file.
        text: its content.
        max_tries: names tried before giving up.

    Returns:
        the path written.

    Raises:
        FileExistsError: ``max_tries`` names are all taken.
    """
    path = Path(path)
    tmp = _temp_copy(path.parent, path.name, text)
    try:
        for i in range(max_tries):
            target = path if i == 0 else path.with_name(f"{path.stem}_{i}{path.suffix}")
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
            except OSError:  # no hard links here: claim the name empty, then move the content onto it
                try:
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                except FileExistsError:
                    continue
                os.replace(tmp, target)
                return target
        raise FileExistsError(f"{path}: {max_tries} names with this stem are taken")
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_record(record: BenchmarkRecord, folder: str | os.PathLike) -> Path:
    """Write ``record`` as JSON into ``folder`` (created); returns the file path.

    The name is :meth:`BenchmarkRecord.filename`, suffixed ``_1``, ``_2``, ... when taken (records of the same
    second, backend, precision and resolution, also from concurrent processes: :func:`write_new_text`).
    """
    text = json.dumps(record.to_dict(), indent=2, sort_keys=False) + "\n"
    return write_new_text(Path(folder) / record.filename(), text)


def find_record_files(root: str | os.PathLike) -> list[Path]:
    """All ``*.json`` files directly inside folders named ``benchmark`` below ``root`` (sorted)."""
    root = Path(root)
    return sorted(p for p in root.rglob("*.json") if p.parent.name == "benchmark" and not p.name.startswith("."))


def load_records(root: str | os.PathLike) -> list[tuple[Path, BenchmarkRecord]]:
    """Load every record below ``root``; files that are not records are skipped with a warning."""
    import logging

    out = []
    for p in find_record_files(root):
        try:
            d = json.loads(p.read_text())
            if not isinstance(d, dict) or "name" not in d or "schema" not in d:
                raise ValueError("not a segbench benchmark record (no name/schema)")
            out.append((p, BenchmarkRecord.from_dict(d)))
        except (ValueError, TypeError) as e:
            logging.getLogger(__name__).warning(f"skipping {p}: {e}")
    return out
