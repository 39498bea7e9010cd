"""Reading runs for ``benchmark.py compare``: ``summary.json`` rows, their test and benchmark records by setting,
and the value each run contributes under a ``select=`` rule."""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarking.like_for_like import bench_setting, checkpoint_kind, eval_setting
from core.records import load_records
from metrics.aggregations import AGGREGATIONS
from metrics.calibration import CALIBRATION

#: figures of validation.py ``corruptions=...`` records (:mod:`metrics.robustness`); no ``summary.json`` has them, so
#: they come from a run's test records (``select=test-at-best-val``, or the ``test_<metric>`` columns)
ROBUSTNESS = {
    "mPC": "mean over the corruptions and severities evaluated of the mIoU on corrupted images",
    "rPC": "mPC / clean mIoU",
}
METRICS = (*AGGREGATIONS, "aAcc", "mAcc", *CALIBRATION, *ROBUSTNESS)
#: metrics where the lowest value is the best (the run marked best, the bold value)
LOWER_IS_BETTER = frozenset(CALIBRATION)
#: what each ``metric=`` is, for help texts and captions
DESCRIPTIONS = {**AGGREGATIONS, **CALIBRATION, **ROBUSTNESS}
#: override keys (and key prefixes before a dot) that never define a configuration: paths, workers, display
NOT_CONFIGURATION = (
    "seed",
    "LOGDIR",
    "environment",
    "hydra",
    "num_workers",
    "continue_from",
    "callbacks.progress_bar",
    "trainer.enable_progress_bar",
)
STATUS_ORDER = ("finished", "running", "failed", "killed")
#: ``select=``: what each run contributes to the statistics, as the table captions say it
SELECT = {
    "best": "val split, best epoch of each run (the maximum over epochs on the split that picked it: optimistic)",
    "last": "val split, last epoch of each run",
    "test-at-best-val": "test split, the checkpoint of each run's best val epoch",
}


def parse_override(text: str) -> tuple[str, str]:
    """``"+key=value"`` -> ``("key", "value")`` (``+``/``++``/``~`` prefixes dropped)."""
    key, _, value = str(text).partition("=")
    return key.lstrip("+~"), value


def configuration_overrides(overrides) -> dict[str, str]:
    """The overrides that define a configuration: every ``key=value`` except :data:`NOT_CONFIGURATION`."""
    out = {}
    for o in overrides or []:
        key, value = parse_override(o)
        if any(key == k or key.startswith(k + ".") for k in NOT_CONFIGURATION):
            continue
        out[key] = value
    return dict(sorted(out.items()))


def _pct(v):
    return None if v is None else 100.0 * float(v)


def _test_records(run_dir: Path, test_split: str) -> dict[str, tuple[Path, dict]]:
    """The run's validation.py records on ``test_split``: setting label (checkpoint kind first) -> the newest
    ``(path, metrics)`` of that setting."""
    found: dict[str, tuple[Path, dict]] = {}
    for p in (run_dir / "validation").glob("*/metrics.json"):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(d, dict) or d.get("split") != test_split:
            continue
        key = f"{checkpoint_kind(d.get('checkpoint'))} checkpoint: {eval_setting(d)}"
        if key not in found or (p.stat().st_mtime, str(p)) > (found[key][0].stat().st_mtime, str(found[key][0])):
            found[key] = (p, d)
    return found


def _benchmark_records(run_dir: Path) -> dict[str, tuple[Path, object]]:
    """The run's ok benchmark.py records with an fps: setting label -> the newest ``(path, record)``."""
    found: dict[str, tuple[Path, object]] = {}
    for p, r in load_records(run_dir / "benchmark"):
        if r.status != "ok" or not r.fps:
            continue
        key = bench_setting(r)
        if key not in found or (r.timestamp, str(p)) > (found[key][1].timestamp, str(found[key][0])):
            found[key] = (p, r)
    return found


def _test_split(run_dir: Path) -> str:
    from omegaconf import OmegaConf

    try:
        return str(OmegaConf.select(OmegaConf.load(run_dir / "hparams.yaml"), "dataset.test_split") or "test")
    except (OSError, ValueError):
        return "test"


