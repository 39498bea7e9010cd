"""Clean mIoU, robustness (mPC, rPC) and calibration (ECE before/after temperature scaling) of several models, from
the validation folders written by ``validation.py ... corruptions=...``, as one results record.

    python scripts/robustness_table.py --record results/<name>.yaml [--caption "..."] [--command "..."] \
        "<model label>=<validation folder>" ["<model label>=<validation folder>" ...]

Each folder is one ``validation.py split=<split> corruptions=...`` output (``metrics.json`` + ``robustness.json``,
:mod:`inference.robustness`); its ``temperature`` is the one the model was loaded with (``validation.py
fit_temperature=true`` on the val split, :mod:`inference.temperature`), so ``ECE`` is the model's own probabilities and
``ECE_scaled`` the same pixels after dividing the logits by ``T``. ``measured`` (hardware, threads, load, dates,
commit) comes from the folders; the commands are the ``--command`` lines and this command line. Figures are
percentages (mIoU, mPC, rPC, ECE); seconds are the wall time of the whole corrupted evaluation.
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import OneLineArgumentParser
from core.results import Column, ResultsRecord, date_range, distinct, one_or_all, write_results

COLUMNS = [
    Column("model", "model"),
    Column("split", "split"),
    Column("mIoU", "clean mIoU", ".2f", "max"),
    Column("mPC", "mPC", ".2f", "max"),
    Column("rPC", "rPC %", ".1f", "max"),
    Column("ECE", "ECE %", ".2f", "min"),
    Column("temperature", "T", ".3f"),
    Column("ECE_scaled", "ECE % after T", ".2f", "min"),
    Column("grid", "corruptions x severities"),
    Column("minutes", "wall min", ".1f"),
]


def evaluation_date(folder: Path) -> str:
    """YYYY-MM-DD of a validation folder: its timestamped name (``<run>/validation/<stamp>``), else (``out=DIR``) the
    day ``robustness.json`` was written."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", folder.name[:10]):
        return folder.name[:10]
    return datetime.date.fromtimestamp((folder / "robustness.json").stat().st_mtime).isoformat()


def row_of(label: str, folder: Path) -> tuple[dict, dict]:
    """(table row, provenance) of one validation folder.

    Raises:
        FileNotFoundError: ``metrics.json`` or ``robustness.json`` missing (the folder is named).
    """
    for name in ("metrics.json", "robustness.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: give a validation.py ... corruptions=... folder")
    m = json.loads((folder / "metrics.json").read_text())
    r = json.loads((folder / "robustness.json").read_text())
    pct = lambda v: None if v is None else round(100 * float(v), 2)
    row = {
        "model": label,
        "split": m.get("split"),
        "mIoU": pct(m["mIoU"]),
        "mPC": pct(m["mPC"]),
        "rPC": pct(m["rPC"]),
        "ECE": pct(m.get("ECE")),
        "temperature": None if m.get("temperature") is None else round(float(m["temperature"]), 4),
        "ECE_scaled": pct(m.get("ECE_scaled")),
        "grid": f"{len(r['corruptions'])} x {len(r['severities'])} ({', '.join(r['corruptions'])}; "
        f"severities {', '.join(map(str, r['severities']))}; seed {r.get('seed', 0)})",
        "minutes": round(float(r.get("seconds_total", 0)) / 60, 1),
        "num_images": m.get("num_images"),
    }
    prov = {
        "hardware": r.get("cpu"),
        "threads": r.get("threads"),
        "load": r.get("load_1min"),
        "date": evaluation_date(folder),
        "commit": (m.get("git") or r.get("git") or {}).get("commit", "")[:7] or None,
        "torch": r.get("torch"),
    }
    return row, prov


def main(argv=None) -> int:
    """Write the record; returns 0 (errors end in one line through the parser, exit 2)."""
    p = OneLineArgumentParser(prog="robustness_table.py", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", help='"<model label>=<validation folder>"')
    p.add_argument("--record", required=True, help="results/<name>.yaml")
    p.add_argument("--caption", default="")
    p.add_argument("--commit", default="", help="the code's commit where the folders do not record it")
    p.add_argument("--command", action="append", default=[], help="a command that produced the folders")
    a = p.parse_args(argv)
    rows, provs = [], []
    for spec in a.folders:
        label, sep, folder = spec.partition("=")
        if not sep:
            p.error(f"{spec!r}: expected <model label>=<validation folder>")
        try:
            row, prov = row_of(label, Path(folder))
        except (OSError, KeyError, ValueError) as e:
            p.error(f"{folder}: {e}")
        rows.append(row)
        provs.append(prov)
    import torch

    loads = [pr["load"] for pr in provs if pr["load"] is not None]
    measured = {
        "date": date_range(pr["date"] for pr in provs),
        "commit": distinct(pr["commit"] for pr in provs) or a.commit or "not recorded by the validation folders",
        "hardware": distinct(pr["hardware"] for pr in provs),
        "threads": one_or_all([pr["threads"] for pr in provs]),
        "torch": distinct(pr["torch"] for pr in provs) or torch.__version__,
        "load": f"1-min load average {min(loads):.1f} .. {max(loads):.1f} at the starts" if loads else "not recorded",
        "commands": [*a.command, "python scripts/robustness_table.py " + shlex.join(argv or sys.argv[1:])],
    }
    name = Path(a.record).stem
    record = ResultsRecord(name=name, caption=a.caption, measured=measured, columns=COLUMNS, rows=rows)
    print(write_results(record, a.record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
