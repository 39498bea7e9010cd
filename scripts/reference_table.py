"""segbench's CPU measurements of published models beside their published rows (tables/reported/), as one table.

    python scripts/reference_table.py member='<reported name>=<folder>' [member=...] [dataset=ade20k]
                                      [record=results/<name>.yaml] [caption='...'] [command='<command>' ...]

Each ``member=`` pairs a row of ``tables/reported/*.csv`` (its ``name`` column, on ``dataset=``; the 512x512 row
where a model has several) with a folder of ``benchmark.py ... LOGDIR=<folder>`` records (the newest one is taken;
``scripts/reference_sweep.sh`` writes one folder per model). Columns: params (M), GFLOPs (1 MAC = 2 FLOPs, segbench's
counter), fps, latency p50 (ms) and peak memory (MiB) as measured, then the published mIoU, fps, GPU and
resolution. A failed member is a row with its one-line error and makes the exit code 1; ``record=`` also writes the
table as a results record (:mod:`core.results`, rendered by ``benchmark.py render``); a command that cannot write it
leaves an earlier file as it was and exits 2.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarking.deploy_table import measured_of, precision_cell
from core.command_line import Key, KeyValueParser
from core.records import load_records
from core.results import Column, ResultsRecord, publish
from report.render import render_table

REPO = Path(__file__).resolve().parents[1]
COLUMNS = [
    Column("model", "model"),
    Column("precision", "precision"),
    Column("params_M", "params (M)", ".2f"),
    Column("GFLOPs", "GFLOPs 512x512", ".1f"),
    Column("fps", "CPU fps", ".3f", "max"),
    Column("p50_ms", "latency p50 (ms)", "d"),
    Column("peak_MiB", "peak memory (MiB)", "d"),
    Column("reported_mIoU", "published mIoU", ".2f"),
    Column("reported_fps", "published fps"),
    Column("reported_setting", "published on"),
]
KEYS = (
    Key(
        "member",
        "one row: a reported model name and its benchmark folder (repeatable)",
        "texts",
        metavar="'<name>=<folder>'",
        required=True,
    ),
    Key("dataset", "dataset of the published rows", default="ade20k", metavar="ade20k"),
    Key("reported", "folder of the published rows", "path", default=str(REPO / "tables" / "reported"), metavar="DIR"),
    Key("record", "also write the table as a results record", "path", metavar="results/<name>.yaml"),
    Key("caption", "the record's caption", "text", default="", metavar="TEXT"),
    Key("command", "a command that produced the folders (repeatable)", "texts", default=(), metavar="CMD"),
)


def build_parser() -> KeyValueParser:
    """The ``key=value`` command line of reference_table.py."""
    parts = __doc__.split("\n\n")
    return KeyValueParser("reference_table.py", KEYS, usage=parts[1], description="\n\n".join(parts[:1] + parts[2:]))


def reported_row(table: pd.DataFrame, name: str, dataset: str) -> dict:
    """The published row of ``name`` on ``dataset`` (the 512x512 one where there are several).

    Raises:
        KeyError: no such row (the names published on ``dataset`` listed).
    """
    rows = table[(table["name"] == name) & (table["dataset"] == dataset)]
    if rows.empty:
        names = sorted(table.loc[table["dataset"] == dataset, "name"].unique())
        raise KeyError(f"no published row {name!r} on {dataset}; published: {names}")
    at_512 = rows[rows["resolution"] == "512x512"]
    return (at_512 if not at_512.empty else rows).iloc[0].to_dict()


def table_row(name: str, rec, published: dict) -> dict:
    """One row: the record's measurements (or its error) beside the published figures."""
    fps, hardware = published.get("fps"), published.get("hardware")
    row = {
        "model": name,
        "precision": f"{rec.backend} {precision_cell(rec)}",
        "reported_mIoU": published.get("mIoU"),
        "reported_fps": "" if pd.isna(fps) else f"{fps:g}",
        "reported_setting": f"{'hardware not stated' if pd.isna(hardware) else hardware}, {published.get('resolution')}",
    }
    if rec.status != "ok":
        return row | dict.fromkeys(("params_M", "GFLOPs", "p50_ms", "peak_MiB")) | {"fps": f"failed: {rec.error}"}
    return row | {
        "params_M": rec.params / 1e6,
        "GFLOPs": rec.gflops,
        "fps": rec.fps,
        "p50_ms": round(rec.latency_ms_p50),
        "peak_MiB": round(rec.memory_peak_mib),
    }


def main(argv=None) -> int:
    """Print the table (and write the record); returns 1 when a member failed, 2 when the record cannot be written."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = build_parser()
    a = p.parse(argv)
    table = pd.concat([pd.read_csv(f) for f in sorted(Path(a.reported).glob("*.csv"))], ignore_index=True)
    rows, recs = [], []
    for spec in a.member:
        name, sep, folder = spec.rpartition("=")
        found = sorted(load_records(folder), key=lambda pr: pr[1].timestamp) if sep else []
        if not found:
            p.error(f"member={spec}: expected '<reported name>=<folder>' with benchmark records below the folder")
        try:
            published = reported_row(table, name, a.dataset)
        except KeyError as e:
            p.error(f"member={spec}: {e.args[0]}")
        recs.append(found[-1][1])
        rows.append(table_row(name, recs[-1], published))
    commands = [*a.command, "python scripts/reference_table.py " + shlex.join(argv)]
    name = Path(a.record).stem if a.record else "reference_table"
    record = ResultsRecord(
        name=name, caption=a.caption, measured=measured_of(recs, commands), columns=COLUMNS, rows=rows
    )
    print(render_table(record))  # as the docs render it
    failed = sum(r.status != "ok" for r in recs)
    if a.record is not None and publish(record, a.record, "reference_table.py"):
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
