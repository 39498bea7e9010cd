"""``python benchmark.py compare``: many training runs -> one table with run-to-run variance, quality and cost.

Reads every ``summary.json`` under ``--root`` (written by :mod:`training.summary`), the newest validation.py
record on the test split (``validation/*/metrics.json``) and the newest ok benchmark.py record
(``benchmark/*.json``) of the same run folders, and writes into ``--tables``:

* ``runs.csv``: one row per run (status ``running|finished|failed|killed``, metrics in %, cost, paths);
* ``experiments.csv`` + ``experiments.md``: one row per configuration = the runs whose command-line
  overrides are equal once ``seed`` (and keys that do not change the experiment: :data:`NOT_CONFIGURATION`)
  is dropped, or the runs with equal values of the ``--by`` keys;
* ``per_class_iou.csv``: mean per-class IoU (%) at each run's best epoch, per configuration;
* plots (PNG + SVG): ``metric.*`` (mean with Student-t 95 % CI per configuration, runs as dots),
  ``per_class_iou.*`` (heatmap), ``metric_vs_time.*`` and ``metric_vs_fps.*`` (error bars, Pareto front
  from :func:`benchmarking.pareto.pareto_front`).

Statistics use the finished runs of a configuration only (failed, killed and running runs are counted in
``status_counts`` and listed in ``runs.csv``): ``n``, mean, sample standard deviation (ddof = 1), half-width
of the Student-t 95 % interval ``t.ppf(0.975, n - 1) * s / sqrt(n)``, min, max, and the per-run values in seed
order (best in bold in the markdown, as in the MIC-DKFZ Cityscapes tables). With ``--baseline`` each row gets
the difference of means to that configuration and the p-value of Welch's t-test
(``scipy.stats.ttest_ind(equal_var=False)``). Every output is written only after all inputs were read, each
file atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmarking.records import atomic_write_text, load_records
from metrics.aggregations import AGGREGATIONS

#: metrics ``--metric`` can pick (values in the summaries are in [0, 1]; tables show %)
METRICS = (*AGGREGATIONS, "aAcc", "mAcc")
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


# ---------------------------------------------------------------------------------------------- statistics
def describe(values) -> dict:
    """n, mean, sample std (ddof 1), Student-t 95 % half-width, min, max of ``values`` (NaNs dropped).

    ``std`` and ``ci95`` are NaN for n < 2; every value is NaN for n = 0.
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci95": math.nan, "min": math.nan, "max": math.nan}
    std = float(np.std(x, ddof=1)) if n > 1 else math.nan
    ci = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
    return {"n": n, "mean": float(x.mean()), "std": std, "ci95": ci, "min": float(x.min()), "max": float(x.max())}


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) between samples ``a`` and ``b``; NaN when either
    has fewer than 2 values or both have zero variance."""
    a = [v for v in a if v is not None and not math.isnan(v)]
    b = [v for v in b if v is not None and not math.isnan(v)]
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


# ---------------------------------------------------------------------------------------------- reading
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


def _newest(paths: list[Path]) -> Path | None:
    return max(paths, key=lambda p: (p.stat().st_mtime, str(p))) if paths else None


def _test_record(run_dir: Path, test_split: str) -> tuple[dict, Path | None]:
    found = []
    for p in (run_dir / "validation").glob("*/metrics.json"):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and d.get("split") == test_split:
            found.append((p, d))
    if not found:
        return {}, None
    path = _newest([p for p, _ in found])
    return dict(found)[path], path


def _benchmark_record(run_dir: Path):
    ok = [(p, r) for p, r in load_records(run_dir / "benchmark") if r.status == "ok" and r.fps]
    if not ok:
        return None, None
    path = _newest([p for p, _ in ok])
    return dict(ok)[path], path


def _test_split(run_dir: Path) -> str:
    from omegaconf import OmegaConf

    try:
        return str(OmegaConf.select(OmegaConf.load(run_dir / "hparams.yaml"), "dataset.test_split") or "test")
    except (OSError, ValueError):
        return "test"


def run_row(path: Path, summary: dict, root: Path) -> dict:
    """One ``runs.csv`` row from a ``summary.json`` (metrics in %, time in s, params in M)."""
    from training.liveness import effective_status

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
    test, test_path = _test_record(run_dir, _test_split(run_dir))
    row.update({f"test_{m}": _pct(test.get(m)) for m in METRICS})
    bench, bench_path = _benchmark_record(run_dir)
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
            "fps": bench.fps if bench else None,
            "fps_setting": f"{bench.backend}/{bench.precision} {bench.resolution} on {bench.hardware}" if bench else "",
            "precision": summary.get("precision"),
            "device": (summary.get("devices") or {}).get("device"),
            "git_commit": (summary.get("git") or {}).get("commit"),
            "git_dirty": (summary.get("git") or {}).get("dirty"),
            "started": summary.get("started"),
            "overrides": " ".join(summary.get("overrides") or []),
            "test_record": str(test_path.relative_to(run_dir)) if test_path else "",
            "benchmark_record": str(bench_path.relative_to(run_dir)) if bench_path else "",
        }
    )
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


# ---------------------------------------------------------------------------------------------- grouping
def _lookup(row: dict, key: str):
    """Value of ``key`` for ``--by``: the run's overrides, then summary fields, then its resolved config."""
    if key in row["_overrides"]:
        return row["_overrides"][key]
    if key in row["_summary"] and not isinstance(row["_summary"][key], dict | list):
        return row["_summary"][key]
    from omegaconf import OmegaConf

    try:
        value = OmegaConf.select(OmegaConf.load(Path(row["_summary_path"]).parent / "hparams.yaml"), key)
    except (OSError, ValueError, KeyError):
        value = None
    return None if value is None else str(value)


