"""``benchmark.py aggregate``, ``plot``, ``compare`` and ``peak`` (dispatched before Hydra parses ``sys.argv``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from core.command_line import Key, KeyValueParser, Legacy
from core.errors import print_written

PLOT_KEYS = {"dataset": None, "resolution": None, "interesting": "pareto", "tables": "tables", "out": None}


def aggregate_parser() -> KeyValueParser:
    """The command line of ``benchmark.py aggregate`` (``key=value``; the older ``--root DIR`` ... spellings are
    accepted with one deprecation line)."""
    keys = (
        Key("root", "folder searched for */benchmark/*.json records (LOGDIR)", "path", default="logs", metavar="DIR"),
        Key(
            "tables",
            "output folder (tables/all.csv, tables/<dataset>/<res>.csv)",
            "path",
            default="tables",
            metavar="DIR",
        ),
        Key("reported", "reported model-zoo CSVs (default <tables>/reported)", "path", metavar="DIR"),
        Key("import_mmseg", "also read the installed MMSeg's metafiles", "bool", default=False, metavar="true"),
        Key("mmseg_configs", "an mmsegmentation configs/ folder (implies import_mmseg=true)", "path", metavar="DIR"),
    )
    legacy = [Legacy(f"--{k.name.replace('_', '-')}", k.name, nargs=0 if k.kind == "bool" else 1) for k in keys]
    return KeyValueParser(
        "benchmark.py aggregate",
        keys,
        usage="python benchmark.py aggregate [root=logs] [tables=tables] [import_mmseg=true]",
        description="Merge benchmark records and reported numbers into tables/*.csv.",
        legacy=legacy,
    )


def _aggregate(argv: list[str]) -> int:
    from benchmarking.aggregate import aggregate, import_mmseg

    a = aggregate_parser().parse(argv)
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


PLOT_HELP = """usage:
  python benchmark.py plot dataset=<name> resolution=<WxH> [interesting=pareto|reproduced|A,B] [tables=tables]
                           [out=DIR]

fps (log x) vs mIoU plot of tables/<dataset>/<resolution>.csv (written by `benchmark.py aggregate`) into
<out or tables/plots>/<dataset>_<resolution>.png/.svg."""


def subcommand_help(name: str) -> str:
    """The ``--help`` text of ``benchmark.py plot``, ``peak`` or ``export``: their synopsis and keys (the module
    docstring of :mod:`benchmarking.peak` / :mod:`benchmarking.export`).

    Raises:
        KeyError: another name.
    """
    import importlib

    if name == "plot":
        return PLOT_HELP
    module = {"peak": "benchmarking.peak", "export": "benchmarking.export"}[name]
    return importlib.import_module(module).__doc__.strip()


def run_subcommand(name: str, argv: list[str]) -> int:
    """Run ``aggregate``, ``plot``, ``compare`` or ``peak`` with the remaining arguments; returns the exit code."""
    from benchmarking.compare import main as _compare

    return {"aggregate": _aggregate, "plot": _plot, "compare": _compare, "peak": _peak}[name](argv)
