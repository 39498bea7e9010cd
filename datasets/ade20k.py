"""ADE20K, SceneParsing benchmark release ``ADEChallengeData2016`` (Zhou et al., CVPR 2017), 150 classes.

Annotations hold 0 = "other" and 1..150 = the classes of ``objectInfo150``; as in MMSegmentation
(``reduce_zero_label=True``) 0 becomes ``ignore_index`` and every other value v becomes v - 1.
"""

from __future__ import annotations

import csv
from pathlib import Path

from datasets.base import DatasetError, LayoutError, SegmentationDataset


class ADE20K(SegmentationDataset):
    """``images/<training|validation>/*.jpg`` + ``annotations/<training|validation>/*.png`` (``train``/``val``)."""

    layout = (
        "ADEChallengeData2016/\n"
        "  images/training/ADE_train_00000001.jpg ...     annotations/training/ADE_train_00000001.png ...\n"
        "  images/validation/ADE_val_00000001.jpg ...     annotations/validation/ADE_val_00000001.png ...\n"
        "  objectInfo150.txt   (class names, optional)"
    )
    splits = ("train", "val")
    has_labels = ("train", "val")
    reduce_zero_label = True
    folders = {"train": "training", "val": "validation"}

    def find_pairs(self, root: Path, split: str):
        sub = self.folders[split]
        if not (root / "images" / sub).is_dir():
            raise LayoutError(f"missing split folder {root / 'images' / sub}")
        return self.pair_by_stem(root / "images" / sub, root / "annotations" / sub)


def read_object_info(path: str | Path) -> list[str]:
    """Class names 1..150 (first synonym) of the official ``objectInfo150.txt`` (tab separated, ``Idx`` and
    ``Name`` columns, synonyms separated by ``", "``), e.g. ``chest of drawers``, ``pool table``.

    The ``objectInfo150.csv`` variant replaces every space by ``;`` (``chest;of;drawers;chest;...``), so
    multi-word names cannot be recovered from it; it is rejected.

    Raises:
        DatasetError: the file is missing, is the ``.csv`` variant, or has no ``Idx``/``Name`` columns.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "objectInfo150.txt"
    if path.suffix != ".txt":
        raise DatasetError(f"{path}: use objectInfo150.txt (the .csv variant loses the spaces of multi-word names)")
    if not path.is_file():
        raise DatasetError(f"missing ADE20K class list {path}")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or not {"Idx", "Name"} <= set(rows[0]):
        raise DatasetError(f"{path} has no 'Idx' and 'Name' columns")
    rows.sort(key=lambda r: int(r["Idx"]))
    return [r["Name"].split(",")[0].strip() for r in rows]
