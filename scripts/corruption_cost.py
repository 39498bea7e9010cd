"""Per-image cost of each benchmark corruption (datasets.corruptions.corrupt) at each severity, as a results record.

    python scripts/corruption_cost.py [images=3] [split=val] [out=results/corruption_cost.yaml] [load_note='...']

Times :func:`datasets.corruptions.corrupt` on the first ``images=`` frames of the embedded CamVid split (480x360,
``data/camvid``) for the 15 corruptions x 5 severities and writes ``results/<name>.yaml`` (:mod:`core.results`):
seconds per image for each severity, their mean, and a last row with the sum over the corruptions (the corruption
cost per image of the full 15 x 5 protocol, before any inference). The record states the CPU profile, OpenCV and
OpenMP threads and the 1-minute load at the start and the end (``load_note=`` adds what else ran on the machine).

The older spellings (``--images 3``, ``--split val``, ``--out X``, ``--load-note X``) still work with one deprecation
line on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from core.command_line import Key, KeyValueParser, Legacy  # noqa: E402
from core.measure import hardware_profile  # noqa: E402
from core.records import atomic_write_text  # noqa: E402
from core.results import Column, ResultsRecord, parse_record, today  # noqa: E402
from core.versions import git_info  # noqa: E402
from datasets.corruptions import SEVERITIES, corrupt, corruption_names  # noqa: E402
from datasets.image_io import read_image  # noqa: E402


def measure(images: list, names: list[str]) -> list[dict]:
    """Rows ``{corruption, s1..s5 (seconds per image), mean}`` plus a ``sum`` row."""
    rows = []
    for name in names:
        row = {"corruption": name}
        for s in SEVERITIES:
            t0 = time.perf_counter()
            for i, image in enumerate(images):
                corrupt(image, name, s, seed=i)
            row[f"s{s}"] = round((time.perf_counter() - t0) / len(images), 4)
        row["mean"] = round(sum(row[f"s{s}"] for s in SEVERITIES) / len(SEVERITIES), 4)
        rows.append(row)
        print(row, flush=True)
    total = {"corruption": f"all {len(names)} (sum)"}
    for key in [f"s{s}" for s in SEVERITIES] + ["mean"]:
        total[key] = round(sum(r[key] for r in rows), 4)
    return [*rows, total]


KEYS = (
    Key("images", "frames timed per corruption and severity", "int", default=3, metavar="N"),
    Key("split", "split folder of data/camvid", default="val", metavar="val"),
    Key("out", "the results record to write (default: results/corruption_cost.yaml)", "path", metavar="FILE"),
    Key("load_note", "what else ran on the machine, added to measured.load", "text", default="", metavar="TEXT"),
)
LEGACY = tuple(Legacy(f"--{k.name.replace('_', '-')}", k.name) for k in KEYS)


def build_parser() -> KeyValueParser:
    """The command line of corruption_cost.py: :data:`KEYS` and the older ``--flag`` spellings :data:`LEGACY`."""
    parts = __doc__.split("\n\n")
    return KeyValueParser(
        "corruption_cost.py",
        KEYS,
        usage=parts[1],
        description="\n\n".join(parts[:1] + parts[2:]),
        legacy=LEGACY,
    )


def main(argv=None) -> int:
    """Measure and write the record; returns the exit status."""
    p = build_parser()
    a = p.parse(argv)
    if a.images < 1:
        p.error(f"images={a.images}: time at least one frame")
    files = sorted((REPO / "data" / "camvid" / a.split).glob("*.png"))[: a.images]
    if not files:
        p.error(f"split={a.split}: no .png frames in {REPO / 'data' / 'camvid' / a.split}")
    images = [read_image(f) for f in files]
    size = {f"{im.shape[1]}x{im.shape[0]}" for im in images}
    load0, started = os.getloadavg()[0], time.strftime("%H:%M")
    rows = measure(images, corruption_names())
    load1 = os.getloadavg()[0]
    git = git_info(REPO)
    out = Path(a.out) if a.out else REPO / "results" / "corruption_cost.yaml"
    record = ResultsRecord(
        name=out.stem,
        caption=(
            f"Seconds per {', '.join(sorted(size))} CamVid frame ({len(images)} frames of data/camvid/{a.split}, "
            f"seeds 0-{len(images) - 1}) to corrupt the uint8 image with each benchmark corruption, by severity; "
            "the inference that follows is not included. The last row is the corruption cost per image of the "
            f"full 15 x 5 protocol (sum of s1-s5 over the corruptions: {sum(rows[-1][f's{s}'] for s in SEVERITIES):.1f} s)."
        ),
        measured={
            "date": today(),
            "commit": f"{(git['commit'] or 'unknown')[:7]}{'+dirty' if git['dirty'] else ''}",
            "hardware": f"{hardware_profile('cpu')}, {os.cpu_count()} cores",
            "threads": f"OpenCV {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
            "torch": torch.__version__.split("+")[0],
            "load": f"{load0:.2f} at the start ({started}), {load1:.2f} at the end{a.load_note and '; ' + a.load_note}",
            "commands": [f"python scripts/corruption_cost.py images={a.images} split={a.split} out=results/{out.name}"],
        },
        columns=[
            Column("corruption", "corruption"),
            *[Column(f"s{s}", f"severity {s} (s)", ".3f") for s in SEVERITIES],
            Column("mean", "mean (s)", ".3f"),
        ],
        rows=rows,
    )
    parse_record(yaml.safe_load(record.to_yaml()), out)  # refused here rather than by the docs
    atomic_write_text(out, record.to_yaml())
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
