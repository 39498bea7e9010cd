"""Tables of ``benchmark.py compare``: ``experiments.csv/.md`` (one row per configuration, one column per
benchmark or test setting), ``runs.csv`` and ``per_class_iou.csv``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarking.compare.runs import DESCRIPTIONS, LOWER_IS_BETTER, SELECT, STATUS_ORDER, _pct
from benchmarking.compare.stats import describe, welch_p


def _fmt(v, digits=2) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _mean(values):
    x = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(x)) if x else math.nan


def setting_columns(rows: list[dict], metric: str, select: str) -> tuple[dict[str, str], dict[str, str]]:
    """The per-setting columns of the experiments table: ``({fps column: bench setting}, {test column: test
    setting})``; one column per setting found among the runs (``fps`` / ``test_<metric>`` alone when there is
    one). Under ``test-at-best-val`` the test figure is the statistic itself, so there are no test columns."""

    def columns(name: str, settings: list[str]) -> dict[str, str]:
        if len(settings) == 1:
            return {name: settings[0]}
        return {f"{name} ({i})": s for i, s in enumerate(settings, 1)}

    benches = sorted({k for r in rows for k in r["_benches"]})
    tests = [] if select == "test-at-best-val" else sorted({k for r in rows for k in r["_tests"]})
    return columns("fps", benches), columns(f"test_{metric}", tests)


def experiments_table(
    rows: list[dict], metric: str = "mIoU", baseline: str | None = None, select: str = "best"
) -> pd.DataFrame:
    """One row per configuration (sorted by label; see module docstring); statistics over the finished runs with a
    value (``row["value"]``, set by :func:`select_values`).

    Raises:
        ValueError: ``baseline`` is not one of the configurations (they are listed).
    """
    m = metric
    configs = sorted({r["config"] for r in rows})
    if baseline is not None and baseline not in configs:
        raise ValueError(f"baseline={baseline!r} is not a configuration; configurations: {configs}")
    fps_cols, test_cols = setting_columns(rows, m, select)
    out, samples = [], {}
    for c in configs:
        members = sorted(
            (r for r in rows if r["config"] == c), key=lambda r: (r["seed"] is None, r["seed"] or 0, r["run"])
        )
        finished = [r for r in members if r["status"] == "finished"]
        ok = [r for r in finished if r["value"] is not None]
        values = [r["value"] for r in ok]
        samples[c] = values
        d = describe(values)
        pick = min if m in LOWER_IS_BETTER else max
        best = pick(ok, key=lambda r: r["value"]) if ok else None
        counts = {s: sum(r["status"] == s for r in members) for s in STATUS_ORDER}
        counts["finished without a value"] = len(finished) - len(ok)
        row = {
            "config": c,
            "dataset": str(members[0]["dataset"]),
            "model": ", ".join(dict.fromkeys(str(r["model"]) for r in members)),
            "split_and_selection": SELECT[select],
            "inference": members[0].get("value_setting", ""),
            "n": d["n"],
            **{f"{m}_{k}": d[k] for k in ("mean", "std", "ci95", "min", "max")},
            f"{m}_runs": ", ".join(_fmt(v) for v in values),
            "best_run": best["run"] if best else "",
            **{col: _mean(_pct(r["_tests"][s].get(m)) for r in ok if s in r["_tests"]) for col, s in test_cols.items()},
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
            **{col: _mean(r["_benches"][s].fps for r in ok if s in r["_benches"]) for col, s in fps_cols.items()},
            **{
                f"{col} GFLOPs": _mean(r["_benches"][s].gflops for r in ok if s in r["_benches"])
                for col, s in fps_cols.items()
            },
            "status_counts": ", ".join(f"{s}: {k}" for s, k in counts.items() if k),
            "seeds": ", ".join(str(r["seed"]) for r in ok),
        }
        out.append(row)
    df = pd.DataFrame(out)
    if baseline is not None:
        base = samples[baseline]
        df["delta_mean"] = df[f"{m}_mean"] - describe(base)["mean"]
        df["p_welch"] = [welch_p(samples[c], base) for c in df["config"]]
    df.attrs.update(fps_columns=fps_cols, test_columns=test_cols, select=select)
    return df


def per_class_table(rows: list[dict]) -> pd.DataFrame:
    """Mean per-class IoU (%) at the best epoch over each configuration's finished runs (configs x classes)."""
    data = {}
    for r in rows:
        if r["status"] == "finished" and r["_iou"]:
            data.setdefault(r["config"], []).append(r["_iou"])
    table = {c: pd.DataFrame(v).astype(float).mean(axis=0) for c, v in data.items()}
    return pd.DataFrame(table).T.rename_axis("config") if table else pd.DataFrame()


