"""The one image reader of segbench: datasets, predict.py and benchmark photos read pixels through it.

:func:`read_image` returns uint8 RGB whatever mode PIL opens the file in, with the EXIF orientation applied
(``PIL.ImageOps.exif_transpose``) and high bit depths scaled, not clipped:

=============  ==========================================================================================
PIL mode       conversion to uint8 RGB
=============  ==========================================================================================
``RGB``        as is
``L``, ``P``   grey replicated / palette looked up (``Image.convert("RGB")``)
``RGBA``,      alpha dropped (``LA``: grey replicated)
``LA``, ``PA``
``CMYK``,      PIL's conversion (``Image.convert("RGB")``)
``YCbCr``,
``LAB``, ``HSV``
``1``          0 -> 0, 1 -> 255
``I;16*``      16-bit grey: ``v * 255 / 65535`` rounded (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``)
``I``          32-bit int grey: scaled by 255 / 65535 when the values fit 16 bits (16-bit PNGs open as ``I``),
               else by 255 / max
``F``          float grey: values in [0, 1] scaled by 255, otherwise min-max scaled to [0, 255]
=============  ==========================================================================================

``convert("RGB")`` alone clips 16-bit grey to 255 (a white image): that is why this module exists.

:func:`read_label` returns the raw label values (int64, H x W) without any scaling (16-bit label maps keep
their values), palette images as their palette indices.

Every failure raises :class:`ImageReadError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = None  # large photos are the point; PIL's decompression-bomb guard stops at 89 MP

#: file name endings read as images by datasets, predict.py and benchmark photos
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """A file that cannot be decoded as an image (missing, truncated, not an image, unsupported mode)."""


def _grey_to_uint8(im: Image.Image) -> np.ndarray:
    """uint8 (H, W) of a single-band high-depth image (modes ``I;16*``, ``I``, ``F``), scaled as documented."""
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        a = a.astype(np.float64) * (255.0 / 65535.0)
    elif im.mode == "I":
        a = a.astype(np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        a = a * (255.0 / 65535.0) if lo >= 0 and hi <= 65535 else (a - lo) * (255.0 / max(hi - lo, 1.0))
    else:  # F
        a = a.astype(np.float64)
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        a = a * 255.0 if lo >= 0 and hi <= 1 else (a - lo) * (255.0 / max(hi - lo, 1e-12))
        a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode == "RGB":
        return np.asarray(im)
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        return np.repeat(_grey_to_uint8(im)[:, :, None], 3, axis=2)
    if im.mode == "1":
        return np.repeat((np.asarray(im, dtype=np.uint8) * 255)[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Pixels of ``path`` as uint8 (H, W, 3) RGB, EXIF orientation applied (conversions in the module docstring).

    Raises:
        ImageReadError: the file is missing or cannot be decoded (the file and PIL's reason are named).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            out = _to_rgb(im)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"cannot read image {path}: {e}") from e
    return np.ascontiguousarray(out)


def read_label(path: str | os.PathLike) -> np.ndarray:
    """Raw values of a label map ``path`` as int64 (H, W) (palette images: their indices; 16-bit: the values).

    Multi-channel files are returned as (H, W, C) so that the caller can name the file and the channel count.

    Raises:
        ImageReadError: the file is missing or cannot be decoded (file named).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode in ("LA", "PA"):  # label + alpha: the alpha band is no class
                im = im.getchannel(0)
            return np.asarray(im).astype(np.int64)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"cannot read label {path}: {e}") from e


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of ``path`` after EXIF orientation, read from the header only.

    Raises:
        ImageReadError: the file cannot be opened (named).
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as e:
        raise ImageReadError(f"cannot read image {path}: {e}") from e
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
