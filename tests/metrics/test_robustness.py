"""metrics.robustness: mPC and rPC on hand-made per-corruption mIoUs."""

from __future__ import annotations

import math

import pytest

from metrics.robustness import robustness_metrics


def test_mpc_is_the_mean_over_corruptions_of_the_mean_over_severities():
    miou = {("fog", 1): 0.6, ("fog", 2): 0.4, ("snow", 1): 0.3, ("snow", 2): 0.1}
    got = robustness_metrics(0.8, miou)
    assert got["mIoU_corruption"] == pytest.approx({"fog": 0.5, "snow": 0.2})
    assert got["mPC"] == pytest.approx(0.35)  # (0.5 + 0.2) / 2
    assert got["rPC"] == pytest.approx(0.35 / 0.8)  # 43.75 %
    assert got["corruptions"] == ["fog", "snow"] and got["severities"] == [1, 2]


def test_one_corruption_one_severity_and_a_zero_clean_miou():
    got = robustness_metrics(0.0, {("fog", 3): 0.25})
    assert got["mPC"] == 0.25 and got["rPC"] is None
    assert robustness_metrics(math.nan, {("fog", 3): 0.25})["rPC"] is None


def test_an_incomplete_grid_is_refused():
    with pytest.raises(ValueError, match=r"corruption 'snow' has severities \[1\], others \[1, 2\]"):
        robustness_metrics(0.5, {("fog", 1): 0.5, ("fog", 2): 0.4, ("snow", 1): 0.3})
    with pytest.raises(ValueError, match="no corrupted evaluation"):
        robustness_metrics(0.5, {})
