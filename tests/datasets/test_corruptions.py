"""datasets.corruptions: every benchmark corruption runs on NumPy 2 / scikit-image 0.26, seeding, validation, and
the test pipeline corrupts the image only."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from datasets import build_dataset
from datasets.corruptions import SEVERITIES, Corrupt, corrupt, corruption_names
from datasets.transforms import build_transforms
from tests.conftest import compose_cfg

BENCHMARK = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
]


def small_image(seed: int = 0, h: int = 40, w: int = 56) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_the_15_benchmark_corruptions():
    assert corruption_names() == BENCHMARK


@pytest.mark.parametrize("name", BENCHMARK)
def test_each_corruption_runs_and_keeps_the_size(name):
    """glass_blur (skimage ``multichannel``) and fog (``np.float_``) raised before the compatibility layer."""
    image = small_image()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing deprecated on the way either
        out = corrupt(image, name, 5)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert not np.array_equal(out, image)


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "motion_blur", "frost", "fog"])
def test_same_seed_same_pixels_other_seed_other_pixels(name):
    image = small_image()
    np.random.seed(123)  # noqa: NPY002 (the global RNG the package uses)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    a, b = corrupt(image, name, 3, seed=0), corrupt(image, name, 3, seed=0)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, corrupt(image, name, 3, seed=1))
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002 (the caller's RNG is kept)


def test_seed_depends_on_the_image_and_severity():
    a, b = small_image(0), small_image(1)
    noise_a = corrupt(a, "gaussian_noise", 2).astype(int) - a
    noise_b = corrupt(b, "gaussian_noise", 2).astype(int) - b
    assert not np.array_equal(noise_a, noise_b)  # two images never share one noise pattern
    assert not np.array_equal(corrupt(a, "gaussian_noise", 2), corrupt(a, "gaussian_noise", 3))


def test_unknown_name_is_one_line_listing_the_valid_names():
    with pytest.raises(ValueError) as e:
        corrupt(small_image(), "nope", 1)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("unknown corruption 'nope'; valid: gaussian_noise, shot_noise")
    assert all(n in msg for n in BENCHMARK)


@pytest.mark.parametrize("severity", [0, 6, 2.0, True, "3"])
def test_severity_outside_1_to_5_is_one_line(severity):
    with pytest.raises(ValueError, match=r"^corruption severity .* is not an integer in 1\.\.5$"):
        Corrupt("fog", severity)


def test_bad_image_is_refused():
    with pytest.raises(ValueError, match="uint8 \\(H, W, 3\\)"):
        corrupt(small_image().astype(np.float32), "fog", 1)
    with pytest.raises(ValueError, match="smaller than 32"):
        corrupt(small_image(h=20), "fog", 1)


def test_pipeline_corrupts_the_image_before_normalisation_and_never_the_label():
    cfg = compose_cfg(["dataset=camvid"])
    d = cfg.dataset
    clean = build_dataset(d, "val", build_transforms([], d.mean, d.std))
    raw = build_dataset(d, "val")  # uint8 tensors, no transform
    steps = [{"_target_": "datasets.corruptions.Corrupt", "corruption": "gaussian_noise", "severity": 2}]
    noisy = build_dataset(d, "val", build_transforms(steps, d.mean, d.std))
    s_clean, s_noisy, s_raw = clean[0], noisy[0], raw[0]
    assert torch.equal(s_noisy["mask"], s_clean["mask"]) and s_noisy["name"] == s_clean["name"]
    image = s_raw["image"].permute(1, 2, 0).numpy()
    expected = (corrupt(image, "gaussian_noise", 2) / 255.0 - np.asarray(d.mean)) / np.asarray(d.std)
    assert s_noisy["image"].dtype == torch.float32 and s_noisy["image"].shape == s_clean["image"].shape
    np.testing.assert_allclose(s_noisy["image"].permute(1, 2, 0).numpy(), expected, atol=1e-5)
    assert SEVERITIES == (1, 2, 3, 4, 5)


def test_a_result_of_another_size_is_resized_back(monkeypatch):
    """None of the 15 changes the size of 480x360 or 56x40 images; should one do so, the label stays aligned."""
    from datasets.corruptions import _load_imagecorruptions

    package = _load_imagecorruptions()
    monkeypatch.setattr(package, "corrupt", lambda image, severity, corruption_name: image[:-3, :-5])
    image = small_image()
    out = corrupt(image, "frost", 1)
    assert out.shape == image.shape and out.dtype == np.uint8
