"""Merge benchmark records and reported model-zoo numbers into CSV tables, atomically.

``python benchmark.py aggregate [root=logs/] [tables=tables/] [import_mmseg=true]`` reads every record under
``root=`` (``**/benchmark/*.json``), every ``tables/reported/*.csv`` (``source=reported``) and, with
``import_mmseg=true``, the model-zoo metafiles of an installed MMSegmentation, and writes

* ``tables/all.csv``                    every row,
* ``tables/<dataset>/<resolution>.csv`` the rows of one dataset at one resolution (WxH).

Units: fps img/s (batch 1), mIoU and parity_delta_mIoU in % (points), params in millions, GFLOPs = 1e9 FLOPs (convention per row in
``flops_convention``; segbench's own counts use 1 MAC = 2 FLOPs), memory in MiB (``memory_kind`` says
which memory).  Each CSV is written to a temporary file and renamed over the old one, so an interrupted
aggregate never leaves a half-written CSV.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import pandas as pd
import yaml

from core.precision import canonical_precision
from core.records import BenchmarkRecord, atomic_write_text, load_records

log = logging.getLogger(__name__)

COLUMNS = [
    "name",
    "method",
    "config",
    "weights",
    "fps",
    "resolution",
    "hardware",
    "dataset",
    "mIoU",
    "params",
    "GFLOPs",
    "memory",
    "precision",
    "backend",
    "source",
]
EXTRA_COLUMNS = [
    "status",
    "error",
    "fps_var",
    "latency_ms_p50",
    "latency_ms_p95",
    "flops_convention",
    "memory_forward",
    "memory_kind",
    "budget",
    "parity",
    "parity_max_abs_logit",
    "parity_label_agreement",
    "parity_delta_mIoU",
    "eval",
    "citation",
    "notes",
    "record",
]
ALL_COLUMNS = COLUMNS + EXTRA_COLUMNS


def _precision(value) -> str:
    """The Lightning name of a reported precision (``fp32`` -> ``32-true``); other values as they are, lower case."""
    try:
        return canonical_precision(value)
    except ValueError:
        return str(value).lower()


def record_row(rec: BenchmarkRecord, path: Path | str = "") -> dict:
    """One table row of a record (mIoU in %, params in M, memory in MiB)."""
    b = rec.budget or {}
    budget = "" if not b else ("ok" if b.get("ok", True) else "exceeded: " + "; ".join(b.get("violations", [])))
    if b and b.get("checked_on") == "photos":
        budget += (
            f" ({b.get('images')} photos, max {b.get('max_seconds', 0):.2f} s, {b.get('max_memory_mib', 0):.0f} MiB)"
        )
    parity = ""
    if rec.parity_ok is not None:
        parity = "ok" if rec.parity_ok else "exceeded: " + "; ".join(rec.parity_violations)
        parity += f" (vs {rec.parity_reference}, {rec.parity_images})"
    return {
        "name": rec.name,
        "method": rec.method,
        "config": rec.config,
        "weights": rec.weights,
        "fps": rec.fps,
        "resolution": rec.resolution,
        "hardware": rec.hardware,
        "dataset": rec.dataset,
        "mIoU": None if rec.mIoU is None else 100.0 * rec.mIoU,
        "params": None if rec.params is None else rec.params / 1e6,
        "GFLOPs": rec.gflops,
        "memory": rec.memory_peak_mib,
        "memory_forward": rec.memory_forward_mib,
        "precision": rec.precision,
        "backend": rec.backend,
        "source": rec.source,
        "status": rec.status,
        "error": rec.error,
        "fps_var": rec.fps_var,
        "latency_ms_p50": rec.latency_ms_p50,
        "latency_ms_p95": rec.latency_ms_p95,
        "flops_convention": rec.flops_convention,
        "memory_kind": rec.memory_kind,
        "budget": budget,
        "parity": parity,
        "parity_max_abs_logit": rec.parity_max_abs_logit,
        "parity_label_agreement": rec.parity_label_agreement,
        "parity_delta_mIoU": None if rec.parity_delta_mIoU is None else 100.0 * rec.parity_delta_mIoU,
        "eval": f"{rec.eval_split} ({rec.eval_images} images)" if rec.mIoU is not None else "",
        "citation": "",
        "notes": "",
        "record": str(path),
    }


def load_reported(folder: str | Path) -> pd.DataFrame:
    """All ``*.csv`` in ``folder`` (shipped model-zoo numbers) with ``source=reported``.

    Raises:
        ValueError: a file lacks one of the required columns (file and missing columns named).
    """
    frames = []
    for p in sorted(Path(folder).glob("*.csv")):
        df = pd.read_csv(p)
        missing = [c for c in ("name", "method", "dataset", "resolution", "mIoU", "citation") if c not in df.columns]
        if missing:
            raise ValueError(f"{p}: reported table lacks columns {missing}; has {list(df.columns)}")
        df["source"] = "reported"
        df["status"] = df.get("status", "ok")
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ALL_COLUMNS)


def _norm_dataset(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", str(name).lower())


def _wxh(res) -> str:
    """MMSeg ``(H,W)`` / ``HxW`` text -> segbench ``WxH``."""
    nums = [int(n) for n in re.findall(r"\d+", str(res))]
    return f"{nums[1]}x{nums[0]}" if len(nums) == 2 else str(res)


def rows_from_metafile(meta: dict, origin: str = "") -> list[dict]:
    """Rows of an MMSegmentation ``metafile.yaml`` (0.x and 1.x layouts) with ``source=reported``.

    fps = 1000 / ``inference time (ms/im)`` where given (0.x; the 1.x metafiles have no timing); mIoU from
    ``Results.Metrics.mIoU``; the resolution is the metafile's inference ``resolution`` (H, W), its ``crop size`` or
    the crop size at the end of the 1.x model name (``..._cityscapes-512x1024``), written as WxH.
    """
    rows = []
    for m in meta.get("Models") or []:
        md = m.get("Metadata") or {}
        results = m.get("Results") or []
        results = results if isinstance(results, list) else [results]
        inf = md.get("inference time (ms/im)") or []
        inf = inf[0] if isinstance(inf, list) and inf else (inf if isinstance(inf, dict) else {})
        crop = re.search(r"(\d+)x(\d+)$", str(m.get("Name", "")))  # 1.x names end in the crop size, HxW
        res = inf.get("resolution") or md.get("crop size") or (f"({crop[1]},{crop[2]})" if crop else "")
        arch = md.get("Architecture") or md.get("backbone") or []
        for r in results:
            metrics = r.get("Metrics") or {}
            if "mIoU" not in metrics:
                continue
            rows.append(
                {
                    "name": m.get("Name", ""),
                    "method": m.get("In Collection", ""),
                    "config": m.get("Config", ""),
                    "weights": m.get("Weights", ""),
                    "fps": 1000.0 / float(inf["value"]) if inf.get("value") else None,
                    "resolution": _wxh(res),
                    "hardware": inf.get("hardware", ""),
                    "dataset": _norm_dataset(r.get("Dataset", md.get("Training Data", ""))),
                    "mIoU": float(metrics["mIoU"]),
                    "precision": _precision(inf.get("mode", "")),
                    "backend": inf.get("backend", ""),
                    "source": "reported",
                    "status": "ok",
                    "citation": f"MMSegmentation model zoo metafile {origin}",
                    "notes": f"architecture {arch}" if arch else "",
                }
            )
    return rows


def import_mmseg(configs_dir: str | Path | None = None) -> pd.DataFrame:
    """Rows of every ``metafile.yaml`` below ``configs_dir`` (default: the installed mmseg's ``.mim/configs``).

    Raises:
        ImportError: mmseg is not installed and no ``configs_dir`` is given (says what to install).
    """
    if configs_dir is None:
        spec = importlib.util.find_spec("mmseg")
        if spec is None or not spec.origin:
            raise ImportError(
                "import_mmseg=true needs MMSegmentation: pip install -r requirements-mmseg.txt "
                "(or pass mmseg_configs=<mmsegmentation>/configs)"
            )
        configs_dir = Path(spec.origin).parent / ".mim" / "configs"
    rows = []
    for p in sorted(Path(configs_dir).rglob("metafile.y*ml")):
        rows += rows_from_metafile(yaml.safe_load(p.read_text()) or {}, origin=str(p.relative_to(configs_dir)))
    return pd.DataFrame(rows, columns=ALL_COLUMNS)


def build_table(root: str | Path, reported_dir: str | Path | None, mmseg: pd.DataFrame | None = None) -> pd.DataFrame:
    """One DataFrame of records below ``root``, reported CSVs and optional MMSeg rows (columns :data:`ALL_COLUMNS`)."""
    rows = [record_row(rec, path) for path, rec in load_records(root)] if Path(root).is_dir() else []
    frames = [pd.DataFrame(rows, columns=ALL_COLUMNS)]
    if reported_dir is not None and Path(reported_dir).is_dir():
        frames.append(load_reported(reported_dir))
    if mmseg is not None and len(mmseg):
        frames.append(mmseg)
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ALL_COLUMNS)
    for c in ALL_COLUMNS:
        if c not in df.columns:
            df[c] = None
    return df[ALL_COLUMNS + [c for c in df.columns if c not in ALL_COLUMNS]]


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV atomically (see :func:`core.records.atomic_write_text`)."""
    return atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))


def aggregate(
    root: str | Path = "logs",
    tables: str | Path = "tables",
    reported_dir: str | Path | None = None,
    mmseg: pd.DataFrame | None = None,
) -> list[Path]:
    """Build and write ``tables/all.csv`` and ``tables/<dataset>/<resolution>.csv``; returns the paths written.

    Args:
        root: folder searched for records (LOGDIR).
        tables: output folder.
        reported_dir: reported model-zoo CSVs (default ``<tables>/reported``).
        mmseg: rows from :func:`import_mmseg`, if any.
    """
    tables = Path(tables)
    reported_dir = tables / "reported" if reported_dir is None else reported_dir
    df = build_table(root, reported_dir, mmseg)
    written = [write_csv(df, tables / "all.csv")]
    for (dataset, res), part in df.groupby(["dataset", "resolution"], dropna=True, sort=True):
        if not str(dataset) or not str(res):
            continue
        safe = re.sub(r"[^A-Za-z0-9_.x-]+", "_", str(res))
        written.append(write_csv(part, tables / str(dataset) / f"{safe}.csv"))
    return written
