"""A plain folder of images and masks: the quickest way to train on your own data.

Layout ``<root>/images/<split>/*`` + ``<root>/masks/<split>/<same stem>.png``; masks hold class indices
``0..K-1`` (and ``ignore_index``). An optional ``label_map`` ({raw value: trainId}) remaps other encodings;
values not in the map become ``ignore_index``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.base import LayoutError, SegmentationDataset, lookup


class FolderDataset(SegmentationDataset):
    """Images in ``images/<split>/``, label maps in ``masks/<split>/`` paired by file stem."""

    layout = "root/\n  images/train/*.jpg|png   masks/train/*.png\n  images/val/*.jpg|png     masks/val/*.png"
    has_labels = ("train", "val", "test")

    def __init__(self, root, split="train", label_map: dict | None = None, **kwargs):
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        super().__init__(root, split, **kwargs)

    def find_pairs(self, root: Path, split: str):
        if not (root / "images" / split).is_dir():
            raise LayoutError(f"missing split folder {root / 'images' / split}")
        return self.pair_by_stem(root / "images" / split, root / "masks" / split)

    def map_label(self, label: np.ndarray) -> np.ndarray:
        if not self.label_map:
            return super().map_label(label)
        return lookup(label, self.label_map, unknown=self.ignore_index)
