"""One-time dataset preparation: ``python -m datasets.prepare <dataset> <root> [options]``.

* ``cityscapes <root> [--workers N] [--overwrite]``: writes ``*_labelTrainIds.png`` next to every ``*_labelIds.png`` under
  ``gtFine/`` and ``gtCoarse/`` with the cityscapesscripts table (then use ``dataset.kwargs.label_type=labelTrainIds``;
  the default reads ``labelIds`` and converts on the fly, so this step is optional).
* ``voc_context <root> [--voc-dir D] [--context-dir D] [--overwrite]``: converts PASCAL-Context ``trainval/*.mat``
  to PNG labels and writes the train/val lists (required before ``dataset=voc2010_context|voc2010_context_60``).

Expected trees: README.md, section Datasets. Exit status 2 with a one-line error on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datasets.base import DatasetError
from datasets.cityscapes import prepare_cityscapes
from datasets.voc_context import prepare_voc_context


def _cityscapes(args) -> str:
    n = prepare_cityscapes(args.root, overwrite=args.overwrite, workers=args.workers)
    return f"wrote {n} *_labelTrainIds.png files under {args.root}"


def _voc_context(args) -> str:
    counts = prepare_voc_context(
        args.root, voc_dir=args.voc_dir, context_dir=args.context_dir, overwrite=args.overwrite
    )
    return f"wrote {args.root / 'SegmentationClassContext'} and lists " + ", ".join(
        f"{k}: {v} images" for k, v in counts.items()
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``datasets.prepare`` command line (one sub-command per dataset)."""
    parser = argparse.ArgumentParser(prog="python -m datasets.prepare", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    cs = sub.add_parser("cityscapes", help="labelIds -> labelTrainIds PNGs (cityscapesscripts table)")
    cs.add_argument("--workers", type=int, default=1, help="processes converting in parallel (default 1)")
    cs.set_defaults(run=_cityscapes)
    voc = sub.add_parser("voc_context", help="PASCAL-Context .mat -> PNG labels + train/val lists")
    voc.add_argument("--voc-dir", type=Path, default=None, help="VOCdevkit/VOC2010 (default <root>/VOCdevkit/VOC2010)")
    voc.add_argument("--context-dir", type=Path, default=None, help="folder of <id>.mat (default <root>/trainval)")
    voc.set_defaults(run=_voc_context)
    for p in (cs, voc):
        p.add_argument("root", type=Path, help="dataset folder")
        p.add_argument("--overwrite", action="store_true", help="rewrite existing outputs")
    return parser


def main(argv=None) -> int:
    """Run the preparation; prints one summary line. Returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        print(args.run(args))
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
