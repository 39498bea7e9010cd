"""Test-time keep-ratio resize (MMSeg ``Resize(scale, keep_ratio=True)`` / MMCV ``rescale_size``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inference.engine import infer, predict_labels
from inference.settings import InferenceSettings, keep_ratio_size


def mmseg_rule(h: int, w: int, long_max: int, short_max: int) -> tuple[int, int]:
    """``s = min(long_max / long_side, short_max / short_side)``, sizes rounded half up (``int(x + 0.5)``)."""
    s = min(long_max / max(h, w), short_max / min(h, w))
    return int(h * s + 0.5), int(w * s + 0.5)


@pytest.mark.parametrize(
    "h,w,scale,expected",
    [
        (512, 683, (2048, 512), (512, 683)),  # ADE20K val frame: unchanged
        (364, 500, (2048, 512), (512, 703)),  # up: 500 * 512/364 = 703.3
        (2988, 5312, (2048, 512), (512, 910)),  # a 16-megapixel photo: 5312 * 512/2988 = 910.2
        (4000, 3000, (2048, 512), (683, 512)),  # portrait: 4000 * 512/3000 = 682.7
        (1024, 2048, (2048, 1024), (1024, 2048)),  # Cityscapes frame at the Cityscapes test scale
        (300, 4000, (2048, 512), (154, 2048)),  # panorama: the long side bounds (2048/4000 < 512/300)
        (375, 500, (520, 520), (390, 520)),  # VOC Context: long side 520
        (100, 5, (50, 10), (50, 3)),  # s = 0.5: 2.5 rounds up to 3 (MMCV), not to even (Python's round)
        (512, 683, (512, 2048), (512, 683)),  # order of the scale is free
    ],
)
def test_keep_ratio_size_is_mmseg_rule(h, w, scale, expected):
    assert keep_ratio_size(h, w, scale) == expected == mmseg_rule(h, w, max(scale), min(scale))


class SizeProbe(nn.Module):
    """Records the input size; logits = a 1x1 convolution at 1/2 resolution (like a stride-2 model)."""

    def __init__(self, k: int = 5):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, k, 1)
        self.seen = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        return {"out": self.conv(nn.functional.avg_pool2d(x, 2))}


def test_infer_runs_at_the_test_scale_and_answers_at_the_original_size():
    model = SizeProbe().eval()
    x = torch.randn(1, 3, 60, 90)
    probs = infer(model, x, InferenceSettings(resize=[45, 30], scales=[1.0, 2.0]))
    assert model.seen == [(30, 45), (60, 90)]  # 90x60 -> s = 0.5 -> 45x30; scales apply to the resized image
    assert probs.shape == (1, 5, 60, 90)
    assert torch.allclose(probs.sum(1), torch.ones(1, 60, 90))


@pytest.mark.parametrize(
    "settings",
    [
        InferenceSettings(resize=[45, 30]),
        InferenceSettings(resize=[45, 30], scales=[0.75, 1.0], flip=True),
        InferenceSettings(resize=[200, 140], mode="slide", crop_size=[64, 64], stride=[48, 48]),
    ],
)
def test_banded_labels_equal_full_probabilities(settings):
    """predict_labels upsamples band by band (a few rows per band here); argmax of infer on the full buffer."""
    model = SizeProbe().eval()
    x = torch.randn(2, 3, 60, 90)
    full = infer(model, x, settings).argmax(1)
    banded = predict_labels(model, x, settings, band_bytes=4 * 2 * 5 * 90 * 7)  # 7 rows per band
    assert banded.shape == (2, 60, 90) and torch.equal(banded, full)


def test_resize_setting_is_checked():
    with pytest.raises(ValueError, match="inference resize must be positive"):
        InferenceSettings(resize=[0, 512])
    assert InferenceSettings(resize=512).resize == (512, 512)
