"""Clean mIoU, robustness (mPC, rPC) and calibration (ECE before/after temperature scaling) of several models, from
the validation folders written by ``validation.py ... corruptions=...``, as one results record.

    python scripts/robustness_table.py record=results/<name>.yaml folder='<model label>=<validation folder>'
                                       [folder='<model label>=<validation folder>' ...] [caption='...']
                                       [command='<command>' ...] [commit=<sha>]

Each folder is one ``validation.py split=<split> corruptions=...`` output (``metrics.json`` + ``robustness.json``,
:mod:`inference.robustness`); its ``temperature`` is the one the model was loaded with (``validation.py
fit_temperature=true`` on the val split, :mod:`inference.temperature`), so ``ECE`` is the model's own probabilities and
``ECE_scaled`` the same pixels after dividing the logits by ``T``. ``measured`` (hardware, threads, load, dates,
commit) comes from the folders; the commands are the ``command=`` values and this command line. Figures are
percentages (mIoU, mPC, rPC, ECE); seconds are the wall time of the whole corrupted evaluation.

``folder=`` and ``command=`` may be given several times (one table row, one command each, in order) and, like
``caption=``, take any text as one shell argument. The older spellings (``--record X``, ``--caption X``,
``--command X``, ``--commit X`` and ``"<model label>=<validation folder>"`` as positional arguments) still work with
one deprecation line on stderr.
"""

from __future__ import annotations

import datetime
import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.command_line import Key, KeyValueParser, Legacy
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


KEYS = (
    Key(
        "folder",
        "one row: a validation folder and its label (repeatable)",
        "texts",
        metavar="'<label>=<folder>'",
        required=True,
    ),
    Key("record", "the results record to write", "path", metavar="results/<name>.yaml", required=True),
    Key("caption", "the record's caption", "text", default="", metavar="TEXT"),
    Key("commit", "the code's commit where the folders do not record it", default="", metavar="<sha>"),
    Key("command", "a command that produced the folders (repeatable)", "texts", default=(), metavar="CMD"),
)
LEGACY = tuple(Legacy(f"--{k}", k) for k in ("record", "caption", "commit", "command"))


def _older_folder_argument(arg: str) -> bool:
    """``<label>=<existing folder>`` (a label that is no key): a positional argument of the older spelling."""
    return Path(arg.partition("=")[2]).is_dir()


def build_parser() -> KeyValueParser:
    """The command line of robustness_table.py: :data:`KEYS`, the older ``--flag`` spellings :data:`LEGACY` and
    ``<label>=<folder>`` as positional arguments."""
    parts = __doc__.split("\n\n")
    return KeyValueParser(
        "robustness_table.py",
        KEYS,
        usage=parts[1],
        description="\n\n".join(parts[:1] + parts[2:]),
        legacy=LEGACY,
        positional="folder",
        positional_too=_older_folder_argument,
    )


def main(argv=None) -> int:
    """Write the record; returns 0 (errors end in one line through the parser, exit 2)."""
    p = build_parser()
    a = p.parse(argv)
    rows, provs = [], []
    for spec in a.folder:
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