def assign_configurations(rows: list[dict], by: list[str] | None = None) -> None:
    """Set ``row["config"]`` (a label) so that equal labels = one configuration.

    Without ``by``: runs with equal dataset and :func:`configuration_overrides` (``seed`` dropped); the label
    lists the overrides that vary between configurations (the model's display name when none vary). With ``by``: the values of
    those keys (``key=value``, space-separated).
    """
    if by:
        for r in rows:
            r["config"] = " ".join(f"{k}={_lookup(r, k)}" for k in by)
        return
    keys = {}
    for r in rows:
        keys.setdefault((r["dataset"], tuple(r["_overrides"].items())), []).append(r)
    groups = [dict(k[1]) for k in keys]
    all_keys = sorted({k for g in groups for k in g})
    varying = [k for k in all_keys if len({g.get(k) for g in groups}) > 1]
    labels = {}
    for (dataset, items), members in keys.items():
        o = dict(items)
        label = " ".join(f"{k}={o[k]}" for k in varying if k in o) or str(members[0]["model"])
        if label in labels.values() and len({r["dataset"] for r in rows}) > 1:
            label = f"{label} ({dataset})"
        labels[(dataset, items)] = label
        for r in members:
            r["config"] = label


def common_overrides(rows: list[dict]) -> str:
    """Overrides shared by every run (without ``seed`` and :data:`NOT_CONFIGURATION`), for table captions."""
    if not rows:
        return ""
    shared = set(rows[0]["_overrides"].items())
    for r in rows[1:]:
        shared &= set(r["_overrides"].items())
    return " ".join(f"{k}={v}" for k, v in sorted(shared))


def _fmt(v, digits=2) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _mean(values):
    x = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(x)) if x else math.nan


