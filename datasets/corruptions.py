"""Image corruptions for robustness evaluation: the 15 benchmark corruptions x 5 severities of ImageNet-C.

The corruptions are those of Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations" (ICLR 2019), as packaged for images of any size by Michaelis et al., "Benchmarking Robustness in
Object Detection: Autonomous Driving when Winter is Coming" (2019; the ``imagecorruptions`` package) and used for
semantic segmentation by Kamann & Rother, "Benchmarking the Robustness of Semantic Segmentation Models" (CVPR 2020;
IJCV 2021): noise (gaussian, shot, impulse), blur (defocus, glass, motion, zoom), weather (snow, frost, fog,
brightness) and digital (contrast, elastic, pixelate, JPEG).

:func:`corrupt` is deterministic: the package draws from NumPy's global RNG, which is seeded for each call from
``(seed, corruption, severity, the image's pixels)`` and restored afterwards, so an image gets the same corrupted
pixels whatever its position in the loader, the batch size or the number of workers, and the caller's RNG state is
unchanged. :class:`Corrupt` is the albumentations step that applies it to the image (never the label) before
normalisation.
"""

from __future__ import annotations

import hashlib
import importlib
import types
import warnings

import albumentations as A
import cv2
import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)
_PACKAGE = None  # imagecorruptions, once made to run (_load_imagecorruptions)


def _load_imagecorruptions():
    """Import ``imagecorruptions`` 1.1.2 and make it run on NumPy 2 / scikit-image >= 0.19 without patching either.

    The package (last release 1.1.2, 2020) calls ``skimage.filters.gaussian(..., multichannel=True)``, removed in
    scikit-image 0.19 (now ``channel_axis=-1``: ``glass_blur`` and the validation corruption ``gaussian_blur`` raise
    TypeError), uses ``np.float_``, removed in NumPy 2.0 (``fog`` raises AttributeError), and draws impulse noise
    with ``skimage.util.random_noise``, whose RNG is no longer NumPy's global one (so seeding did not fix it). Only
    the package's own module globals are replaced: a ``gaussian`` that maps ``multichannel`` to ``channel_axis``, a
    proxy of ``np`` that adds ``float_ = float64``, and a proxy of ``sk`` whose ``util.random_noise`` takes its seed
    from NumPy's global RNG. Its import-time warnings (``pkg_resources`` and ``scipy.ndimage.interpolation``
    deprecations) are silenced for that import only.

    Raises:
        ImportError: the package is not installed (names the requirements file).
    """
    global _PACKAGE
    if _PACKAGE is not None:
        return _PACKAGE
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*scipy.ndimage.interpolation", category=DeprecationWarning)
            package = importlib.import_module("imagecorruptions")
    except ImportError as e:
        raise ImportError(
            f"robustness evaluation needs imagecorruptions==1.1.2 ({e}); install requirements.txt"
        ) from None
    module = package.corruptions
    skimage = module.sk
    from skimage.filters import gaussian
    from skimage.util import random_noise

    def gaussian_channel_axis(image, *args, multichannel=None, **kwargs):
        if multichannel:
            kwargs.setdefault("channel_axis", -1)
        return gaussian(image, *args, **kwargs)

    def random_noise_seeded(image, *args, **kwargs):
        kwargs.setdefault("rng", int(np.random.randint(2**31 - 1)))  # noqa: NPY002 (the package's RNG)
        return random_noise(image, *args, **kwargs)

    class Proxy(types.ModuleType):
        """A module namespace that adds or replaces a few names and forwards every other to ``target``."""

        def __init__(self, target, **names):
            super().__init__(target.__name__)
            self.__dict__.update(names)
            self._target = target

        def __getattr__(self, name):
            return getattr(self._target, name)

    module.gaussian = gaussian_channel_axis
    module.np = Proxy(np, float_=np.float64)
    module.sk = Proxy(skimage, util=types.SimpleNamespace(random_noise=random_noise_seeded))
    _PACKAGE = package
    return package


