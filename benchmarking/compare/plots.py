"""Plots of ``benchmark.py compare`` (PNG + SVG): the metric per configuration (mean with Student-t 95 % CI, runs
as crosses), the per-class IoU heatmap, and the metric against training time and against fps (one plot per
benchmark setting, error bars, Pareto front from :func:`benchmarking.pareto.pareto_front`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd


def _save(fig, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.tight_layout()
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths


def plot_all(
    df: pd.DataFrame,
    rows: list[dict],
    per_class: pd.DataFrame,
    metric: str,
    out: Path,
    statistic: str = "",
    fps_columns: dict[str, str] | None = None,
) -> list[Path]:
    """Draw the comparison plots into ``out``; returns the files written.

    Args:
        df: the experiments table (columns ``config``, ``model``, ``n``, ``<metric>_mean``, ``<metric>_ci95``,
            ``time_s_mean``, ``time_s_ci95`` and the ``fps_columns``).
        rows: the run rows with ``config``, ``status`` and ``value`` (the selected metric in %, or None).
        per_class: configs x classes mean IoU (%).
        metric: the metric's name (axis labels).
        out: existing folder.
        statistic: what the values are (split and selection rule), for the axis label.
        fps_columns: fps column of ``df`` -> its benchmark setting; one metric-vs-fps plot each
            (``metric_vs_fps.*`` for the first, ``metric_vs_fps_2.*`` ... for the others).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarking.pareto import pareto_front

    m, paths = metric, []
    d = df[df["n"] > 0].reset_index(drop=True)
    if d.empty:
        return paths
    colours = {c: plt.cm.tab10(i % 10) for i, c in enumerate(d["config"])}
    ylabel = f"{m} (%), {statistic}" if statistic else f"{m} (%)"
    ci = d[f"{m}_ci95"].fillna(0.0)
    # 1. metric per configuration, mean ± 95 % CI, runs as crosses
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(d) + 1.8), dpi=120)
    y = np.arange(len(d))
    ax.errorbar(d[f"{m}_mean"], y, xerr=ci, fmt="o", color="black", capsize=4, label="mean ± 95 % CI (Student t)")
    for i, c in enumerate(d["config"]):
        vals = [r["value"] for r in rows if r["config"] == c and r["status"] == "finished" and r["value"] is not None]
        ax.plot(vals, [i + 0.15] * len(vals), "x", color=colours[c], ms=6, label="runs" if i == 0 else None)
    ax.set_yticks(y, [f"{c}\n{mod}" for c, mod in zip(d["config"], d["model"])], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel, fontsize=8)
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
    plots = [("time_s_mean", "time_s_ci95", "metric_vs_time", "training wall time (s)", -1.0)]
    for i, (col, setting) in enumerate((fps_columns or {}).items()):
        stem = "metric_vs_fps" if i == 0 else f"metric_vs_fps_{i + 1}"
        plots.append((col, None, stem, f"fps (img/s): {setting}", 1.0))
    for col, err, stem, xlabel, sign in plots:
        e = d[d[col].notna()].reset_index(drop=True) if col in d else d.iloc[0:0]
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
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(f"{ylabel}, mean ± 95 % CI", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        paths += _save(fig, out / stem)
    return paths