def experiments_table(rows: list[dict], metric: str = "mIoU", baseline: str | None = None) -> pd.DataFrame:
    """One row per configuration (sorted by label; see module docstring); statistics over finished runs only.

    Raises:
        ValueError: ``baseline`` is not one of the configurations (they are listed).
    """
    m = metric
    configs = sorted({r["config"] for r in rows})
    if baseline is not None and baseline not in configs:
        raise ValueError(f"--baseline {baseline!r} is not a configuration; configurations: {configs}")
    out, samples = [], {}
    for c in configs:
        members = sorted(
            (r for r in rows if r["config"] == c), key=lambda r: (r["seed"] is None, r["seed"] or 0, r["run"])
        )
        ok = [r for r in members if r["status"] == "finished" and r.get(m) is not None]
        values = [r[m] for r in ok]
        samples[c] = values
        d = describe(values)
        best = max(ok, key=lambda r: r[m]) if ok else None
        counts = {s: sum(r["status"] == s for r in members) for s in STATUS_ORDER}
        row = {
            "config": c,
            "dataset": ", ".join(dict.fromkeys(str(r["dataset"]) for r in members)),
            "model": ", ".join(dict.fromkeys(str(r["model"]) for r in members)),
            "n": d["n"],
            **{f"{m}_{k}": d[k] for k in ("mean", "std", "ci95", "min", "max")},
            f"{m}_runs": ", ".join(_fmt(v) for v in values),
            "best_run": best["run"] if best else "",
            f"test_{m}_mean": _mean(r[f"test_{m}"] for r in ok),
            "train_loss": _mean(r["train_loss"] for r in ok),
            "val_loss": _mean(r["val_loss"] for r in ok),
            "time_s_mean": _mean(r["time_s"] for r in ok),
            "time_s_ci95": describe([r["time_s"] for r in ok])["ci95"],
            "train_s_mean": _mean(r["train_s"] for r in ok),
            "s_per_step": _mean(r["s_per_step"] for r in ok),
            "images_per_s": _mean(r["images_per_s"] for r in ok),
            "peak_memory_MiB": _mean(r["peak_memory_MiB"] for r in ok),
            "params_M": _mean(r["params_M"] for r in members),
            "GFLOPs": _mean(r["GFLOPs"] for r in members),
            "checkpoint_MB": _mean(r["checkpoint_MB"] for r in members),
            "fps": _mean(r["fps"] for r in ok),
            "status_counts": ", ".join(f"{s}: {k}" for s, k in counts.items() if k),
            "seeds": ", ".join(str(r["seed"]) for r in ok),
        }
        out.append(row)
    df = pd.DataFrame(out)
    if baseline is not None:
        base = samples[baseline]
        df["delta_mean"] = df[f"{m}_mean"] - describe(base)["mean"]
        df["p_welch"] = [welch_p(samples[c], base) for c in df["config"]]
    return df


def per_class_table(rows: list[dict]) -> pd.DataFrame:
    """Mean per-class IoU (%) at the best epoch over each configuration's finished runs (configs x classes)."""
    data = {}
    for r in rows:
        if r["status"] == "finished" and r["_iou"]:
            data.setdefault(r["config"], []).append(r["_iou"])
    table = {c: pd.DataFrame(v).astype(float).mean(axis=0) for c, v in data.items()}
    return pd.DataFrame(table).T.rename_axis("config") if table else pd.DataFrame()


def runs_table(rows: list[dict]) -> pd.DataFrame:
    """``runs.csv``: the public columns of each row plus ``IoU_<class>`` (%)."""
    front = ["config", "run"]
    out = []
    for r in rows:
        d = {k: v for k, v in r.items() if not k.startswith("_")}
        d.update({f"IoU_{k}": v for k, v in r["_iou"].items()})
        out.append(d)
    df = pd.DataFrame(out)
    return df[front + [c for c in df.columns if c not in front]]


