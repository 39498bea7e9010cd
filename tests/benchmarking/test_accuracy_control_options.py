"""``calibration.accuracy_control`` options: held-out frames disjoint from the calibration frames, and bad values
refused in one line naming the key (benchmarking/backends/accuracy_control.py, benchmarking/parity.py)."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import ConfigCompositionException

from benchmarking.backends import AccuracyControl, BackendOptions
from benchmarking.parity import evenly_spaced, held_out_samples, split_images
from benchmarking.runner import run_benchmark
from tests.conftest import compose_cfg

KEY = "calibration.accuracy_control"


def test_held_out_frames_are_disjoint_from_the_calibration_frames():
    cfg = compose_cfg(["device=cpu"], config_name="benchmark")
    assert evenly_spaced(24, 4) == [0, 8, 15, 23] and evenly_spaced(3, 5) == [0, 1, 2] and evenly_spaced(0, 2) == []
    calibration = split_images(cfg, "train", 4)  # data/camvid: 24 training frames; indices 0, 8, 15, 23
    held_out = held_out_samples(cfg, "train", 4, 3)  # evenly spaced over the other 20: their 0th, 10th, 19th
    assert len(held_out) == 3
    assert not any(torch.equal(x, c) for x, _ in held_out for c in calibration)
    everything = split_images(cfg, "train", 24)
    assert [next(i for i, e in enumerate(everything) if torch.equal(x, e)) for x, _ in held_out] == [1, 12, 22]
    x, mask = held_out[0]
    assert x.shape == (1, 3, 360, 480) and mask.shape == (1, 360, 480) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) <= set(range(11)) | {255}  # trainIds and ignore
    with pytest.raises(ValueError, match=r"split 'train' has 24 images and calibration.images takes 24; no held-out"):
        held_out_samples(cfg, "train", 32, 4)


OK = {"enabled": True, "max_drop": 0.5, "images": 4, "max_iters": 10}


@pytest.mark.parametrize(
    "options, message",
    [
        (OK | {"image": 4}, f"{KEY}.image: Key 'image' not in 'AccuracyControlConfig'"),
        (OK | {"enabled": "maybe"}, f"{KEY}.enabled: Value 'maybe' is not a valid bool (type str)"),
        (OK | {"max_drop": -1}, f"{KEY}.max_drop must be a number of mIoU points in [0, 100], got -1.0"),
        (OK | {"max_drop": "x"}, f"{KEY}.max_drop: Value 'x' of type 'str' could not be converted to Float"),
        (OK | {"images": 0}, f"{KEY}.images must be an integer >= 1, got 0"),
        (OK | {"max_iters": 0}, f"{KEY}.max_iters must be an integer >= 1 or null, got 0"),
        ({"enabled": True, "images": 4, "max_iters": None}, f"{KEY}.max_drop: Structured config of type `AccuracyControlConfig` has missing mandatory value: max_drop"),
    ],
)  # fmt: skip
def test_bad_options_fail_in_one_line_naming_the_key(options, message):
    with pytest.raises(ValueError) as e:
        AccuracyControl.from_options(options)
    assert str(e.value) == message


def test_disabled_is_plain_quantize_and_the_config_default_is_off():
    cfg = compose_cfg(["device=cpu"], config_name="benchmark")
    options = BackendOptions.from_config(cfg)
    assert options.accuracy_control is None and options.calibration_note.endswith(", nncf.quantize)")
    ac = AccuracyControl.from_options({"enabled": True, "max_drop": 0.25, "images": 8, "max_iters": None})
    assert (ac.max_drop, ac.images, ac.max_iters) == (0.25, 8, None)
    assert ac.note() == "nncf.quantize_with_accuracy_control: max_drop 0.25 mIoU points on 8 held-out train images"
    assert AccuracyControl.from_options(OK | {"enabled": False}) is None
    assert AccuracyControl.from_options(cfg.calibration.accuracy_control) is None  # the config default: off
    with pytest.raises(ValueError, match=rf"{KEY}.max_drop must be .* got -2"):  # checked also when disabled
        AccuracyControl.from_options(OK | {"enabled": False, "max_drop": -2})


def test_a_bad_value_is_refused_when_the_config_is_composed():
    with pytest.raises(ConfigCompositionException, match=rf"Error merging override {KEY}.images=many") as e:
        compose_cfg([f"{KEY}.images=many"], config_name="benchmark")
    assert f"full_key: {KEY}.images" in str(e.value.__cause__)


def test_a_bad_value_from_the_command_line_is_a_one_line_failed_record(tmp_path):
    overrides = ["model._target_=tests.benchmarking.fakes.TinyConvNet", "device=cpu", "resolution=48x32"]
    overrides += ["warmup=1", "iterations=1", f"{KEY}.enabled=true", f"{KEY}.images=0"]
    rec, _ = run_benchmark(compose_cfg(overrides, config_name="benchmark"), tmp_path)
    assert rec.status == "failed"
    assert rec.error == f"ValueError: {KEY}.images must be an integer >= 1, got 0"
