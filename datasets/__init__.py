"""Datasets: one base class (:class:`SegmentationDataset`) and a few lines per dataset.

``build_dataset(dataset_cfg, split, transform)`` instantiates the class named by the dataset config's
``_target_`` with the keys it declares (``root``, ``num_classes``, ``ignore_index``, ``skip_corrupt``, plus
``kwargs``).
"""

from __future__ import annotations

from hydra.utils import get_class

from datasets.ade20k import ADE20K
from datasets.base import CorruptFileError, DatasetError, LayoutError, SegmentationDataset
from datasets.camvid import CamVid
from datasets.cityscapes import Cityscapes
from datasets.folder import FolderDataset
from datasets.voc_context import VOC2010Context


def build_dataset(cfg, split: str, transform=None, require_labels: bool = False) -> SegmentationDataset:
    """Build the dataset of ``cfg`` (a ``config/dataset/*.yaml`` node) for ``split``.

    Args:
        cfg: dataset config (``_target_``, ``root``, ``num_classes``, ``ignore_index``, optional ``skip_corrupt``
            and ``kwargs`` passed to the class).
        split: a split of the class (``train``, ``val``, ``test``; see its ``splits``).
        transform: albumentations pipeline (:func:`datasets.transforms.build_transforms`) or None.
        require_labels: True for evaluation: a split without labels (``has_labels``) raises.

    Raises:
        DatasetError: see :class:`SegmentationDataset` (wrong root, missing labels, unlabelled split, ...).
    """
    cls = get_class(cfg._target_)
    kwargs = dict(cfg.get("kwargs") or {})
    return cls(
        root=cfg.root,
        split=split,
        num_classes=cfg.num_classes,
        ignore_index=cfg.ignore_index,
        transform=transform,
        skip_corrupt=bool(cfg.get("skip_corrupt", False)),
        require_labels=require_labels,
        **kwargs,
    )


__all__ = [
    "ADE20K",
    "CamVid",
    "Cityscapes",
    "CorruptFileError",
    "DatasetError",
    "FolderDataset",
    "LayoutError",
    "SegmentationDataset",
    "VOC2010Context",
    "build_dataset",
]
