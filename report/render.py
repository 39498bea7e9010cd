"""Render the README's and the docs' result tables from ``results/*.yaml`` (``python benchmark.py render``).

A Markdown file marks a table's place with ``<!-- results:<name> -->`` ... ``<!-- /results:<name> -->``
(``<!-- results:<name> table -->`` leaves the commands out, for a table whose commands stand beside it;
``<!-- results:<name> claims -->`` shows only the record's claims and how they were measured); everything
between the two markers is the rendering of ``results/<name>.yaml`` (:mod:`core.results`): the table, one caption
paragraph that states the hardware profile, threads, torch version, load, date and commit once, the claims that
one row shows (:class:`core.results.Claim`), and the commands. ``--check`` rewrites nothing and exits 1 naming
every block that differs from its rendering (the drift test runs it).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pandas as pd

from core.results import OPS, ResultsError, ResultsRecord, load_records

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r"<!-- results:(?P<name>[A-Za-z0-9_.-]+)(?P<opts>[^>]*?)-->\n(?P<body>.*?)<!-- /results:(?P=name) -->", re.S
)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def format_value(v, spec: str = "") -> str:
    """A cell: ``—`` for None/NaN, numbers with ``spec`` (e.g. ``.2f``, ``+.2f``), anything else as ``str``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if spec and _is_number(v):
        return format(v, spec)
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_table(rec: ResultsRecord) -> str:
    """The Markdown table of ``rec`` (``pandas.DataFrame.to_markdown``; best values of ``best`` columns in bold,
    columns with a number format right-aligned)."""
    best = {}
    for c in rec.columns:
        values = [r[c.key] for r in rec.rows if _is_number(r[c.key]) and not math.isnan(r[c.key])]
        if c.best and values:
            best[c.key] = (max if c.best == "max" else min)(values)
    cells = {
        c.header: [
            f"**{format_value(r[c.key], c.format)}**"
            if c.key in best and r[c.key] == best[c.key]
            else format_value(r[c.key], c.format)
            for r in rec.rows
        ]
        for c in rec.columns
    }
    align = tuple("right" if c.format else "left" for c in rec.columns)
    return pd.DataFrame(cells).to_markdown(index=False, tablefmt="pipe", colalign=align, disable_numparse=True)


def _row_values(row: dict) -> dict:
    out = dict(row)
    out.update({f"abs_{k}": abs(v) for k, v in row.items() if _is_number(v)})
    return out


def _meets(value, op: str, x) -> bool:
    """Numbers compare with any operator, text only with ``==`` (e.g. ``[model, ==, HRNetV2-W18]``); a missing
    value, or text with another operator, does not meet the condition."""
    if _is_number(value) and _is_number(x):
        return OPS[op](value, x)
    return op == "==" and isinstance(value, str) and value == str(x)


def render_claims(rec: ResultsRecord) -> list[str]:
    """Each claim's sentence, filled from the first row that meets all its conditions, else its ``otherwise``
    (nothing when that is empty). Conditions: :func:`_meets`."""
    out = []
    for claim in rec.claims:
        for row in rec.rows:
            v = _row_values(row)
            if all(_meets(v.get(k), op, x) for k, op, x in claim.when):
                out.append(claim.text.format(**v))
                break
        else:
            if claim.otherwise:
                out.append(claim.otherwise)
    return out


def render_caption(rec: ResultsRecord) -> str:
    """The caption: the record's text, then how it was measured, stated once (``threads`` that is not a number,
    e.g. ``not recorded``, reads ``threads not recorded``)."""
    m = rec.measured
    overridden = sorted({k for r in rec.rows for k in r if k in ("date", "commit", "load", "threads", "torch")})
    per_row = f" ({', '.join(overridden)} per row in the record)" if overridden else ""
    n = m["threads"]
    threads = (f"{n} thread" + ("" if n == 1 else "s")) if _is_number(n) else f"threads {n}"
    return (
        f"*{rec.caption}* Measured {m['date']} on {m['hardware']}, {threads}, torch {m['torch']}, "
        f"load {m['load']}, commit `{m['commit']}`{per_row}; record `results/{rec.name}.yaml`."
    )


def render_provenance(rec: ResultsRecord) -> str:
    """One sentence naming how ``rec`` was measured and where its table is (the ``claims`` block's second line)."""
    m = rec.measured
    n = m["threads"]
    threads = (f"{n} thread" + ("" if n == 1 else "s")) if _is_number(n) else f"threads {n}"
    return (
        f"*Measured {m['date']} on {m['hardware']}, {threads}, torch {m['torch']}, load {m['load']}, "
        f"commit `{m['commit']}`; record `results/{rec.name}.yaml`.*"
    )


