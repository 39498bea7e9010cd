"""Time and peak memory per photo of ``predict.py`` loops against a deployment budget, as one results record.

    python scripts/photo_table.py loop='<label>=<predict.py out folder>' [loop=...] record=results/<name>.yaml
                                  [seconds=3.0] [memory_gib=12.0] [caption='...'] [command='<command>' ...]
                                  [load_note='...']

Each ``loop=`` is one ``predict.py ... out=<folder>`` run (its ``summary.json``); the first loop gives the photo
rows (name, size, megapixels), every loop adds its inference wall seconds and peak RSS (MiB) per photo under its
label. A photo is within the budget when every loop's inference time is at most ``seconds`` and its peak RSS at most
``memory_gib``; the record's claims state how many photos each loop keeps within it. ``measured`` names this
machine (run it right after the loops, on the machine that ran them), this checkout's commit and ``load_note``.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from core.command_line import Key, KeyValueParser
from core.measure import hardware_profile
from core.results import Claim, Column, ResultsRecord, publish, today
from core.versions import commit_label, git_info
from report.render import render_table

KEYS = (
    Key(
        "loop", "a predict.py out folder and its label (repeatable)", "texts", metavar="'<label>=<dir>'", required=True
    ),
    Key("record", "the results record to write", "path", metavar="results/<name>.yaml", required=True),
    Key("seconds", "budget: inference seconds per photo", "float", default=3.0, metavar="3.0"),
    Key("memory_gib", "budget: peak RSS per photo (GiB)", "float", default=12.0, metavar="12.0"),
    Key("caption", "the record's caption", "text", default="", metavar="TEXT"),
    Key("command", "a command that produced the loops (repeatable)", "texts", default=(), metavar="CMD"),
    Key("load_note", "what else ran on the machine", "text", default="nothing else running", metavar="TEXT"),
)


def build_parser() -> KeyValueParser:
    """The ``key=value`` command line of photo_table.py."""
    parts = __doc__.split("\n\n")
    return KeyValueParser("photo_table.py", KEYS, usage=parts[1], description="\n\n".join(parts[:1] + parts[2:]))


def read_loop(folder: Path) -> dict[str, dict]:
    """Per-photo entries of ``<folder>/summary.json`` by file name.

    Raises:
        OSError, ValueError: a missing or unreadable summary; a loop with failed photos (their names listed).
    """
    summary = json.loads((folder / "summary.json").read_text())
    if summary.get("failed"):
        raise ValueError(f"{len(summary['failed'])} photos failed: {summary['failed'][:3]}")
    return {Path(p["image"]).name: p for p in summary["per_image"]}


def main(argv=None) -> int:
    """Write the record and print its table; returns 0 (usage errors exit 2 with one line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = build_parser()
    a = p.parse(argv)
    for key in ("seconds", "memory_gib"):
        if not getattr(a, key) > 0:
            p.error(f"{key}={getattr(a, key)}: the budget must be positive")
    loops = []
    for spec in a.loop:
        label, sep, folder = spec.partition("=")
        if not sep:
            p.error(f"loop={spec}: expected '<label>=<predict.py out folder>'")
        try:
            loops.append((label, read_loop(Path(folder))))
        except (OSError, ValueError, KeyError) as e:
            p.error(f"loop={spec}: {e}")
    first = loops[0][1]
    rows, columns = [], [Column("photo", "photo"), Column("size", "size"), Column("MP", "MP", ".2f")]
    for i, (label, _) in enumerate(loops):
        columns += [Column(f"s_{i}", f"{label}: inference s", ".2f"), Column(f"mib_{i}", f"{label}: peak RSS MiB", "d")]
    budget_mib = a.memory_gib * 1024
    for name, entry in first.items():
        row = {
            "photo": name,
            "size": f"{entry['width']}x{entry['height']}",
            "MP": entry["width"] * entry["height"] / 1e6,
        }
        for i, (label, loop) in enumerate(loops):
            if name not in loop:
                p.error(f"loop {label!r} has no photo {name} (the loops must cover the same photos)")
            row[f"s_{i}"] = loop[name]["timing_s"]["inference"]
            row[f"mib_{i}"] = round(loop[name]["peak_rss_mib"])
        rows.append(row)
    claims = []
    for i, (label, _) in enumerate(loops):
        within = sum(r[f"s_{i}"] <= a.seconds and r[f"mib_{i}"] <= budget_mib for r in rows)
        slowest = max(r[f"s_{i}"] for r in rows)
        peak = max(r[f"mib_{i}"] for r in rows)
        for r in rows:
            r[f"within_{i}"] = within
        text = (
            f"{label}: {within} of {len(rows)} photos within {a.seconds:g} s and {a.memory_gib:g} GiB "
            f"(slowest {slowest:.2f} s, highest peak RSS {peak} MiB)."
        )
        claims.append(Claim(text=text, when=[]))
    measured = {
        "date": today(),
        "commit": commit_label(git_info()),
        "hardware": hardware_profile("cpu"),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__.split("+")[0],
        "load": a.load_note,
        "commands": [*a.command, "python scripts/photo_table.py " + shlex.join(argv)],
    }
    record = ResultsRecord(
        name=Path(a.record).stem, caption=a.caption, measured=measured, columns=columns, rows=rows, claims=claims
    )
    print(render_table(record))
    print("\n".join(c.text for c in claims))
    return publish(record, a.record, "photo_table.py")


if __name__ == "__main__":
    sys.exit(main())