def corruption_names() -> list[str]:
    """The 15 benchmark corruptions in the package's order (``get_corruption_names('common')``; the four validation
    corruptions ``speckle_noise``, ``gaussian_blur``, ``spatter``, ``saturate`` are not part of the benchmark).

    Returns:
        names, e.g. ``["gaussian_noise", "shot_noise", ..., "jpeg_compression"]``.
    """
    return list(_load_imagecorruptions().get_corruption_names("common"))


def check_severity(severity) -> None:
    """Validate a severity.

    Raises:
        ValueError: not an integer in 1..5 (one line).
    """
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or int(severity) not in SEVERITIES:
        raise ValueError(f"corruption severity {severity!r} is not an integer in 1..5")


def check_corruption(name: str, severity: int | None = None) -> None:
    """Validate a corruption name (one of the 15, or a validation corruption of the package) and a severity.

    Raises:
        ValueError: an unknown name (one line listing the valid names) or a severity outside 1..5.
    """
    valid = corruption_names() + list(_load_imagecorruptions().get_corruption_names("validation"))
    if name not in valid:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(valid)}")
    if severity is not None:
        check_severity(severity)


def corruption_seed(image: np.ndarray, name: str, severity: int, seed: int = 0) -> int:
    """The NumPy seed of one corrupted image: a BLAKE2b hash of ``(seed, name, severity)`` and the image's shape and
    pixels, as an integer in ``[0, 2**32)``.

    Args:
        image: uint8 (H, W, 3).
        name: corruption name.
        severity: 1..5.
        seed: the experiment's corruption seed.
    """
    h = hashlib.blake2b(f"{int(seed)}|{name}|{int(severity)}|{image.shape}".encode(), digest_size=8)
    h.update(np.ascontiguousarray(image).data)
    return int.from_bytes(h.digest()[:4], "little")


def corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Corrupt one RGB image with ``name`` at ``severity`` (Hendrycks & Dietterich 2019; Michaelis et al. 2019).

    NumPy's global RNG is seeded with :func:`corruption_seed` for the call and restored afterwards. The package
    keeps the size for the 15 benchmark corruptions; should a corruption return another size (its frost and zoom
    code crops and rescales internally), the result is resized back with bilinear interpolation, so the label stays
    aligned.

    Args:
        image: uint8 (H, W, 3), H and W >= 32.
        name: one of :func:`corruption_names` (or a validation corruption).
        severity: 1..5.
        seed: corruption seed; the same seed gives the same pixels.

    Returns:
        uint8 (H, W, 3), the same size as ``image``.

    Raises:
        ValueError: unknown name, bad severity, not an uint8 (H, W, 3) image, or H or W < 32.
    """
    check_corruption(name, severity)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"corrupt: expected an uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < 32:
        raise ValueError(f"corrupt: image {image.shape[1]}x{image.shape[0]} is smaller than 32 pixels on a side")
    package = _load_imagecorruptions()
    # the package draws from NumPy's global RNG: seed it for this call, then give the caller's state back
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(corruption_seed(image, name, severity, seed))  # noqa: NPY002
        out = package.corrupt(np.ascontiguousarray(image), severity=int(severity), corruption_name=name)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    if out.shape[:2] != image.shape[:2]:
        out = cv2.resize(out, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out, dtype=np.uint8).reshape(image.shape)


class Corrupt(A.ImageOnlyTransform):
    """Albumentations step applying :func:`corrupt` to the image only (masks pass unchanged).

    :func:`inference.validate.eval_loader` puts it first in the test pipeline (before ``Normalize``) when a
    corruption is evaluated.

    Args:
        corruption: corruption name (:func:`corruption_names`).
        severity: 1..5.
        corruption_seed: the ``seed`` of :func:`corrupt`.
        p: probability (1: every image).

    Raises:
        ValueError: unknown name or bad severity (at construction).
    """

    def __init__(self, corruption: str, severity: int, corruption_seed: int = 0, p: float = 1.0):
        super().__init__(p=p)
        check_corruption(corruption, severity)
        self.corruption, self.severity = str(corruption), int(severity)
        self.corruption_seed = int(corruption_seed)  # ``seed`` is albumentations' own

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        """The corrupted uint8 (H, W, 3) image."""
        return corrupt(img, self.corruption, self.severity, self.corruption_seed)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        """Arguments shown by albumentations' serialisation."""
        return ("corruption", "severity", "corruption_seed")
