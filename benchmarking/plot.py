"""fps (log x) vs mIoU plot of one table (``python benchmark.py plot dataset=... resolution=...``).

One marker per row (reproduced: filled circle, reported: open square); the rows of one method and source are
joined by a line in fps order; a reproduced row is joined to the reported row of the same ``name`` by a dotted
line (a reported row without fps is drawn as x at the fps of its reproduced row); the Pareto front over all points
is a dashed step line; "interesting" methods are coloured and in the
legend, the rest grey.  ``interesting``: ``pareto`` (methods with a point on the front), ``reproduced``
(methods with a reproduced row) or a comma-separated list of method names.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import pandas as pd

from benchmarking.pareto import pareto_front

GREY = "#b0b0b0"


def plottable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with status ok and finite positive fps and mIoU."""
    d = df.copy()
    d["fps"] = pd.to_numeric(d["fps"], errors="coerce")
    d["mIoU"] = pd.to_numeric(d["mIoU"], errors="coerce")
    ok = d["status"].fillna("ok").astype(str).eq("ok") if "status" in d else True
    return d[ok & d["fps"].gt(0) & d["mIoU"].notna()].reset_index(drop=True)


def interesting_methods(df: pd.DataFrame, interesting: str = "pareto") -> list[str]:
    """Methods to colour (see module docstring), in order of first appearance.

    Raises:
        ValueError: a listed method is not in the table (valid names listed).
    """
    methods = list(dict.fromkeys(df["method"].astype(str)))
    if interesting == "pareto":
        front = pareto_front(list(zip(df["fps"], df["mIoU"])))
        chosen = {str(df["method"].iloc[i]) for i in front}
    elif interesting == "reproduced":
        chosen = set(df.loc[df["source"].eq("reproduced"), "method"].astype(str))
    else:
        chosen = {m.strip() for m in str(interesting).split(",") if m.strip()}
        unknown = sorted(chosen - set(methods))
        if unknown:
            raise ValueError(f"interesting={interesting!r}: methods {unknown} not in the table; valid: {methods}")
    return [m for m in methods if m in chosen]


def plot_table(df: pd.DataFrame, out_stem: str | Path, title: str = "", interesting: str = "pareto") -> list[Path]:
    """Draw the fps-vs-mIoU plot of ``df`` (a ``tables/<dataset>/<res>.csv``) to ``<out_stem>.png`` and ``.svg``.

    Raises:
        ValueError: no row has both fps and mIoU (nothing to plot; the table is named in the message).
    """
    d = plottable(df)
    if d.empty:
        raise ValueError(
            f"nothing to plot for {title or out_stem}: no row with status ok, fps and mIoU "
            f"(run benchmark.py with evaluate=true, or add reported rows)"
        )
    chosen = interesting_methods(d, interesting)
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(chosen)}
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    for (method, source), g in d.groupby(["method", "source"], sort=False):
        g = g.sort_values("fps")
        c = colours.get(str(method), GREY)
        rep = source == "reported"
        label = f"{method} ({source})" if str(method) in colours else None
        ax.plot(
            g["fps"],
            g["mIoU"],
            "-",
            color=c,
            lw=1.2,
            alpha=0.9,
            zorder=2 if label else 1,
            marker="s" if rep else "o",
            mfc="none" if rep else c,
            mec=c,
            ms=7,
            label=label,
        )
        for _, r in g.iterrows():
            text = str(r["name"]) if rep else f"{r['name']} [{r.get('backend', '')}/{r.get('precision', '')}]"
            ax.annotate(
                text,
                (r["fps"], r["mIoU"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=6.5,
                color="black" if label else "#808080",
            )
    reported = d[d["source"].eq("reported")]
    for _, r in d[d["source"].eq("reproduced")].iterrows():
        match = reported[reported["name"].astype(str).str.lower() == str(r["name"]).lower()]
        for _, q in match.iterrows():
            ax.plot([r["fps"], q["fps"]], [r["mIoU"], q["mIoU"]], ":", color=colours.get(str(r["method"]), GREY), lw=1)
    # reported rows without a published fps: their mIoU is drawn at the fps of the reproduced row of that name
    nofps = df[
        df["source"].eq("reported")
        & pd.to_numeric(df["fps"], errors="coerce").isna()
        & pd.to_numeric(df["mIoU"], errors="coerce").notna()
    ]
    shown = False
    for _, r in d[d["source"].eq("reproduced")].iterrows():
        for _, q in nofps[nofps["name"].astype(str).str.lower() == str(r["name"]).lower()].iterrows():
            c = colours.get(str(r["method"]), GREY)
            ax.plot([r["fps"], r["fps"]], [r["mIoU"], float(q["mIoU"])], ":", color=c, lw=1)
            ax.plot(
                [r["fps"]],
                [float(q["mIoU"])],
                "x",
                color=c,
                ms=7,
                label=None if shown else "reported mIoU, no published fps",
            )
            shown = True
    front = d.iloc[pareto_front(list(zip(d["fps"], d["mIoU"])))].sort_values("fps")
    ax.step(
        front["fps"],
        front["mIoU"],
        where="post",
        ls="--",
        color="black",
        lw=0.8,
        alpha=0.6,
        label="Pareto front",
        zorder=0,
    )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("fps (img/s, batch 1, log scale)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths
