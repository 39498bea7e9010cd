"""Results records: every figure the README and the docs quote, as data under ``results/<name>.yaml``.

Modelled on MMSegmentation's model-zoo metafiles: one YAML file per published table, holding the values and
how they were measured, so that a table in the docs is a rendering (``python benchmark.py render``,
:mod:`report.render`) and never a hand copy. A record::

    name: camvid_lite0_archs                 # = the file's stem; the docs mark the table <!-- results:<name> -->
    caption: Three smp architectures ...     # what the table shows (hardware is added from `measured`)
    measured:                                # how, once for the whole table (rows may override all but hardware)
      date: 2026-12-04                       # when (ISO date or date range)
      commit: 63e9060                        # the code measured (git commit; "+dirty" when uncommitted changes)
      hardware: AMD EPYC [avx2 avx512_bf16 avx512_vnni avx512f], 2 cores   # the profile, stated once
      threads: 2
      torch: 2.14.1
      load: idle                             # machine load while measuring (1-min load average or words)
      commands: [python main.py ..., python benchmark.py compare ...]
    columns:                                 # the table, left to right
      - {key: config, header: configuration}
      - {key: mIoU_mean, header: test mIoU, format: ".2f", best: max}   # best: max|min puts the best in bold
    rows:
      - {config: model.arch=Unet, mIoU_mean: 52.1, ...}
    claims:                                  # sentences rendered only where ONE row shows every condition
      - text: "OpenVINO int8 is {speedup:.2f}x eager fp32 within {delta_mIoU:+.2f} mIoU points."
        when: [[speedup, ">=", 4.0], [abs_delta_mIoU, "<=", 0.5]]
        otherwise: "No backend is 4x eager fp32 within 0.5 mIoU points on this CPU."

Loading validates the structure and names the file and key of anything wrong in one line
(:class:`ResultsError`).
"""

from __future__ import annotations

import datetime as _dt
import math
import operator
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: ``measured`` keys every record states (rows may override all but ``hardware``)
PROVENANCE = ("date", "commit", "hardware", "threads", "torch", "load", "commands")
#: comparison operators a claim's ``when`` may use
OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


class ResultsError(ValueError):
    """A results record that cannot be used; the message names the file and the key."""


@dataclass
class Column:
    """One table column: the row ``key`` shown under ``header``, formatted with ``format`` (a format spec such as
    ``".2f"``; strings as they are), the ``best`` value (``max``/``min``) in bold."""

    key: str
    header: str
    format: str = ""
    best: str = ""


@dataclass
class Claim:
    """A sentence rendered only where one row meets every ``(key, op, value)`` of ``when``; else ``otherwise``.

    ``text`` is a ``str.format`` template over that row's keys (plus ``abs_<key>`` for numbers).
    """

    text: str
    when: list[tuple[str, str, float]]
    otherwise: str = ""


@dataclass
class ResultsRecord:
    """A parsed ``results/<name>.yaml`` (module docstring)."""

    name: str
    caption: str
    measured: dict
    columns: list[Column]
    rows: list[dict]
    claims: list[Claim] = field(default_factory=list)
    notes: str = ""
    path: Path | None = None

    def to_yaml(self) -> str:
        """The record as YAML (the inverse of :func:`load_record`)."""
        d = {
            "name": self.name,
            "caption": self.caption,
            "measured": self.measured,
            "columns": [{k: v for k, v in vars(c).items() if v} for c in self.columns],
            "rows": self.rows,
        }
        if self.claims:
            d["claims"] = [
                {
                    "text": c.text,
                    "when": [list(w) for w in c.when],
                    **({"otherwise": c.otherwise} if c.otherwise else {}),
                }
                for c in self.claims
            ]
        if self.notes:
            d["notes"] = self.notes
        return yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=120)


def _require(cond: bool, path, message: str) -> None:
    if not cond:
        raise ResultsError(f"{path}: {message}")


