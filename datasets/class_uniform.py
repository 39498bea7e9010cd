"""Class-uniform sampling: a fraction of each epoch's crops is centred on a pixel of a uniformly drawn class.

After Zhu et al., "Improving Semantic Segmentation via Video Propagation and Label Relaxation" (CVPR 2019) and
NVIDIA semantic-segmentation's ``class_uniform_pct`` (used by MS-OCR, Tao et al. 2020): rare classes (CamVid
SignSymbol, Pedestrian, Bicyclist) are seen in ``pct / C`` of the crops each instead of their pixel share.

Per epoch ``e`` (``class_uniform.pct=p``, ``N`` train images, ``C`` classes present in the split):

* ``round(p * N)`` of the epoch's ``N`` slots, chosen by a permutation seeded with ``(seed, e)``, are class-uniform;
  the k-th of them gets class ``order[k % C]`` (``order`` a seeded permutation of the classes), so each class
  gets ``floor`` or ``ceil`` of ``p * N / C`` slots: exactly uniform over classes, not only in expectation;
* a class-uniform slot picks an image containing the class and one of its stored pixels uniformly, with a
  generator seeded by ``(seed, e, slot)``; the other slots load their own image as before;
* the crop (:class:`CentredCrop`, which replaces the pipeline's ``albumentations.RandomCrop``) is centred on that
  pixel after the preceding transforms (scale, pad) moved it, shifted only to stay inside the image; the rest
  of the pipeline (flip, ...) is unchanged.

Everything is a function of ``(seed, epoch, slot)`` (training/determinism.py): reproducible, worker- and
resume-independent. NVIDIA computes per-tile class centroids; here a class's pixels of an image are sampled
uniformly (``points_per_class`` of them), so large objects are not reduced to one point.

The per-image index of the classes' pixels, and its cache under the data root, is
:class:`datasets.class_index.ClassPixelIndex` (:func:`datasets.class_index.load_or_build_index`).
"""

from __future__ import annotations

import albumentations as A
import numpy as np

from core.schema import ClassUniformConfig, checked
from datasets.class_index import ClassPixelIndex, load_or_build_index

_PLAN_STREAM, _PICK_STREAM = 0xC1A55, 0x9C4  # SeedSequence entropy words: distinct streams per use