def render(rec: ResultsRecord, commands: bool = True, claims_only: bool = False) -> str:
    """The whole block: table, caption, claims and (unless ``commands`` is False) the commands; with
    ``claims_only`` (``<!-- results:<name> claims -->``) the claims and one sentence of how they were measured."""
    if claims_only:
        return "\n\n".join([" ".join(render_claims(rec)), render_provenance(rec)]) + "\n"
    parts = [render_table(rec), render_caption(rec), *render_claims(rec)]
    if commands:
        parts.append("```bash\n" + "\n".join(str(c).rstrip() for c in rec.measured["commands"]) + "\n```")
    return "\n\n".join(parts) + "\n"


def render_text(text: str, records: dict[str, ResultsRecord], where: str = "<text>") -> tuple[str, list[str]]:
    """Replace every results block of ``text`` by its rendering.

    Returns:
        the new text and the names of the blocks that changed.

    Raises:
        ResultsError: a block naming a record that does not exist, or an opening marker without its closing one.
    """
    changed = []

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in records:
            raise ResultsError(f"{where}: <!-- results:{name} --> names no record; records: {sorted(records)}")
        opts = match["opts"].split()
        body = render(records[name], commands="table" not in opts, claims_only="claims" in opts)
        if body != match["body"]:
            changed.append(name)
        return f"<!-- results:{name}{match['opts']}-->\n{body}<!-- /results:{name} -->"

    new = BLOCK.sub(replace, text)
    opened = re.findall(r"<!-- results:([A-Za-z0-9_.-]+)", text)
    closed = re.findall(r"<!-- /results:([A-Za-z0-9_.-]+) -->", text)
    if sorted(opened) != sorted(closed):
        raise ResultsError(f"{where}: results markers do not pair: opened {opened}, closed {closed}")
    return new, changed


def default_files(repo: Path = REPO) -> list[Path]:
    """README.md and every page under docs/."""
    return [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))]


def render_files(files=None, results=None, check: bool = False) -> list[str]:
    """Render the results blocks of ``files`` (default :func:`default_files`) from ``results`` (default
    ``results/``); with ``check`` nothing is written.

    Returns:
        ``"<file>: results:<name>"`` for every block that differed from its rendering.

    Raises:
        ResultsError: a malformed record or marker (file and key named).
    """
    records = load_records(Path(results) if results else REPO / "results")
    drift, updates = [], {}
    for path in [Path(f) for f in (files or default_files())]:
        text = path.read_text(encoding="utf-8")
        new, changed = render_text(text, records, str(path))
        drift += [f"{path}: results:{name}" for name in changed]
        if changed:
            updates[path] = new
    if not check:
        for path, new in updates.items():
            path.write_text(new, encoding="utf-8")
    return drift


def build_parser():
    """The command line of ``benchmark.py render`` (:class:`core.command_line.KeyValueParser`; the older
    ``--check``, ``--results DIR`` and positional files are accepted with one deprecation line)."""
    from core.command_line import Key, KeyValueParser, Legacy

    keys = (
        Key("files", "Markdown files (default: README.md and docs/**/*.md)", "list", metavar="[README.md,...]"),
        Key("results", "folder of the records (default: results/)", "path", metavar="DIR"),
        Key(
            "check", "write nothing; exit 1 when a table differs from its record", "bool", default=False, metavar="true"
        ),
    )
    return KeyValueParser(
        "benchmark.py render",
        keys,
        usage="python benchmark.py render [check=true] [results=DIR] [files=[README.md,...]]",
        description="Render the README/docs result tables from results/*.yaml.",
        legacy=[Legacy("--results", "results"), Legacy("--check", "check", nargs=0)],
        positional="files",
    )


def main(argv: list[str]) -> int:
    """``benchmark.py render [check=true] [results=DIR] [files=[FILE,...]]``; exit 1 on drift (``check=true``) or a
    bad record, one line each."""
    a = build_parser().parse(argv)
    try:
        drift = render_files(a.files or None, a.results, check=a.check)
    except ResultsError as e:
        print(f"benchmark.py render: {e}", file=sys.stderr)
        return 1
    for line in drift:
        print(
            f"{line} {'differs from its record' if a.check else 'rendered'}", file=sys.stderr if a.check else sys.stdout
        )
    if a.check and drift:
        print("benchmark.py render: run `python benchmark.py render` to update them", file=sys.stderr)
        return 1
    return 0
