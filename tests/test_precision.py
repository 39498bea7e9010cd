"""One precision vocabulary (Lightning's names) for main.py, validation.py, predict.py and benchmark.py."""

from __future__ import annotations

import pytest
import torch

from core.precision import autocast, canonical_precision, native_bf16
from tests.conftest import compose_cfg


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


@pytest.mark.parametrize("native,name", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_is_bf16_only_where_the_device_has_it(monkeypatch, native, name):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_bf16("cpu") is native and canonical_precision("auto") == name
    cfg = compose_cfg(["precision=auto"])
    assert (cfg.precision, cfg.trainer.precision) == ("auto", name)  # the trainer gets the Lightning name
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)  # AMX machines also have bf16
    assert canonical_precision("auto") == "bf16-mixed"


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


def test_int8_only_for_backends_that_declare_it():
    assert canonical_precision("INT8", quantized=True) == "int8"
    assert canonical_precision("fp32", quantized=True) == "32-true"
    with pytest.raises(ValueError, match=r"int8 is accepted only by backends that declare it"):
        autocast("int8", "cpu")


def test_parity_tolerance_keys_map_through_canonical_precision():
    from benchmarking.parity import tolerance_for

    tol = compose_cfg([], config_name="benchmark").parity.tolerance
    assert tolerance_for(tol, "32-true") == tol.fp32 and tolerance_for(tol, "bf16-mixed") == tol.bf16
    assert tolerance_for(tol, "int8").label_agreement == 0.95 and tolerance_for(tol, "16-mixed") is None
