"""Albumentations pipelines built from the ``augmentation`` config group.

``augmentation.train`` / ``augmentation.test`` are lists of albumentations transforms given by
``_target_`` (instantiated by Hydra); normalisation with the dataset's ``mean``/``std`` (0..1 scale,
RGB) and ``ToTensorV2`` are appended here so every pipeline ends with a float32[3,H,W] tensor.
"""

from __future__ import annotations

import albumentations as A
from albumentations.pytorch import ToTensorV2
from hydra.utils import instantiate


def build_transforms(steps, mean, std, max_pixel_value: float = 255.0) -> A.Compose:
    """Compose the configured transforms + ``Normalize(mean, std)`` + ``ToTensorV2``.

    Args:
        steps: list of configs with ``_target_`` (albumentations classes) or None.
        mean: per-channel means of the images in the order the model sees them, on the 0..1 scale
            (ImageNet: [0.485, 0.456, 0.406]).
        std: per-channel standard deviations, same order and scale (ImageNet: [0.229, 0.224, 0.225]).
        max_pixel_value: value of the image's full scale (255 for uint8 images).
    """
    ops = [instantiate(s) for s in (steps or [])]
    ops += [A.Normalize(mean=list(mean), std=list(std), max_pixel_value=max_pixel_value), ToTensorV2()]
    return A.Compose(ops)
