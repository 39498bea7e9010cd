"""One precision vocabulary (Lightning's names) for main.py, validation.py, predict.py and benchmark.py."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import compose_cfg
from utils.precision import autocast, canonical_precision


@pytest.mark.parametrize(
    "value,name",
    [
        ("32-true", "32-true"),
        (32, "32-true"),
        ("fp32", "32-true"),
        ("bf16", "bf16-mixed"),
        ("BF16-mixed", "bf16-mixed"),
        ("fp16", "16-mixed"),
        (16, "16-mixed"),
    ],
)
def test_aliases_map_to_lightning_names(value, name):
    assert canonical_precision(value) == name


def test_unknown_precision_lists_the_names():
    with pytest.raises(ValueError, match=r"precision='int8' is not supported; use one of \['32-true', 'bf16-mixed'"):
        canonical_precision("int8")


def test_autocast_dtype():
    with autocast("bf16", "cpu"):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast("32-true", "cpu"):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32


def test_trainer_and_benchmark_configs_speak_lightning_names():
    assert compose_cfg(["precision=bf16"]).trainer.precision == "bf16-mixed"
    assert compose_cfg([]).trainer.precision == "32-true"
    assert compose_cfg([], config_name="benchmark").precision == "32-true"
