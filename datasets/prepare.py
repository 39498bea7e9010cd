"""One-time dataset preparation: ``python -m datasets.prepare <dataset> root=<dir> [key=value ...]``.

* ``cityscapes root=<dir> [workers=N] [overwrite=true]``: writes ``*_labelTrainIds.png`` next to every
  ``*_labelIds.png`` under ``gtFine/`` and ``gtCoarse/`` with the cityscapesscripts table (then use
  ``dataset.kwargs.label_type=labelTrainIds``; the default reads ``labelIds`` and converts on the fly, so this step is
  optional).
* ``voc_context root=<dir> [voc_dir=<dir>] [context_dir=<dir>] [overwrite=true]``: converts PASCAL-Context
  ``trainval/*.mat`` to PNG labels and writes the train/val lists (required before
  ``dataset=voc2010_context|voc2010_context_60``).

The keys follow the ``key=value`` convention of every entry point (:mod:`core.command_line`); the older spellings
(``<root>`` as a positional argument, ``--workers N``, ``--voc-dir D``, ``--context-dir D``, ``--overwrite``) are
accepted with one deprecation line. Expected trees: docs/datasets.md. Exit status 2 with a one-line error on bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.command_line import Key, KeyValueParser, Legacy
from datasets.base import DatasetError
from datasets.cityscapes import prepare_cityscapes
from datasets.voc_context import prepare_voc_context

PROG = "python -m datasets.prepare"
ROOT = Key("root", "dataset folder", "path", metavar="<dir>", required=True)
OVERWRITE = Key.switch("overwrite", "rewrite existing outputs")


def _cityscapes(args) -> str:
    n = prepare_cityscapes(Path(args.root), overwrite=args.overwrite, workers=args.workers)
    return f"wrote {n} *_labelTrainIds.png files under {args.root}"


def _voc_context(args) -> str:
    root = Path(args.root)
    opt = {k: None if getattr(args, k) is None else Path(getattr(args, k)) for k in ("voc_dir", "context_dir")}
    counts = prepare_voc_context(root, overwrite=args.overwrite, **opt)
    return f"wrote {root / 'SegmentationClassContext'} and lists " + ", ".join(
        f"{k}: {v} images" for k, v in counts.items()
    )


@dataclass(frozen=True)
class Preparation:
    """One dataset's preparation: what it does (``--help``), its keys beyond ``root``/``overwrite``, the runner."""

    help: str
    keys: tuple[Key, ...]
    run: Callable[[object], str]


PREPARATIONS: dict[str, Preparation] = {
    "cityscapes": Preparation(
        "labelIds -> labelTrainIds PNGs (cityscapesscripts table)",
        (Key("workers", "processes converting in parallel", "int", default=1, metavar="N"),),
        _cityscapes,
    ),
    "voc_context": Preparation(
        "PASCAL-Context .mat -> PNG labels + train/val lists",
        (
            Key("voc_dir", "VOCdevkit/VOC2010 (default <root>/VOCdevkit/VOC2010)", "path", metavar="<dir>"),
            Key("context_dir", "folder of <id>.mat (default <root>/trainval)", "path", metavar="<dir>"),
        ),
        _voc_context,
    ),
}


def build_parser(dataset: str) -> KeyValueParser:
    """The ``key=value`` parser of ``python -m datasets.prepare <dataset>``.

    Raises:
        KeyError: ``dataset`` has no preparation.
    """
    prep = PREPARATIONS[dataset]
    keys = (ROOT, *prep.keys, OVERWRITE)
    legacy = tuple(Legacy(f"--{k.name.replace('_', '-')}", k.name, nargs=0 if k.kind == "bool" else 1) for k in keys)
    return KeyValueParser(
        f"{PROG} {dataset}",
        keys,
        usage=f"{PROG} {dataset} root=<dir> ...: {prep.help}",
        legacy=legacy[1:],
        positional="root",
    )


def usage() -> str:
    """The synopsis ``--help`` prints: one line per dataset."""
    lines = [f"usage: {PROG} <dataset> root=<dir> [key=value ...]  ({PROG} <dataset> --help: its keys)", "datasets:"]
    return "\n".join(lines + [f"  {name:<12}{prep.help}" for name, prep in PREPARATIONS.items()])


def main(argv=None) -> int:
    """Run the preparation; prints one summary line. Returns the exit status (2: bad input, one line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv:
        print(f"{PROG}: error: missing <dataset>; datasets: {', '.join(PREPARATIONS)} (see --help)", file=sys.stderr)
        return 2
    if argv[0] not in PREPARATIONS:
        print(f"{PROG}: error: unknown dataset {argv[0]!r}; datasets: {', '.join(PREPARATIONS)}", file=sys.stderr)
        return 2
    args = build_parser(argv[0]).parse(argv[1:])
    try:
        print(PREPARATIONS[argv[0]].run(args))
    except DatasetError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
