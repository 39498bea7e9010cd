"""Base class shared by every segbench dataset: file pairing, label mapping, checks, transforms.

A dataset subclass only says where its files are and how its labels map to trainIds:

* :meth:`SegmentationDataset.find_pairs` returns ``[(image_path, label_path), ...]`` for a split,
* :meth:`SegmentationDataset.map_label` maps a raw label array to trainIds with ``ignore_index``
  (CamVid 11→255, ADE20K reduce-zero-label, Cityscapes labelId→trainId, ...).

Samples follow the segbench contract ``{"image": float32[3,H,W] normalised, "mask": int64[H,W] with
255 = ignore, "name": str}``. Errors are one line and name the file (the wrong-root error adds the
expected folder tree).

Corrupt files: with ``skip_corrupt=True`` an unreadable/truncated image or label is logged, skipped (the
next sample is returned instead) and counted: every sample then carries ``"skipped": int`` (files skipped
to produce it), which the LightningModule sums and logs as ``data/skipped_corrupt``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class DatasetError(ValueError):
    """Bad dataset input: wrong root/layout, missing label, label values outside the class set, ..."""


class LayoutError(DatasetError):
    """A missing folder or list file; :class:`SegmentationDataset` appends the expected tree to the message."""


class CorruptFileError(DatasetError):
    """An image or label file that cannot be decoded (truncated, not an image); skippable."""


def lookup(label: np.ndarray, table: Mapping[int, int] | np.ndarray, unknown: int = -1) -> np.ndarray:
    """Map every value of ``label`` (int array, any shape) through ``table``; values without entry -> ``unknown``.

    Args:
        label: integer array of raw values.
        table: ``{raw: mapped}`` or a 1-D lookup array indexed by raw value.
        unknown: value for raw values the table does not cover (-1 lets the label check report them).

    Returns:
        int64 array of ``label``'s shape.
    """
    if not isinstance(table, np.ndarray):
        lut = np.full(max(table, default=-1) + 1, unknown, dtype=np.int64)
        for raw, mapped in table.items():
            if raw >= 0:
                lut[int(raw)] = int(mapped)
        table = lut
    table = np.asarray(table, dtype=np.int64)
    label = np.asarray(label).astype(np.int64, copy=False)
    if label.size and label.min() >= 0 and label.max() < len(table):
        return table[label]
    out = np.full(label.shape, unknown, dtype=np.int64)
    inside = (label >= 0) & (label < len(table))
    out[inside] = table[label[inside]]
    return out


class SegmentationDataset(Dataset):
    """Image + label-map dataset for semantic segmentation.

    Args:
        root: dataset folder (``${environment.data_root}/<name>``).
        split: one of the class's ``splits`` (``train``, ``val``, ``test``, ...).
        num_classes: K; labels after :meth:`map_label` must be in ``[0, K)`` or ``ignore_index``.
        ignore_index: label of ignored pixels (255).
        transform: albumentations-style callable ``transform(image=HxWx3 uint8, mask=HxW) -> dict`` that
            returns a float32[3,H,W] tensor image (normalised) and an [H,W] mask; None keeps the raw
            arrays (image as uint8 tensor [3,H,W]).
        check_labels: verify every label value (cheap, on by default).
        reduce_zero_label: raw 0 -> ``ignore_index``, every other value v -> v - 1 (the ADE20K / PASCAL-Context-59
            convention of MMSegmentation; ``ignore_index`` stays); applied by the default :meth:`map_label`;
            None keeps the class's default.
        skip_corrupt: skip (log and count) unreadable files instead of raising :class:`CorruptFileError`.
        require_labels: raise if ``split`` has no labels (evaluation); otherwise unlabelled splits give
            masks filled with ``ignore_index``.

    Raises:
        DatasetError: unknown split (valid names listed), ``root`` missing (the message shows the expected
            layout), missing split folder, an empty split, an image without its label (both paths named),
            labels required on a split without labels.
    """

    #: Human-readable tree shown when the root does not match; subclasses override.
    layout: str = "root/\n  images/<split>/*.png\n  labels/<split>/*.png"
    #: Splits the dataset knows; ``has_labels`` lists those that have labels (evaluation on others errors).
    splits: Sequence[str] = ("train", "val", "test")
    has_labels: Sequence[str] = ("train", "val")
    reduce_zero_label: bool = False

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        num_classes: int = 0,
        ignore_index: int = 255,
        transform: Callable | None = None,
        check_labels: bool = True,
        reduce_zero_label: bool | None = None,
        skip_corrupt: bool = False,
        require_labels: bool = False,
        **_,
    ):
        self.root = Path(root)
        self.split = split
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.transform = transform
        self.check_labels = check_labels
        if reduce_zero_label is not None:
            self.reduce_zero_label = bool(reduce_zero_label)
        self.skip_corrupt = bool(skip_corrupt)
        name = type(self).__name__
        if split not in self.splits:
            raise DatasetError(f"{name}: unknown split {split!r}; valid splits: {', '.join(self.splits)}")
        if require_labels and split not in self.has_labels:
            raise DatasetError(
                f"{name}: split {split!r} has no labels, it cannot be evaluated "
                f"(labelled splits: {', '.join(self.has_labels)})"
            )
        if not self.root.is_dir():
            raise DatasetError(
                f"{name}: data root {self.root} does not exist; expected layout:\n"
                f"{self.layout}\nSet environment.data_root=<folder holding it> or SEGBENCH_DATA."
            )
        try:
            self.pairs = self.find_pairs(self.root, split)
        except LayoutError as e:
            raise LayoutError(f"{name}: {e}; expected layout:\n{self.layout}") from None
        if not self.pairs:
            raise DatasetError(
                f"{name}: no images for split {split!r} under {self.root}; expected layout:\n{self.layout}"
            )
        if split not in self.has_labels:
            self.pairs = [(img, None) for img, _ in self.pairs]

    # ----------------------------------------------------------------- subclass API
    def find_pairs(self, root: Path, split: str) -> list[tuple[Path, Path | None]]:
        """Return ``[(image_path, label_path or None), ...]`` for ``split``, sorted by image name.

        Raise :class:`LayoutError` for a missing folder or list (the base class appends the expected tree) and
        :class:`DatasetError` for an image without label.
        """
        raise NotImplementedError

    def map_label(self, label: np.ndarray) -> np.ndarray:
        """Map a raw label array (H, W) int64 to trainIds with ``ignore_index``.

        Default: identity, or reduce-zero-label (0 -> ``ignore_index``, v -> v - 1, ``ignore_index`` kept; as
        MMSegmentation's ``LoadAnnotations(reduce_zero_label=True)``) if ``reduce_zero_label``.
        """
        if not self.reduce_zero_label:
            return label
        out = label - 1
        out[(label == 0) | (label == self.ignore_index)] = self.ignore_index
        return out

    @property
    def labelled(self) -> bool:
        """True when this split has labels (``split in has_labels``)."""
        return self.split in self.has_labels

    # ----------------------------------------------------------------- helpers for subclasses
    @staticmethod
    def pair_by_stem(
        image_dir: Path,
        label_dir: Path,
        label_suffix: str = "",
        label_ext: str = ".png",
        image_suffix: str = "",
        require_labels: bool = True,
    ) -> list[tuple[Path, Path | None]]:
        """Pair ``image_dir/**/<stem><image_suffix>.<ext>`` with ``label_dir/**/<stem><label_suffix><label_ext>``.

        Args:
            require_labels: False returns ``(image, None)`` pairs without looking at ``label_dir``.

        Raises:
            LayoutError: a folder is missing. DatasetError: an image has no label (both paths named).
        """
        for d in (image_dir, label_dir) if require_labels else (image_dir,):
            if not d.is_dir():
                raise LayoutError(f"missing folder {d}")
        pairs = []
        for img in sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
            stem = img.name[: len(img.name) - len(img.suffix)]
            if image_suffix:
                if not stem.endswith(image_suffix):
                    continue
                stem = stem[: -len(image_suffix)]
            if not require_labels:
                pairs.append((img, None))
                continue
            lab = label_dir / img.parent.relative_to(image_dir) / f"{stem}{label_suffix}{label_ext}"
            if not lab.is_file():
                raise DatasetError(f"image {img} has no label: expected {lab}")
            pairs.append((img, lab))
        return pairs

    @staticmethod
    def read_list(path: Path) -> list[str]:
        """Non-empty, stripped lines of a split list file (first column).

        Raises:
            LayoutError: the list file is missing.
        """
        if not path.is_file():
            raise LayoutError(f"missing split list {path}")
        return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]

    # ----------------------------------------------------------------- Dataset
    def __len__(self) -> int:
        return len(self.pairs)

    def load_image(self, path: Path) -> np.ndarray:
        """Read an RGB image as uint8 (H, W, 3).

        Raises:
            CorruptFileError: unreadable or truncated file (named).
        """
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as e:
            raise CorruptFileError(f"cannot read image {path}: {e}") from e

    def read_label(self, path: Path) -> np.ndarray:
        """Raw label values of ``path`` as int64 (H, W); subclasses with non-image labels override.

        Raises:
            CorruptFileError: unreadable file. DatasetError: a multi-channel (colour) label.
        """
        try:
            with Image.open(path) as im:
                raw = np.asarray(im).astype(np.int64)
        except (OSError, ValueError, SyntaxError) as e:
            raise CorruptFileError(f"cannot read label {path}: {e}") from e
        if raw.ndim == 3:
            raise DatasetError(f"label {path} has {raw.shape[2]} channels; expected a single-channel label map")
        return raw

    def load_label(self, path: Path) -> np.ndarray:
        """Read a label map (:meth:`read_label`), :meth:`map_label` it and check its values.

        Returns:
            int64 (H, W) trainIds with ``ignore_index``.

        Raises:
            DatasetError: a value outside ``[0, K)`` and not ``ignore_index`` (file and raw values named).
        """
        raw = self.read_label(path)
        label = self.map_label(raw)
        if self.check_labels:
            bad = (label != self.ignore_index) & ((label < 0) | (label >= self.num_classes))
            if bad.any():
                values = sorted(set(np.unique(raw[bad]).tolist()))[:10]
                raise DatasetError(
                    f"label {path} has values {values} outside the {self.num_classes} classes "
                    f"(and not ignore_index={self.ignore_index})"
                )
        return label

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image uint8 (H, W, 3) and label int64 (H, W) of sample ``index``, sizes checked.

        Raises:
            DatasetError: image and label sizes differ (both files and sizes named).
        """
        img_path, lab_path = self.pairs[index]
        image = self.load_image(img_path)
        if lab_path is None:
            return image, np.full(image.shape[:2], self.ignore_index, dtype=np.int64)
        mask = self.load_label(lab_path)
        if mask.shape != image.shape[:2]:
            raise DatasetError(
                f"size mismatch: image {img_path} is {image.shape[1]}x{image.shape[0]} but label "
                f"{lab_path} is {mask.shape[1]}x{mask.shape[0]} (WxH)"
            )
        return image, mask

    def __getitem__(self, index: int | tuple[int, tuple[float, float]]) -> dict:
        # (index, (x, y)): the transform gets keypoints=[(x, y)] to centre its crop on (datasets/class_uniform.py)
        index, centre = index if isinstance(index, tuple) else (index, None)
        skipped = 0
        while True:
            try:
                image, mask = self.load_pair(index)
                break
            except CorruptFileError as e:
                if not self.skip_corrupt:
                    raise
                skipped += 1
                log.warning(f"skipping corrupt file ({skipped} for this sample): {e}")
                if skipped >= len(self.pairs):
                    raise DatasetError(f"{type(self).__name__}: every file of split {self.split!r} is corrupt") from e
                index = (index + 1) % len(self.pairs)
        img_path = self.pairs[index][0]
        if self.transform is not None:
            extra = {} if centre is None or skipped else {"keypoints": np.asarray([centre], dtype=np.float32)}
            out = self.transform(image=image, mask=mask.astype(np.uint8) if mask.max() < 256 else mask, **extra)
            image, mask = out["image"], out["mask"]
        else:
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        mask = torch.as_tensor(np.asarray(mask), dtype=torch.int64) if not torch.is_tensor(mask) else mask.long()
        sample = {"image": image, "mask": mask, "name": img_path.name[: -len(img_path.suffix)]}
        if self.skip_corrupt:
            sample["skipped"] = skipped
        return sample
