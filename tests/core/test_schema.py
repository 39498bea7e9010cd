"""Structured configs (core/schema.py): ``ema``, ``class_uniform``, ``dataset.test`` and ``calibration`` are typed
at compose time, and their ranges are checked when a consumer builds them."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from core.errors import one_line
from core.schema import SCHEMAS, ClassUniformConfig, EmaConfig, EngineConfig, checked
from tests.conftest import compose_cfg

BAD_TYPE = [
    ("train", "ema.decay=abc", "Value 'abc' of type 'str' could not be converted to Float"),
    ("train", "class_uniform.points_per_class=many", "Value 'many' of type 'str' could not be converted to Integer"),
    ("train", "dataset.test.flip=maybe", "Value 'maybe' is not a valid bool (type str)"),
    ("benchmark", "dataset.test.crop_size=512", "Invalid value assigned: int is not a ListConfig, list or tuple."),
    ("benchmark", "calibration.images=many", "Value 'many' of type 'str' could not be converted to Integer"),
    ("benchmark", "calibration.accuracy_control.enabled=maybe", "Value 'maybe' is not a valid bool (type str)"),
]


@pytest.mark.parametrize("config, override, cause", BAD_TYPE)
def test_a_wrong_type_fails_at_compose_time_naming_the_key(config, override, cause):
    key = override.split("=")[0]
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg([override], config_name=config)
    assert one_line(e.value) == f"ConfigCompositionException: Error merging override {override}"
    assert str(e.value.__cause__).splitlines()[0] == cause and f"full_key: {key}" in str(e.value.__cause__)


def test_an_unknown_key_in_a_config_file_fails_at_compose_time(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "typo.yaml").write_text("# @package _global_\nema:\n  decy: 0.999\n")
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg([f"hydra.searchpath=[file://{tmp_path}]", "experiment=typo"])
    assert one_line(e.value) == (
        "ConfigCompositionException: In 'experiment/typo': ConfigKeyError raised while composing config:; "
        "Key 'decy' not in 'EmaConfig'; full_key: ema.decy; object_type=EmaConfig"
    )


@pytest.mark.parametrize(
    "config, key, schema", [("train", "ema", EmaConfig), ("train", "class_uniform", ClassUniformConfig),
                            ("benchmark", "calibration", SCHEMAS["calibration"])],
)  # fmt: skip
def test_an_unknown_key_added_on_the_command_line_fails_when_the_node_is_built(config, key, schema):
    cfg = compose_cfg([f"+{key}.typo=1"], config_name=config)  # Hydra's `+` adds a key to any node
    with pytest.raises(ValueError) as e:
        checked(cfg[key], schema, key)
    assert str(e.value) == f"{key}.typo: Key 'typo' not in '{schema.__name__}'"


@pytest.mark.parametrize(
    "config, override, key, message",
    [
        ("train", "ema.decay=1.5", "ema", "ema.decay=1.5: expected a float in (0, 1), e.g. 0.999, or null to switch EMA off"),
        ("train", "ema.update_every_n_steps=0", "ema", "ema.update_every_n_steps=0: expected an int >= 1"),
        ("train", "class_uniform.pct=1.5", "class_uniform", "class_uniform.pct=1.5: expected a fraction in [0, 1] (NVIDIA's recipe uses 0.5)"),
        ("benchmark", "calibration.images=0", "calibration", "calibration.images must be an integer >= 1, got 0"),
        ("benchmark", "calibration.accuracy_control.max_drop=101", "calibration", "calibration.accuracy_control.max_drop must be a number of mIoU points in [0, 100], got 101.0"),
    ],
)  # fmt: skip
def test_a_value_out_of_range_fails_in_one_line_naming_the_key(config, override, key, message):
    cfg = compose_cfg([override], config_name=config)
    with pytest.raises(ValueError) as e:
        checked(cfg[key], SCHEMAS[key], key)
    assert str(e.value) == message


def test_the_defaults_come_from_the_yaml_files():
    train, bench = compose_cfg([]), compose_cfg([], config_name="benchmark")
    assert checked(train.ema, EmaConfig, "ema") == EmaConfig(None, 1, None)
    assert checked(train.class_uniform, ClassUniformConfig, "class_uniform") == ClassUniformConfig(0.0, 64)
    engine = checked(train.dataset.test, EngineConfig, "dataset.test")
    assert (engine.mode, engine.scales, engine.flip, engine.window_batch, engine.accumulate_on) == (
        "whole",
        [1.0],
        False,
        4,
        None,
    )
    c = checked(bench.calibration, SCHEMAS["calibration"], "calibration")
    assert (c.split, c.images, c.float_first_last, c.nncf.given()) == ("train", 32, True, {})
    assert (c.accuracy_control.enabled, c.accuracy_control.max_drop, c.accuracy_control.images) == (False, 0.5, 16)
    for field in OmegaConf.structured(EmaConfig):  # no default in Python: the YAML sets every field
        assert OmegaConf.is_missing(OmegaConf.structured(EmaConfig), field)
    cfg = compose_cfg(["+calibration.nncf.fast_bias_correction=false"], config_name="benchmark")
    assert checked(cfg.calibration, SCHEMAS["calibration"], "calibration").nncf.given() == {
        "fast_bias_correction": False
    }