def markdown(df: pd.DataFrame, metric: str, root: Path, common: str) -> str:
    """``experiments.md``: the table people publish (mean ± 95 % CI, runs with the best in bold, cost)."""
    m = metric
    has_base = "delta_mean" in df
    head = [
        "config",
        "model",
        "n",
        f"{m} mean ± 95% CI",
        "std",
        f"{m} per run",
        f"test {m}",
        "train loss",
        "val loss",
        "time (s)",
        "s/step",
        "params (M)",
        "GFLOPs",
        "ckpt (MB)",
        "fps",
        "runs",
    ] + (["Δ mean", "p (Welch)"] if has_base else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for _, r in df.iterrows():
        values = [float(v) for v in str(r[f"{m}_runs"]).split(", ") if v]
        best = max(values) if values else None
        runs = ", ".join(f"**{v:.2f}**" if v == best else f"{v:.2f}" for v in values)
        mean = _fmt(r[f"{m}_mean"]) + (f" ± {_fmt(r[f'{m}_ci95'])}" if _fmt(r[f"{m}_ci95"]) else "")
        cells = [
            f"`{r['config']}`",
            r["model"],
            str(r["n"]),
            mean,
            _fmt(r[f"{m}_std"]),
            runs,
            _fmt(r[f"test_{m}_mean"]),
            _fmt(r["train_loss"], 3),
            _fmt(r["val_loss"], 3),
            _fmt(r["time_s_mean"], 0),
            _fmt(r["s_per_step"], 3),
            _fmt(r["params_M"]),
            _fmt(r["GFLOPs"]),
            _fmt(r["checkpoint_MB"], 1),
            _fmt(r["fps"], 1),
            r["status_counts"],
        ]
        if has_base:
            cells += [_fmt(r["delta_mean"]), _fmt(r["p_welch"], 3)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    caption = [
        f"Runs under `{root}`; {m} ({AGGREGATIONS.get(m, m)}) in %, best validation epoch of each run.",
        "Statistics over finished runs: sample std (ddof 1), Student-t 95 % half-width; best run in bold.",
    ]
    if common:
        caption.append(f"Common overrides: `{common}`.")
    return "\n".join(lines) + "\n\n" + "\n".join(caption) + "\n"


# ---------------------------------------------------------------------------------------------- plots
def _save(fig, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.tight_layout()
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths


def plot_all(df: pd.DataFrame, rows: list[dict], per_class: pd.DataFrame, metric: str, out: Path) -> list[Path]:
    """Draw the comparison plots into ``out`` (module docstring); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarking.pareto import pareto_front

    m, paths = metric, []
    d = df[df["n"] > 0].reset_index(drop=True)
    if d.empty:
        return paths
    colours = {c: plt.cm.tab10(i % 10) for i, c in enumerate(d["config"])}
    ci = d[f"{m}_ci95"].fillna(0.0)
    # 1. metric per configuration, mean ± 95 % CI, runs as dots
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(d) + 1.6), dpi=120)
    y = np.arange(len(d))
    ax.errorbar(d[f"{m}_mean"], y, xerr=ci, fmt="o", color="black", capsize=4, label="mean ± 95 % CI (Student t)")
    for i, c in enumerate(d["config"]):
        vals = [r[m] for r in rows if r["config"] == c and r["status"] == "finished" and r.get(m) is not None]
        ax.plot(vals, [i + 0.15] * len(vals), "x", color=colours[c], ms=6, label="runs" if i == 0 else None)
    ax.set_yticks(y, [f"{c}\n{mod}" for c, mod in zip(d["config"], d["model"])], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"{m} (%)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    paths += _save(fig, out / "metric")
    # 2. per-class IoU heatmap
    if not per_class.empty:
        fig, ax = plt.subplots(figsize=(0.7 * per_class.shape[1] + 3, 0.5 * per_class.shape[0] + 1.8), dpi=120)
        im = ax.imshow(per_class.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=100, aspect="auto")
        ax.set_xticks(range(per_class.shape[1]), per_class.columns, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(per_class.shape[0]), per_class.index, fontsize=7)
        for (i, j), v in np.ndenumerate(per_class.to_numpy(dtype=float)):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="white" if v < 50 else "black")
        fig.colorbar(im, ax=ax, label="IoU (%), mean over runs")
        paths += _save(fig, out / "per_class_iou")
    # 3./4. metric vs cost with error bars and the Pareto front
    for col, err, stem, xlabel, sign in (
        ("time_s_mean", "time_s_ci95", "metric_vs_time", "training wall time (s)", -1.0),
        ("fps", None, "metric_vs_fps", "fps (img/s, benchmark.py record)", 1.0),
    ):
        e = d[d[col].notna()].reset_index(drop=True)
        if e.empty:
            continue
        fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
        for _, r in e.iterrows():
            xerr = None if err is None or pd.isna(r[err]) else r[err]
            yerr = None if pd.isna(r[f"{m}_ci95"]) else r[f"{m}_ci95"]
            ax.errorbar(r[col], r[f"{m}_mean"], xerr=xerr, yerr=yerr, fmt="o", capsize=3, color=colours[r["config"]])
            ax.annotate(r["config"], (r[col], r[f"{m}_mean"]), textcoords="offset points", xytext=(5, 5), fontsize=7)
        front = e.iloc[pareto_front(list(zip(sign * e[col], e[f"{m}_mean"])))].sort_values(col)
        ax.step(front[col], front[f"{m}_mean"], where="post", ls="--", color="black", lw=0.8, label="Pareto front")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{m} (%), mean ± 95 % CI")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        paths += _save(fig, out / stem)
    return paths


# ---------------------------------------------------------------------------------------------- command
def compare(
    root: str | os.PathLike,
    tables: str | os.PathLike,
    by: list[str] | None = None,
    metric: str = "mIoU",
    baseline: str | None = None,
    warn=print,
) -> list[Path]:
    """Read the runs under ``root`` and write the tables and plots into ``tables`` (module docstring).

    Returns:
        the files written.

    Raises:
        ValueError: unknown ``metric``, no run summary under ``root``, or an unknown ``baseline``.
    """
    if metric not in METRICS:
        raise ValueError(f"--metric {metric!r} is not known; valid: {list(METRICS)}")
    root = Path(root).resolve()
    if not root.is_dir():
        raise ValueError(f"--root {root} is not a folder")
    rows = read_runs(root, warn)
    if not rows:
        raise ValueError(f"no readable summary.json under {root} (main.py writes one into every run folder)")
    assign_configurations(rows, by)
    exp = experiments_table(rows, metric, baseline)
    per_class = per_class_table(rows)
    runs = runs_table(rows)
    md = markdown(exp, metric, root, common_overrides(rows) if not by else "")
    tables = Path(tables)
    tables.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tables, prefix=".compare.") as tmp:
        plots = plot_all(exp, rows, per_class, metric, Path(tmp))
        written = [
            atomic_write_text(tables / "runs.csv", runs.to_csv(index=False)),
            atomic_write_text(tables / "experiments.csv", exp.to_csv(index=False)),
            atomic_write_text(tables / "experiments.md", md),
        ]
        if not per_class.empty:
            written.append(atomic_write_text(tables / "per_class_iou.csv", per_class.to_csv()))
        for p in plots:
            os.replace(p, tables / p.name)
            written.append(tables / p.name)
    return written


def main(argv: list[str]) -> int:
    """``benchmark.py compare`` command line; returns the exit code (2: bad arguments or input)."""
    from omegaconf import OmegaConf

    import utils.hydra  # noqa: F401  (resolvers of config/environment)

    env = OmegaConf.load(Path(__file__).resolve().parents[1] / "config" / "environment" / "default.yaml")
    p = argparse.ArgumentParser(
        prog="benchmark.py compare",
        description="Group training runs (summary.json) into configurations: mean, std, 95 %% CI, cost.",
    )
    p.add_argument("--root", default=None, help=f"folder searched for */summary.json (default LOGDIR: {env.log_dir})")
    p.add_argument("--tables", default="tables/compare", help="output folder (runs.csv, experiments.csv/.md, plots)")
    p.add_argument(
        "--by",
        default=None,
        help="comma-separated keys defining a configuration (default: all "
        "overrides except seed), e.g. model.arch,model.encoder",
    )
    p.add_argument(
        "--metric", default="mIoU", choices=METRICS, help="; ".join(f"{k}: {v}" for k, v in AGGREGATIONS.items())
    )
    p.add_argument("--baseline", default=None, help="configuration label: adds Δ mean and Welch's t-test p-value")
    a = p.parse_args(argv)
    by = [k.strip() for k in a.by.split(",") if k.strip()] if a.by else None
    try:
        paths = compare(
            a.root or env.log_dir, a.tables, by, a.metric, a.baseline, warn=lambda s: print(s, file=sys.stderr)
        )
    except ValueError as e:
        print(f"benchmark.py compare: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
