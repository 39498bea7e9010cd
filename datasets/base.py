"""Base class shared by every segbench dataset: file pairing, label mapping, checks, transforms.

A dataset subclass only says where its files are and how its labels map to trainIds:

* :meth:`SegmentationDataset.find_pairs` returns ``[(image_path, label_path), ...]`` for a split,
* :meth:`SegmentationDataset.map_label` maps a raw label array to trainIds with ``ignore_index``
  (CamVid 11→255, ADE20K reduce-zero-label, Cityscapes labelId→trainId, ...).

Samples follow the segbench contract ``{"image": float32[3,H,W] normalised, "mask": int64[H,W] with
255 = ignore, "name": str}``. Errors are one line and name the file (and the layout expected).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class DatasetError(ValueError):
    """Bad dataset input: wrong root/layout, missing label, label values outside the class set, ..."""


class SegmentationDataset(Dataset):
    """Image + label-map dataset for semantic segmentation.

    Args:
        root: dataset folder (``${environment.data_root}/<name>``).
        split: ``train``, ``val``, ``test`` (what a subclass supports).
        num_classes: K; labels after :meth:`map_label` must be in ``[0, K)`` or ``ignore_index``.
        ignore_index: label of ignored pixels (255).
        transform: albumentations-style callable ``transform(image=HxWx3 uint8, mask=HxW) -> dict`` that
            returns a float32[3,H,W] tensor image (normalised) and an [H,W] mask; None keeps the raw
            arrays (image as uint8 tensor [3,H,W]).
        check_labels: verify every label value (cheap, on by default).

    Raises:
        DatasetError: ``root`` missing (the message shows the expected layout), an empty split, an image
            without its label (both paths named).
    """

    #: Human-readable tree shown when the root does not match; subclasses override.
    layout: str = "root/\n  images/<split>/*.png\n  labels/<split>/*.png"
    has_labels: Sequence[str] = ("train", "val")

    def __init__(self, root: str | os.PathLike, split: str = "train", num_classes: int = 0, ignore_index: int = 255,
                 transform: Callable | None = None, check_labels: bool = True, **_):
        self.root = Path(root)
        self.split = split
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.transform = transform
        self.check_labels = check_labels
        if not self.root.is_dir():
            raise DatasetError(f"{type(self).__name__}: data root {self.root} does not exist; expected layout:\n"
                               f"{self.layout}\nSet environment.data_root=<folder holding it> or SEGBENCH_DATA.")
        self.pairs = self.find_pairs(self.root, split)
        if not self.pairs:
            raise DatasetError(f"{type(self).__name__}: no images for split {split!r} under {self.root}; "
                               f"expected layout:\n{self.layout}")

    # ----------------------------------------------------------------- subclass API
    def find_pairs(self, root: Path, split: str) -> list[tuple[Path, Path | None]]:
        """Return ``[(image_path, label_path or None), ...]`` for ``split``, sorted by image name."""
        raise NotImplementedError

    def map_label(self, label: np.ndarray) -> np.ndarray:
        """Map a raw label array (H, W) to trainIds with ``ignore_index``; identity by default."""
        return label

    # ----------------------------------------------------------------- helpers for subclasses
    @staticmethod
    def pair_by_stem(image_dir: Path, label_dir: Path, label_suffix: str = "", label_ext: str = ".png",
                     image_suffix: str = "") -> list[tuple[Path, Path]]:
        """Pair ``image_dir/<stem><image_suffix>.<ext>`` with ``label_dir/<stem><label_suffix><label_ext>``.

        Raises:
            DatasetError: a folder is missing or an image has no label (both paths named).
        """
        for d in (image_dir, label_dir):
            if not d.is_dir():
                raise DatasetError(f"missing folder {d}")
        pairs = []
        for img in sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
            stem = img.name[: len(img.name) - len(img.suffix)]
            if image_suffix and stem.endswith(image_suffix):
                stem = stem[: -len(image_suffix)]
            lab = label_dir / img.parent.relative_to(image_dir) / f"{stem}{label_suffix}{label_ext}"
            if not lab.is_file():
                raise DatasetError(f"image {img} has no label: expected {lab}")
            pairs.append((img, lab))
        return pairs

    # ----------------------------------------------------------------- Dataset
    def __len__(self) -> int:
        return len(self.pairs)

    def load_image(self, path: Path) -> np.ndarray:
        """Read an RGB image as uint8 (H, W, 3).

        Raises:
            DatasetError: unreadable or truncated file (named).
        """
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as e:
            raise DatasetError(f"cannot read image {path}: {e}") from e

    def load_label(self, path: Path) -> np.ndarray:
        """Read a label map as an int64 array (H, W) of raw values, then :meth:`map_label` it.

        Raises:
            DatasetError: unreadable file, or a value outside ``[0, K)`` and not ``ignore_index`` (file and
                values named).
        """
        try:
            with Image.open(path) as im:
                raw = np.asarray(im).astype(np.int64)
        except (OSError, ValueError) as e:
            raise DatasetError(f"cannot read label {path}: {e}") from e
        if raw.ndim == 3:
            raise DatasetError(f"label {path} has {raw.shape[2]} channels; expected a single-channel label map")
        label = self.map_label(raw)
        if self.check_labels:
            bad = (label != self.ignore_index) & ((label < 0) | (label >= self.num_classes))
            if bad.any():
                values = sorted(set(np.unique(raw[bad]).tolist()))[:10]
                raise DatasetError(f"label {path} has values {values} outside the {self.num_classes} classes "
                                   f"(and not ignore_index={self.ignore_index})")
        return label

    def __getitem__(self, index: int) -> dict:
        img_path, lab_path = self.pairs[index]
        image = self.load_image(img_path)
        if lab_path is None:
            mask = np.full(image.shape[:2], self.ignore_index, dtype=np.int64)
        else:
            mask = self.load_label(lab_path)
            if mask.shape != image.shape[:2]:
                raise DatasetError(f"size mismatch: image {img_path} is {image.shape[1]}x{image.shape[0]} but label "
                                   f"{lab_path} is {mask.shape[1]}x{mask.shape[0]} (WxH)")
        if self.transform is not None:
            out = self.transform(image=image, mask=mask.astype(np.uint8) if mask.max() < 256 else mask)
            image, mask = out["image"], out["mask"]
        else:
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        mask = torch.as_tensor(np.asarray(mask), dtype=torch.int64) if not torch.is_tensor(mask) else mask.long()
        return {"image": image, "mask": mask, "name": img_path.name[: -len(img_path.suffix)]}