class CentredCrop(A.RandomCrop):
    """``albumentations.RandomCrop`` that, given a keypoint, centres the crop on its pixel.

    Without ``keypoints`` it is RandomCrop (same random draws). With ``keypoints`` (the first one, moved by the
    preceding transforms) the window ``height x width`` starts at ``floor(k) - size // 2`` per axis, clamped to
    the (padded) image, so the keypoint's pixel is the crop's centre unless that would leave the image.
    """

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict:
        out = super().get_params_dependent_on_data(params, data)
        keypoints = data.get("keypoints")
        if keypoints is None or len(keypoints) == 0:
            return out
        h, w = params["shape"][:2]
        x, y = float(keypoints[0][0]), float(keypoints[0][1])
        pad = out.get("pad_params")
        if pad is not None:
            h, w = h + pad["pad_top"] + pad["pad_bottom"], w + pad["pad_left"] + pad["pad_right"]
            x, y = x + pad["pad_left"], y + pad["pad_top"]
        x0 = int(min(max(int(np.floor(x)) - self.width // 2, 0), w - self.width))
        y0 = int(min(max(int(np.floor(y)) - self.height // 2, 0), h - self.height))
        out["crop_coords"] = (x0, y0, x0 + self.width, y0 + self.height)
        return out


def with_centred_crop(transform: A.Compose) -> A.Compose:
    """``transform`` with its ``albumentations.RandomCrop`` replaced by :class:`CentredCrop` and keypoints enabled.

    Raises:
        ValueError: the pipeline has no (or several) ``albumentations.RandomCrop`` (class-uniform sampling centres
            that crop; names what the pipeline holds).
    """
    ops = list(transform.transforms)
    crops = [i for i, t in enumerate(ops) if type(t) is A.RandomCrop]
    if len(crops) != 1:
        names = [type(t).__name__ for t in ops]
        raise ValueError(
            f"class_uniform.pct > 0 needs exactly one albumentations.RandomCrop in augmentation.train; it holds {names}"
        )
    old = ops[crops[0]]
    ops[crops[0]] = CentredCrop(
        height=old.height,
        width=old.width,
        pad_if_needed=old.pad_if_needed,
        pad_position=old.pad_position,
        border_mode=old.border_mode,
        fill=old.fill,
        fill_mask=old.fill_mask,
        p=old.p,
    )
    return A.Compose(ops, keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))


class ClassUniformPlan:
    """Which image, and which pixel to centre on, each slot of an epoch gets (see the module docstring).

    Args:
        index: the split's :class:`ClassPixelIndex`.
        pct: fraction in [0, 1] of each epoch's slots that are class-uniform (``class_uniform.pct``, range checked
            by :class:`core.schema.ClassUniformConfig`).
    """

    def __init__(self, index: ClassPixelIndex, pct: float):
        self.index, self.pct = index, float(pct)
        self.classes = np.flatnonzero(index.counts.sum(0) > 0)  # classes present in the split
        self._images = {int(c): index.images_with(int(c)) for c in self.classes}
        self._epoch: tuple[int, int] | None = None
        self._slot_class: np.ndarray | None = None

    def slot_classes(self, seed: int, epoch: int) -> np.ndarray:
        """int64 (N,) class of every slot of epoch ``epoch`` (-1: an ordinary slot)."""
        if self._epoch != (seed, epoch):
            n = len(self.index.counts)
            rng = np.random.default_rng([int(seed), int(epoch), _PLAN_STREAM])
            uniform = rng.permutation(n)[: round(self.pct * n)]
            order = self.classes[rng.permutation(len(self.classes))]
            out = np.full(n, -1, np.int64)
            if len(order):
                out[uniform] = order[np.arange(len(uniform)) % len(order)]
            self._epoch, self._slot_class = (seed, epoch), out
        return self._slot_class

    def item(self, seed: int, epoch: int, slot: int):
        """``slot`` itself (an ordinary slot) or ``(image index, (x + 0.5, y + 0.5))``: a pixel centre to crop at."""
        cls = int(self.slot_classes(seed, epoch)[slot])
        if cls < 0:
            return slot
        rng = np.random.default_rng([int(seed), int(epoch), int(slot), _PICK_STREAM])
        image = int(rng.choice(self._images[cls]))
        pts = self.index.points_of(image, cls)
        x, y = pts[int(rng.integers(len(pts)))]
        return image, (float(x) + 0.5, float(y) + 0.5)


def enable_class_uniform(train_set, settings, fallback_dir=None, name: str | None = None) -> ClassUniformPlan | None:
    """Switch ``train_set`` to class-uniform crops when ``settings.pct > 0``; returns the plan (None when off).

    Replaces ``train_set.transform`` by :func:`with_centred_crop` of it and loads/builds the cached index.

    Args:
        train_set: the training :class:`~datasets.base.SegmentationDataset`.
        settings: the ``class_uniform`` config node (``pct``, ``points_per_class``; :class:`core.schema.ClassUniformConfig`)
            or None (off).
        fallback_dir: cache folder when the data folder is read-only.
        name: the dataset config name (``dataset.name``), part of the cache key.

    Raises:
        ValueError: a value of ``class_uniform`` of the wrong type or out of its range, or an unknown key (named).
    """
    if settings is None:
        return None
    settings = checked(settings, ClassUniformConfig, "class_uniform")
    if settings.pct == 0.0:
        return None
    index, _ = load_or_build_index(train_set, settings.points_per_class, fallback_dir, name)
    plan = ClassUniformPlan(index, settings.pct)
    train_set.transform = with_centred_crop(train_set.transform)
    return plan