def runs_table(rows: list[dict], metric: str = "mIoU") -> pd.DataFrame:
    """``runs.csv``: the public columns of each row, ``value`` (the statistic's input), one ``fps [<setting>]``
    and ``test_<metric> [<setting>]`` column per setting found, plus ``IoU_<class>`` (%)."""
    front = ["config", "run"]
    out = []
    for r in rows:
        d = {k: v for k, v in r.items() if not k.startswith("_")}
        d.update({f"fps [{k}]": rec.fps for k, rec in r["_benches"].items()})
        d.update({f"test_{metric} [{k}]": _pct(t.get(metric)) for k, t in r["_tests"].items()})
        d.update({f"IoU_{k}": v for k, v in r["_iou"].items()})
        out.append(d)
    df = pd.DataFrame(out)
    return df[front + [c for c in df.columns if c not in front]]


def markdown(df: pd.DataFrame, metric: str, root: Path, common: str) -> str:
    """``experiments.md``: the table people publish (mean ± 95 % CI, runs with the best in bold, cost), its
    caption naming the split, the selection rule and each setting column's setting."""
    m = metric
    has_base = "delta_mean" in df
    fps_cols, test_cols = df.attrs.get("fps_columns", {}), df.attrs.get("test_columns", {})
    head = [
        "config",
        "model",
        "n",
        f"{m} mean ± 95% CI",
        "std",
        f"{m} per run",
        *[c.replace("_", " ") for c in test_cols],
        "train loss",
        "val loss",
        "time (s)",
        "s/step",
        "params (M)",
        "GFLOPs",
        "ckpt (MB)",
        *fps_cols,
        "runs",
    ] + (["Δ mean", "p (Welch)"] if has_base else [])
    rows = []
    for _, r in df.iterrows():
        values = [float(v) for v in str(r[f"{m}_runs"]).split(", ") if v]
        best = (min if m in LOWER_IS_BETTER else max)(values) if values else None
        runs = ", ".join(f"**{v:.2f}**" if v == best else f"{v:.2f}" for v in values)
        mean = _fmt(r[f"{m}_mean"]) + (f" ± {_fmt(r[f'{m}_ci95'])}" if _fmt(r[f"{m}_ci95"]) else "")
        cells = [
            f"`{r['config']}`",
            r["model"],
            str(r["n"]),
            mean,
            _fmt(r[f"{m}_std"]),
            runs,
            *[_fmt(r[c]) for c in test_cols],
            _fmt(r["train_loss"], 3),
            _fmt(r["val_loss"], 3),
            _fmt(r["time_s_mean"], 0),
            _fmt(r["s_per_step"], 3),
            _fmt(r["params_M"]),
            _fmt(r["GFLOPs"]),
            _fmt(r["checkpoint_MB"], 1),
            *[_fmt(r[c], 1) for c in fps_cols],
            r["status_counts"],
        ]
        if has_base:
            cells += [_fmt(r["delta_mean"]), _fmt(r["p_welch"], 3)]
        rows.append([str(c).replace("|", "\\|") for c in cells])
    table = pd.DataFrame(rows, columns=head).to_markdown(index=False, tablefmt="pipe", disable_numparse=True)
    select = df.attrs.get("select", "best")
    caption = [
        f"Runs under `{root}`; {m} ({DESCRIPTIONS.get(m, m)}) in %, {SELECT[select]}.",
        "Statistics over finished runs with a value: sample std (ddof 1), Student-t 95 % half-width; best run in bold.",
    ]
    if select == "test-at-best-val" and len(set(df["inference"])) == 1 and df["inference"].iloc[0]:
        caption.append(f"Inference: {df['inference'].iloc[0]}.")
    for col, setting in {**test_cols, **fps_cols}.items():
        caption.append(f"{col.replace('_', ' ')}: {setting}.")
    if has_base:
        caption.append("Δ mean and p (Welch's t-test) against the baseline configuration.")
    if common:
        caption.append(f"Common overrides: `{common}`.")
    return table + "\n\n" + "\n".join(caption) + "\n"
