"""Markdown table of a deployment sweep (scripts/deploy_sweep.sh) from its benchmark records.

    python scripts/deploy_table.py roots=[logs/deploy_sweep,<run folder>] [since=2026-01-01T12:00:00] [peaks=DIR]
                                   [peak.bf16=0.4] [peak.int8=0.9] [peak_tflops=0.16]
    python scripts/deploy_table.py roots=[<sweep folder>] since=<sweep start> record=results/<name>.yaml
                                   caption='...' command='<the sweep command>' command='<another command>'

What the columns mean, how rows are grouped and what ``record=`` writes: :mod:`benchmarking.deploy_table`.
Values are read with Hydra's override grammar: a root holding ``=`` or ``,`` is quoted inside the list
(``roots=['logs/a=1,b=2']``); ``caption=`` and ``command=`` take any text as one shell argument, and ``command=`` may
be given several times (one command each, in order). ``peak.<precision>=TFLOPS`` (precision fp32, bf16 or int8)
replaces the stored peak of that precision; ``peak_tflops=`` is one peak for the precisions not named.

The older spellings (``--since X``, ``--peak int8=0.9``, ``--record X``, ``--command X`` ... and the roots as
positional arguments) still work with one deprecation line on stderr.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarking.deploy_table import OwnPeak, build_results, table_rows, table_text
from benchmarking.peak_store import PEAK_PRECISIONS, default_peaks_dir
from core.command_line import Key, KeyValueParser, Legacy
from core.records import load_records
from core.results import ResultsError, publish

KEYS = (
    Key("roots", "folders searched for */benchmark/*.json records", "list", metavar="[DIR,...]", required=True),
    Key("since", "only records with timestamp >= this (ISO, seconds)", default="", metavar="<ISO time>"),
    Key(
        "seeded",
        "records from this time on build random weights from `seed` (same model in every process); before it, "
        "ΔmIoU of a torch backend with random weights is left empty (other weights than its eager row)",
        default="",
        metavar="<ISO time>",
    ),
    Key("peaks", "folder of `benchmark.py peak` files (default LOGDIR/benchmark/peaks)", "path", metavar="DIR"),
    Key("peak.fp32", "this fp32 peak instead of the stored one", "float", metavar="TFLOPS"),
    Key("peak.bf16", "this bf16 peak instead of the stored one", "float", metavar="TFLOPS"),
    Key("peak.int8", "this int8 peak (TOPS) instead of the stored one", "float", metavar="TFLOPS"),
    Key("peak_tflops", "one peak in TFLOP/s for every precision not named by peak.<precision>", "float"),
    Key("record", "also write the table as a results record", "path", metavar="results/<name>.yaml"),
    Key("caption", "the record's caption (what the columns mean is added)", "text", default="", metavar="TEXT"),
    Key("command", "a command the record lists before this one (repeatable)", "texts", default=(), metavar="CMD"),
)
LEGACY = (
    Legacy("--since", "since"),
    Legacy("--seeded", "seeded"),
    Legacy("--peaks", "peaks"),
    Legacy(
        "--peak",
        lambda v: f"peak.{v.partition('=')[0]}",
        use="peak.<precision>=TFLOPS",
        value=lambda v: v.partition("=")[2],
    ),
    Legacy("--peak-tflops", "peak_tflops"),
    Legacy("--record", "record"),
    Legacy("--caption", "caption"),
    Legacy("--command", "command"),
)


def build_parser() -> KeyValueParser:
    """The command line of deploy_table.py: :data:`KEYS`, the older ``--flag`` spellings :data:`LEGACY` and the
    roots as positional arguments (existing folders)."""
    parts = __doc__.split("\n\n")
    return KeyValueParser(
        "deploy_table.py",
        KEYS,
        usage=parts[1],
        description="\n\n".join(parts[:1] + parts[2:]),
        legacy=LEGACY,
        positional="roots",
        literal=os.path.exists,
    )


def peak_overrides(args) -> dict[str | None, float]:
    """The ``peak.<precision>=`` values of parsed ``args`` as ``{precision: TFLOP/s}``, with ``peak_tflops`` under
    the key None for the precisions not named.

    Raises:
        ValueError: a peak that is not a positive number (one line).
    """
    given = {None: args.peak_tflops} | {p: getattr(args, f"peak.{p}") for p in PEAK_PRECISIONS}
    bad = [f"{'peak_tflops' if p is None else 'peak.' + p}={v}" for p, v in given.items() if v is not None and v <= 0]
    if bad:
        raise ValueError(f"{', '.join(bad)}: a peak is a positive number of TFLOP/s")
    return {p: v for p, v in given.items() if v is not None}


def main(argv=None) -> int:
    """Print the table of the records below the roots (and with ``record=`` write it as a results record);
    returns 1 when a record failed, 2 when the results record cannot be written, else 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = build_parser()
    a = p.parse(argv)
    if a.record is not None and Path(a.record).suffix not in (".yaml", ".yml"):
        p.error(f"record={a.record}: a results record is a .yaml file, e.g. results/<name>.yaml")
    try:
        own_peak = OwnPeak(a.peaks or default_peaks_dir(), peak_overrides(a))
    except ValueError as e:
        p.error(str(e))
    recs = sorted(
        (r for root in a.roots for _, r in load_records(root) if r.timestamp >= a.since), key=lambda r: r.timestamp
    )
    rows, lines = table_rows(recs, a.seeded, own_peak)
    print(table_text(rows, lines, own_peak))
    failed = [r for r in recs if r.status != "ok"]
    if failed:
        print(f"{len(failed)} of {len(recs)} records failed", file=sys.stderr)
    if a.record is not None:
        commands = [*a.command, "python scripts/deploy_table.py " + shlex.join(argv)]
        try:
            results = build_results(Path(a.record).stem, recs, rows, lines, own_peak, commands, a.caption)
        except ResultsError as e:
            print(f"deploy_table.py: error: record={a.record}: {e}", file=sys.stderr)
            return 2
        if publish(results, a.record, "deploy_table.py"):
            return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
