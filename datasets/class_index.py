"""Which classes each training image holds, and where: the index class-uniform sampling draws from
(:mod:`datasets.class_uniform`), built once per split and cached.

The per-image index (:class:`ClassPixelIndex`: pixels per class per image, and the stored pixels) is computed
once and cached as ``<data root>/.segbench_cache/class_index_<split>_<config>_<files>.npz`` (or under
``fallback_dir`` when the data folder is read-only). Both parts are SHA-256 prefixes (:func:`cache_key`):
``config`` of the dataset config name, the dataset class, its label-mapping code
(:meth:`~datasets.base.SegmentationDataset.map_label` source), its settings (``num_classes``, ``ignore_index``,
``reduce_zero_label``, label tables, Cityscapes ``sources`` and ``label_type``, ...), the split,
``points_per_class`` and the index format version; ``files`` of that and the label files (path, size, mtime).
Sibling configs sharing a data root (``voc2010_context`` / ``voc2010_context_60``, the three Cityscapes configs)
have different ``config`` parts and keep their own files side by side. A changed label file gives another
``files`` part: the index is rebuilt and the older files of the same ``config`` part are removed, never those of
another. Files are written under a temporary name and renamed (``os.replace``); a file that disappears or is
replaced while it is being looked up is read from its open handle or rebuilt, never an error.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.base import DatasetError

log = logging.getLogger("segbench")

INDEX_VERSION = 1
CACHE_DIR = ".segbench_cache"


@dataclass
class ClassPixelIndex:
    """Which classes each image holds, and where (a uniform sample of each class's pixels).

    Attributes:
        counts: int64 (N, K) pixels of class k in image n (``ignore_index`` excluded).
        start: int64 (N, K) offset of image n / class k in ``points``; ``num`` int64 (N, K) stored pixels.
        points: int32 (M, 2) pixel positions ``(x, y)`` (column, row) in the image's label map.
    """

    counts: np.ndarray
    start: np.ndarray
    num: np.ndarray
    points: np.ndarray

    @classmethod
    def build(cls, dataset, points_per_class: int = 64) -> ClassPixelIndex:
        """Read every label of ``dataset`` (a :class:`~datasets.base.SegmentationDataset`) once.

        Up to ``points_per_class`` pixels of each class present in an image are kept, drawn without replacement
        by a generator seeded with ``(image index, class)``.

        Raises:
            DatasetError: the split has no labels or a label is invalid (from ``load_label``).
        """
        n_img, k = len(dataset.pairs), int(dataset.num_classes)
        counts = np.zeros((n_img, k), np.int64)
        start = np.zeros((n_img, k), np.int64)
        num = np.zeros((n_img, k), np.int64)
        points: list[np.ndarray] = []
        total = 0
        for n, (_img, lab) in enumerate(dataset.pairs):
            if lab is None:
                raise DatasetError(f"class-uniform sampling needs labels; split {dataset.split!r} has none")
            label2d = dataset.load_label(lab)
            width, label = label2d.shape[1], label2d.ravel()
            valid = np.flatnonzero(label != dataset.ignore_index)
            classes = label[valid]
            counts[n] = np.bincount(classes, minlength=k)[:k]
            order = np.argsort(classes, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(counts[n])])
            for c in np.flatnonzero(counts[n]):
                pix = valid[order[bounds[c] : bounds[c + 1]]]
                if len(pix) > points_per_class:
                    rng = np.random.default_rng([n, int(c)])
                    pix = np.sort(rng.choice(pix, points_per_class, replace=False))
                start[n, c], num[n, c] = total, len(pix)
                points.append(np.stack([pix % width, pix // width], 1).astype(np.int32))
                total += len(pix)
        pts = np.concatenate(points) if points else np.zeros((0, 2), np.int32)
        return cls(counts=counts, start=start, num=num, points=pts)

    def images_with(self, cls: int) -> np.ndarray:
        """int64 indices of the images holding at least one pixel of class ``cls``."""
        return np.flatnonzero(self.counts[:, cls] > 0)

    def points_of(self, image: int, cls: int) -> np.ndarray:
        """int32 (P, 2) stored ``(x, y)`` pixels of class ``cls`` in image ``image`` (P = 0 if absent)."""
        s = int(self.start[image, cls])
        return self.points[s : s + int(self.num[image, cls])]

    def save(self, path: Path) -> None:
        """Write atomically (temporary file + rename) as ``.npz``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        os.close(fd)
        try:
            with open(tmp, "wb") as f:
                np.savez(f, counts=self.counts, start=self.start, num=self.num, points=self.points)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; the cache is shared like the data
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> ClassPixelIndex:
        """Read a file written by :meth:`save`."""
        with np.load(path) as z:
            return cls(counts=z["counts"], start=z["start"], num=z["num"], points=z["points"])


#: attributes of a dataset that are no setting of its labels (the label files enter the key on their own)
_NOT_SETTINGS = {"pairs", "transform", "root"}


def _describe(value):
    """``value`` as plain JSON (arrays by dtype, shape and SHA-256 of their bytes); raises TypeError for others."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        data = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return {"dtype": str(value.dtype), "shape": list(value.shape), "sha256": data}
    if isinstance(value, Mapping):
        return [[_describe(k), _describe(v)] for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))]
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    raise TypeError(type(value).__name__)


def dataset_settings(dataset) -> dict:
    """The settings of ``dataset`` that can change its labels: every attribute that is plain data (numbers,
    strings, lists, dicts, numpy arrays such as a label lookup table) except the file pairs, the transform and the
    root, plus ``reduce_zero_label`` (a class attribute by default)."""
    out = {}
    for k, v in vars(dataset).items():
        if k in _NOT_SETTINGS:
            continue
        try:
            out[k] = _describe(v)
        except TypeError:
            continue  # callables and other objects: no label setting
    out["reduce_zero_label"] = bool(getattr(dataset, "reduce_zero_label", False))
    return out


def cache_key(dataset, points_per_class: int, name: str | None = None) -> tuple[str, str]:
    """SHA-256 (hex) keys of the index of ``dataset`` (see the module docstring).

    Args:
        dataset: a :class:`~datasets.base.SegmentationDataset`.
        points_per_class: stored pixels per (image, class).
        name: the dataset config name (``dataset.name``, e.g. ``voc2010_context_60``); None when unknown.

    Returns:
        ``(config, files)``: ``config`` hashes everything but the label files (config name, class, label-mapping
        code, settings, split, ``points_per_class``, format version); ``files`` hashes ``config`` and the label
        files (path relative to the root, size, mtime).
    """
    root = Path(dataset.root)
    files = []
    for _img, lab in dataset.pairs:
        st = Path(lab).stat() if lab is not None else None
        rel = os.path.relpath(lab, root) if lab is not None else None
        files.append([rel, st.st_size if st else None, st.st_mtime_ns if st else None])
    cls = type(dataset)
    blob = {
        "version": INDEX_VERSION,
        "name": name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "map_label": inspect.getsource(cls.map_label),
        "settings": dataset_settings(dataset),
        "split": str(dataset.split),
        "points_per_class": int(points_per_class),
    }
    config = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()
    content = hashlib.sha256(json.dumps([config, files]).encode()).hexdigest()
    return config, content


#: what a cache file that is being replaced, or was cut short, may raise on reading (it is then rebuilt)
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def load_or_build_index(
    dataset, points_per_class: int = 64, fallback_dir: str | os.PathLike | None = None, name: str | None = None
):
    """The cached :class:`ClassPixelIndex` of ``dataset`` (built and saved on a miss).

    Args:
        dataset: a :class:`~datasets.base.SegmentationDataset` with labels.
        points_per_class: stored pixels per (image, class).
        fallback_dir: cache folder when ``<root>/.segbench_cache`` cannot be written (e.g. ``${LOGDIR}/cache``).
        name: the dataset config name (``dataset.name``): configs sharing a data root keep separate files.

    Returns:
        ``(index, path)``: the index and the cache file it was read from or written to (None if unwritable).

    Raises:
        DatasetError: the split has no labels or a label is invalid (from :meth:`ClassPixelIndex.build`).
    """
    config, content = cache_key(dataset, points_per_class, name)
    prefix = f"class_index_{dataset.split}_{config[:16]}_"
    file_name = f"{prefix}{content[:16]}.npz"
    root = Path(dataset.root)
    # a data folder without any write bit is read-only by intent, even for root (who may write anyway)
    dirs = [root / CACHE_DIR] if os.access(root, os.W_OK) and root.stat().st_mode & 0o222 else []
    if fallback_dir is not None:
        dirs.append(
            Path(fallback_dir) / type(dataset).__name__ / hashlib.sha1(str(dataset.root).encode()).hexdigest()[:8]
        )
    for d in dirs:
        try:  # no exists-check first: the file may go between the check and the read
            index = ClassPixelIndex.load(d / file_name)
        except FileNotFoundError:
            continue
        except _UNREADABLE as e:
            log.warning(f"class-uniform index: cannot read {d / file_name} ({e}); rebuilding it")
            continue
        log.info(f"class-uniform index: {d / file_name}")
        return index, d / file_name
    log.info(f"class-uniform index: reading {len(dataset.pairs)} labels of split {dataset.split!r} once")
    index = ClassPixelIndex.build(dataset, points_per_class)
    for d in dirs:
        try:
            index.save(d / file_name)
        except OSError as e:
            log.info(f"class-uniform index: cannot write {d} ({e}); trying the next cache folder")
            continue
        for stale in d.glob(f"{prefix}*.npz"):  # older label files of this very config only
            if stale.name != file_name:
                stale.unlink(missing_ok=True)
        log.info(f"class-uniform index: wrote {d / file_name}")
        return index, d / file_name
    log.warning("class-uniform index: no cache folder is writable; the index is rebuilt by every run")
    return index, None
