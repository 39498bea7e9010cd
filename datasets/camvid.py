"""CamVid in the SegNet layout (Brostow et al. PRL 2009; 11-class split of Badrinarayanan et al., SegNet).

Labels 0..10 are the classes (Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car,
Pedestrian, Bicyclist); 11 = Unlabelled is mapped to ``ignore_index`` (255).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.base import SegmentationDataset


class CamVid(SegmentationDataset):
    """CamVid, SegNet split: ``<root>/{train,val,test}/*.png`` with labels in ``<root>/<split>annot/``."""

    layout = (
        "camvid/\n  train/  trainannot/   (RGB frames, L-mode uint8 labels, same file names)\n"
        "  val/    valannot/\n  test/   testannot/"
    )
    has_labels = ("train", "val", "test")
    unlabelled = 11

    def find_pairs(self, root: Path, split: str):
        return self.pair_by_stem(root / split, root / f"{split}annot")

    def map_label(self, label: np.ndarray) -> np.ndarray:
        label = label.copy()
        label[label == self.unlabelled] = self.ignore_index
        return label
