"""Datasets: one base class (:class:`SegmentationDataset`) and a few lines per dataset.

``build_dataset(dataset_cfg, split, transform)`` instantiates the class named by the dataset config's
``_target_`` with the keys it declares (``root``, ``num_classes``, ``ignore_index``, plus ``kwargs``).
"""
from __future__ import annotations

from hydra.utils import get_class

from datasets.base import DatasetError, SegmentationDataset
from datasets.camvid import CamVid
from datasets.folder import FolderDataset


def build_dataset(cfg, split: str, transform=None) -> SegmentationDataset:
    """Build the dataset of ``cfg`` (a ``config/dataset/*.yaml`` node) for ``split``.

    Raises:
        DatasetError: see :class:`SegmentationDataset` (wrong root, missing labels, ...).
    """
    cls = get_class(cfg._target_)
    kwargs = dict(cfg.get("kwargs") or {})
    return cls(root=cfg.root, split=split, num_classes=cfg.num_classes, ignore_index=cfg.ignore_index,
               transform=transform, **kwargs)


__all__ = ["CamVid", "DatasetError", "FolderDataset", "SegmentationDataset", "build_dataset"]
