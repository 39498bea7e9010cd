"""Markdown table of a deployment sweep (scripts/deploy_sweep.sh) from its benchmark records.

    python scripts/deploy_table.py [--since 2026-01-01T12:00:00] [--peaks DIR] [--peak bf16=0.4] ROOT [ROOT ...]
    python scripts/deploy_table.py --since ... --record results/<name>.yaml --caption "..." --command "..." ROOT

What the columns mean, how rows are grouped and what ``--record`` writes: :mod:`benchmarking.deploy_table`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarking.deploy_table import OwnPeak, build_results, table_rows, table_text
from benchmarking.peak_store import PEAK_PRECISIONS, default_peaks_dir
from core.records import load_records
from core.results import ResultsError, write_results


def peak_overrides(values: list[str], every: float | None = None) -> dict[str | None, float]:
    """``--peak PRECISION=TFLOPS`` values as ``{precision: TFLOP/s}`` (precision as :func:`peak_precision` names
    it), with ``every`` (``--peak-tflops``) under the key None for the precisions not named.

    Raises:
        SystemExit: a value that is not ``fp32|bf16|int8=<positive number>`` (one line, exit 2).
    """
    out: dict[str | None, float] = {} if every is None else {None: every}
    for v in values:
        name, _, number = v.partition("=")
        try:
            peak = float(number)
        except ValueError:
            peak = -1.0
        if name not in PEAK_PRECISIONS or peak <= 0:
            sys.exit(
                f"deploy_table.py: error: --peak {v}: use PRECISION=TFLOPS with PRECISION in {list(PEAK_PRECISIONS)}"
            )
        out[name] = peak
    return out


def main(argv=None) -> int:
    """Print the table of the records below the roots (and with ``--record`` write it as a results record);
    returns 1 when a record failed, 2 when the results record cannot be written, else 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("roots", nargs="+")
    p.add_argument("--since", default="", help="only records with timestamp >= this (ISO, seconds)")
    p.add_argument(
        "--seeded",
        default="",
        help="records from this time on build random weights from `seed` (same model in every process); before it, "
        "ΔmIoU of a torch backend with random weights is left empty (other weights than its eager row)",
    )
    p.add_argument("--peaks", default=None, help="folder of `benchmark.py peak` files (default LOGDIR/benchmark/peaks)")
    p.add_argument(
        "--peak", action="append", default=[], help="PRECISION=TFLOPS: this peak instead of the stored one (repeatable)"
    )
    p.add_argument("--peak-tflops", type=float, default=None, help="one peak in TFLOP/s for every precision")
    p.add_argument("--record", default=None, help="also write the table as a results record, e.g. results/<name>.yaml")
    p.add_argument("--caption", default="", help="the record's caption (what the columns mean is added)")
    p.add_argument(
        "--command",
        action="append",
        default=[],
        help="a command the record lists before this one, e.g. the sweep's (repeatable)",
    )
    a = p.parse_args(argv)
    if a.record is not None and Path(a.record).suffix not in (".yaml", ".yml"):
        p.error(f"--record {a.record}: a results record is a .yaml file, e.g. results/<name>.yaml")
    own_peak = OwnPeak(a.peaks or default_peaks_dir(), peak_overrides(a.peak, a.peak_tflops))
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
            print(f"record: {write_results(results, a.record)}")
        except (ResultsError, OSError) as e:
            print(f"deploy_table.py: error: --record {a.record}: {e}", file=sys.stderr)
            return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