def parse_record(d, path: str | Path = "<record>") -> ResultsRecord:
    """Validate a record's dict (as read from YAML) and build a :class:`ResultsRecord`.

    Raises:
        ResultsError: a missing or malformed key, named with the file, e.g. ``results/x.yaml: rows[2]: no value
            for column 'fps'``.
    """
    _require(isinstance(d, dict), path, "is not a mapping")
    for key in ("name", "caption", "measured", "columns", "rows"):
        _require(key in d, path, f"missing key {key!r}")
    _require(
        re.fullmatch(r"[A-Za-z0-9_.-]+", str(d["name"])) is not None, path, f"name {d['name']!r} is not [A-Za-z0-9_.-]+"
    )
    if isinstance(path, Path) and path.suffix in (".yaml", ".yml"):
        _require(path.stem == d["name"], path, f"name {d['name']!r} differs from the file name {path.stem!r}")
    measured = d["measured"]
    _require(isinstance(measured, dict), path, "measured is not a mapping")
    for key in PROVENANCE:
        _require(measured.get(key) not in (None, "", []), path, f"measured.{key} is missing (every record states it)")
    _require(isinstance(measured["commands"], list), path, "measured.commands is not a list of command lines")
    columns = []
    for i, c in enumerate(d["columns"] or []):
        _require(isinstance(c, dict) and "key" in c, path, f"columns[{i}] needs a key")
        unknown = set(c) - {"key", "header", "format", "best"}
        _require(not unknown, path, f"columns[{i}] has unknown keys {sorted(unknown)}")
        _require(c.get("best", "") in ("", "max", "min"), path, f"columns[{i}].best must be max or min")
        columns.append(
            Column(str(c["key"]), str(c.get("header", c["key"])), str(c.get("format", "")), c.get("best", ""))
        )
    _require(bool(columns), path, "columns is empty")
    rows = d["rows"]
    _require(isinstance(rows, list) and rows, path, "rows is empty")
    for i, r in enumerate(rows):
        _require(isinstance(r, dict), path, f"rows[{i}] is not a mapping")
        _require("hardware" not in r, path, f"rows[{i}] sets hardware: a table has one hardware profile")
        for c in columns:
            _require(c.key in r, path, f"rows[{i}]: no value for column {c.key!r}")
    claims = []
    for i, c in enumerate(d.get("claims") or []):
        _require(isinstance(c, dict) and "text" in c and "when" in c, path, f"claims[{i}] needs text and when")
        when = []
        for w in c["when"]:
            ok = isinstance(w, list | tuple) and len(w) == 3 and w[1] in OPS
            _require(ok, path, f"claims[{i}].when entry {w!r} is not [key, op, value] with op in {list(OPS)}")
            key = str(w[0])
            known = any(key in r or (key.startswith("abs_") and key[4:] in r) for r in rows)
            _require(
                known, path, f"claims[{i}].when: no row has the key {key!r} (keys: {sorted(rows[0]) if rows else []})"
            )
            when.append((key, str(w[1]), w[2]))
        claims.append(Claim(str(c["text"]), when, str(c.get("otherwise", ""))))
    return ResultsRecord(
        name=str(d["name"]),
        caption=str(d["caption"]).strip(),
        measured=measured,
        columns=columns,
        rows=rows,
        claims=claims,
        notes=str(d.get("notes", "")).strip(),
        path=Path(path) if not isinstance(path, Path) else path,
    )


def load_record(path: str | Path) -> ResultsRecord:
    """Read and validate ``results/<name>.yaml``.

    Raises:
        ResultsError: unreadable YAML or a malformed record (file and key named).
    """
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ResultsError(f"{path}: cannot read ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    return parse_record(d, path)


def load_records(folder: str | Path) -> dict[str, ResultsRecord]:
    """Every ``*.yaml`` record in ``folder`` by name.

    Raises:
        ResultsError: a malformed record.
    """
    return {r.name: r for r in (load_record(p) for p in sorted(Path(folder).glob("*.yaml")))}


def today() -> str:
    """Today's date (ISO) for ``measured.date``."""
    return _dt.date.today().isoformat()


def distinct(values) -> str:
    """The different non-empty values of ``values``, in first-seen order, joined by ``", "`` (one ``measured``
    entry for several measurements, e.g. their commits)."""
    return ", ".join(dict.fromkeys(str(v) for v in values if v not in (None, "")))


def one_or_all(values):
    """The value when all non-empty ``values`` agree (keeps its type: ``2`` reads "2 threads"), else
    :func:`distinct`."""
    found = {v for v in values if v not in (None, "")}
    return found.pop() if len(found) == 1 else distinct(values)


def clean_value(v):
    """A table value as YAML can hold it: NaN becomes None, floats are rounded to 4 decimals, numpy scalars become
    Python numbers."""
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 4)
    return v.item() if hasattr(v, "item") else v


def date_range(stamps) -> str:
    """``measured.date`` of ISO timestamps (or dates): ``2026-12-03``, or ``2026-12-03 .. 2026-12-04`` when they
    span days; empty without any."""
    dates = sorted(str(s)[:10] for s in stamps if s)
    if not dates:
        return ""
    return dates[0] if dates[0] == dates[-1] else f"{dates[0]} .. {dates[-1]}"


def publish(record: ResultsRecord, path: str | Path, prog: str) -> int:
    """Write ``record`` (:func:`write_results`) and print ``record: <path>``; on failure print one line
    ``<prog>: error: record=<path>: <why>`` on stderr and leave an existing file as it was.

    Returns:
        0 when written, 2 when not.
    """
    try:
        print(f"record: {write_results(record, path)}")
    except (ResultsError, OSError) as e:
        print(f"{prog}: error: record={path}: {e}", file=sys.stderr)
        return 2
    return 0


def write_results(record: ResultsRecord, path: str | Path) -> Path:
    """Write ``record`` to ``path`` atomically (:func:`core.records.atomic_write_text`): an existing file is
    replaced only by a complete record that :func:`parse_record` accepted, never by a partial one.

    Raises:
        ResultsError: the record does not parse back (nothing is written).
    """
    from core.records import atomic_write_text

    text = record.to_yaml()
    parse_record(yaml.safe_load(text), Path(path))
    return atomic_write_text(path, text)