def _temperature(run_dir: Path) -> dict:
    """``ECE_scaled``/``MCE_scaled`` (%, ``last_`` prefixed for a temperature fitted for ``last.ckpt``) and
    ``temperature`` of the run's ``calibration/temperature.json``; ``{}`` without a readable one."""
    from core.run_folder import RunFolder

    try:
        t = json.loads(RunFolder(run_dir).temperature_file.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(t, dict):
        return {}
    prefix = {"checkpoints/best.ckpt": "", "checkpoints/last.ckpt": "last_"}.get(str(t.get("checkpoint")))
    if prefix is None:
        return {"temperature": t.get("temperature")}
    return {
        "temperature": t.get("temperature"),
        f"{prefix}ECE_scaled": _pct(t.get("ECE_after")),
        f"{prefix}MCE_scaled": _pct(t.get("MCE_after")),
    }


def run_row(path: Path, summary: dict, root: Path) -> dict:
    """One ``runs.csv`` row from a ``summary.json`` (metrics in %, time in s, params in M).

    ``<metric>`` columns are the best val epoch's, ``last_<metric>`` the last val epoch's; the test and benchmark
    records of the run are kept by setting (``_tests``, ``_benches``) for :func:`select_values` and the table.
    ``ECE_scaled``/``MCE_scaled`` (after temperature scaling) and ``temperature`` come from the run's
    ``calibration/temperature.json`` (val split, the dataset's test-time settings; ``last_`` when it was fitted for
    ``last.ckpt``).
    """
    from core.liveness import effective_status

    run_dir = path.parent
    best, last, t = summary.get("best") or {}, summary.get("last") or {}, summary.get("time") or {}
    row = {
        "run": str(run_dir.relative_to(root)) if run_dir.is_relative_to(root) else str(run_dir),
        "dataset": summary.get("dataset"),
        "model": summary.get("model_name") or summary.get("model"),
        "experiment": summary.get("experiment"),
        "seed": summary.get("seed"),
        "status": effective_status(summary),
        "error": summary.get("error") or "",
        "epochs_done": summary.get("epochs_done"),
        "last_epoch": last.get("epoch"),
        "best_epoch": best.get("epoch"),
        "steps_done": summary.get("steps_done"),
    }
    row.update({m: _pct(best.get(m)) for m in METRICS})
    row.update({f"last_{m}": _pct(last.get(m, last.get(f"val_{m}"))) for m in METRICS})
    row.update(_temperature(run_dir))
    mem = summary.get("memory") or {}
    row.update(
        {
            "train_loss": last.get("train_loss"),
            "val_loss": last.get("val_loss"),
            "time_s": t.get("total_s"),
            "train_s": t.get("train_s"),
            "s_per_step": t.get("s_per_step_median"),
            "images_per_s": t.get("images_per_s"),
            "peak_memory_MiB": mem.get("peak_mib"),
            "memory_kind": mem.get("kind"),
            "params_M": None if summary.get("params") is None else summary["params"] / 1e6,
            "trainable_params_M": None
            if summary.get("trainable_params") is None
            else summary["trainable_params"] / 1e6,
            "GFLOPs": summary.get("gflops"),
            "checkpoint_MB": summary.get("checkpoint_mb"),
            "precision": summary.get("precision"),
            "device": (summary.get("devices") or {}).get("device"),
            "git_commit": (summary.get("git") or {}).get("commit"),
            "git_dirty": (summary.get("git") or {}).get("dirty"),
            "started": summary.get("started"),
            "overrides": " ".join(summary.get("overrides") or []),
        }
    )
    tests, benches = _test_records(run_dir, _test_split(run_dir)), _benchmark_records(run_dir)
    row["test_records"] = " ".join(str(p.relative_to(run_dir)) for p, _ in tests.values())
    row["benchmark_records"] = " ".join(str(p.relative_to(run_dir)) for p, _ in benches.values())
    row["_tests"] = {k: d for k, (_, d) in tests.items()}
    row["_benches"] = {k: r for k, (_, r) in benches.items()}
    row["_overrides"] = configuration_overrides(summary.get("overrides"))
    row["_iou"] = {str(k): _pct(v) for k, v in (best.get("IoU") or {}).items()}
    row["_summary"], row["_summary_path"] = summary, str(path)
    return row


def read_runs(root: str | os.PathLike, warn=print) -> list[dict]:
    """Rows of every readable ``summary.json`` below ``root`` (sorted by path); each unreadable one is named
    in one line through ``warn`` and skipped."""
    root = Path(root).resolve()
    rows = []
    for path in sorted(root.rglob("summary.json")):
        try:
            summary = json.loads(path.read_text())
            if not isinstance(summary, dict) or "status" not in summary:
                raise ValueError("not a segbench run summary (no 'status')")
            rows.append(run_row(path, summary, root))
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as e:
            warn(f"benchmark.py compare: skipping unreadable {path}: {type(e).__name__}: {e}")
    return rows


def select_values(rows: list[dict], select: str = "best", metric: str = "mIoU") -> list[dict]:
    """Set ``row["value"]`` (the statistic's input, %) and ``row["value_setting"]`` by the ``select=`` rule.

    ``best`` / ``last``: the run's best / last val epoch. ``test-at-best-val``: the test records of the run's
    ``best`` checkpoint; a run with records of several inference settings becomes one row per setting (never
    averaged), a run with none keeps ``value`` None and ``no_value`` set (excluded from the statistics).

    Returns:
        the rows (copies where a run was split by setting).

    Raises:
        ValueError: an unknown ``select``.
    """
    if select not in SELECT:
        raise ValueError(f"select={select!r} is not known; valid: {list(SELECT)}")
    out = []
    for r in rows:
        if select != "test-at-best-val":
            out.append({**r, "value": r[metric if select == "best" else f"last_{metric}"], "value_setting": ""})
            continue
        at_best = {k: d for k, d in r["_tests"].items() if k.startswith("best checkpoint: ")}
        if not at_best:
            out.append({**r, "value": None, "value_setting": "", "no_value": "no test record of best.ckpt"})
        for k, d in sorted(at_best.items()):
            out.append({**r, "value": _pct(d.get(metric)), "value_setting": k.removeprefix("best checkpoint: ")})
    return out
