"""``benchmark.py aggregate``, ``plot``, ``compare`` and ``peak`` (dispatched before Hydra parses ``sys.argv``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from core.errors import OneLineArgumentParser, print_written

PLOT_KEYS = {"dataset": None, "resolution": None, "interesting": "pareto", "tables": "tables", "out": None}


def aggregate_parser() -> OneLineArgumentParser:
    """The command line of ``benchmark.py aggregate``."""
    p = OneLineArgumentParser(
        prog="benchmark.py aggregate", description="Merge benchmark records and reported numbers into tables/*.csv"
    )
    p.add_argument("--root", default="logs", help="folder searched for */benchmark/*.json records (LOGDIR)")
    p.add_argument("--tables", default="tables", help="output folder (tables/all.csv, tables/<dataset>/<res>.csv)")
    p.add_argument("--reported", default=None, help="reported model-zoo CSVs (default <tables>/reported)")
    p.add_argument("--import-mmseg", action="store_true", help="also read the installed MMSeg's metafiles")
    p.add_argument("--mmseg-configs", default=None, help="an mmsegmentation configs/ folder (implies --import-mmseg)")
    return p


def _aggregate(argv: list[str]) -> int:
    from benchmarking.aggregate import aggregate, import_mmseg

    p = aggregate_parser()
    a = p.parse_args(argv)
    mmseg = import_mmseg(a.mmseg_configs) if (a.import_mmseg or a.mmseg_configs) else None
    for path in aggregate(a.root, a.tables, a.reported, mmseg):
        print(path)
    return 0


def _plot(argv: list[str]) -> int:
    import pandas as pd

    from benchmarking.plot import plot_table

    opts = dict(PLOT_KEYS)
    for arg in argv:
        key, sep, value = arg.lstrip("-").partition("=")
        if not sep or key not in opts:
            print(f"benchmark.py plot: bad argument {arg!r}; use key=value with key in {sorted(opts)}", file=sys.stderr)
            return 2
        opts[key] = value
    if not opts["dataset"] or not opts["resolution"]:
        print("benchmark.py plot: dataset=<name> and resolution=<WxH> are required", file=sys.stderr)
        return 2
    tables = Path(opts["tables"])
    res = re.sub(r"[^A-Za-z0-9_.x-]+", "_", opts["resolution"])
    src = tables / opts["dataset"] / f"{res}.csv"
    if not src.is_file():
        have = sorted(str(q.relative_to(tables)) for q in tables.glob("*/*.csv") if q.parent.name != "reported")
        print(
            f"benchmark.py plot: no table {src} (run `python benchmark.py aggregate` first); tables: {have}",
            file=sys.stderr,
        )
        return 2
    out = Path(opts["out"] or tables / "plots") / f"{opts['dataset']}_{res}"
    title = f"{opts['dataset']} @ {opts['resolution']}"
    return print_written(
        "benchmark.py plot",
        lambda: plot_table(pd.read_csv(src), out, title=title, interesting=opts["interesting"]),
        error_status=2,
    )


def _peak(argv: list[str]) -> int:
    from benchmarking.peak import run_peak

    return run_peak(argv)


def run_subcommand(name: str, argv: list[str]) -> int:
    """Run ``aggregate``, ``plot``, ``compare`` or ``peak`` with the remaining arguments; returns the exit code."""
    from benchmarking.compare import main as _compare

    return {"aggregate": _aggregate, "plot": _plot, "compare": _compare, "peak": _peak}[name](argv)
