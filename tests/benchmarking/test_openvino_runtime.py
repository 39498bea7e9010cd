"""OpenVINO compile settings checked on the compiled model: INFERENCE_PRECISION_HINT f32 for fp32 (forced: OpenVINO
defaults to bf16 on CPUs with BF16) and bf16 for bf16, LATENCY hint, the benchmark's threads, the timed shape
compiled static, and the properties kept in the benchmark record (benchmarking/backends/openvino_runtime.py)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from benchmarking.backends import BackendOptions, build_runner, eager, export_openvino, openvino_runner
from tests.benchmarking.fakes import TinyConvNet

# find_spec, not import: importing OpenVINO at collection would affect every later in-process Hydra run
if importlib.util.find_spec("openvino") is None:
    pytest.skip("optional extra: pip install -r requirements-openvino.txt (make test does)", allow_module_level=True)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_ir(tmp_path_factory):
    torch.manual_seed(0)
    model = TinyConvNet(3).eval()
    xml = export_openvino(model, torch.randn(1, 3, 32, 48), "fp32", folder=tmp_path_factory.mktemp("ov"))
    return model, xml


def has_bf16() -> tuple[bool, str]:
    from benchmarking.backends import openvino_capabilities

    caps = openvino_capabilities()
    return "BF16" in caps, f"OpenVINO's CPU device lists no BF16 (capabilities {caps}): bf16 is refused here"


def test_fp32_is_forced_to_f32_and_the_settings_are_reported(tiny_ir):
    import openvino as ov

    model, xml = tiny_ir
    report = {}
    run = openvino_runner(xml, "fp32", 1, threads=1, static_shape=(1, 3, 32, 48), report=report)
    props = report["runtime_properties"]
    assert props["INFERENCE_PRECISION_HINT"] == "f32" and props["PERFORMANCE_HINT"] == "LATENCY"
    assert props["INFERENCE_NUM_THREADS"] == 1 and props["NUM_STREAMS"] == 1
    assert props["input_shape"] == "[1,3,32,48]"  # the timed shape, compiled static
    bf16, _ = has_bf16()
    default = ov.Core().compile_model(str(xml), "CPU").get_property("INFERENCE_PRECISION_HINT").get_type_name()
    assert default == ("bf16" if bf16 else "f32")  # why f32 is set explicitly
    ref = eager(model, None, "fp32", CPU)
    for shape in ((1, 3, 32, 48), (2, 3, 24, 40)):  # the static shape, and another one (the dynamic IR)
        x = torch.randn(*shape)
        assert float((run(x) - ref(x)).abs().max()) <= 1e-4


def test_bf16_compiles_to_bf16_where_the_cpu_has_it(tiny_ir):
    model, xml = tiny_ir
    bf16, reason = has_bf16()
    if not bf16:
        print(reason)
        pytest.skip(reason)
    report = {}
    run = openvino_runner(xml, "bf16", 1, threads=1, static_shape=(1, 3, 32, 48), report=report)
    assert report["runtime_properties"]["INFERENCE_PRECISION_HINT"] == "bf16"
    x = torch.randn(1, 3, 32, 48)
    assert float((run(x) - eager(model, None, "fp32", CPU)(x)).abs().max()) > 0  # really computed in bf16


def test_the_backend_reports_the_compiled_properties(tiny_ir, tmp_path):
    model, _ = tiny_ir
    options = BackendOptions(folder=tmp_path, threads=1)
    build_runner(model, torch.randn(1, 3, 40, 56), "openvino", "fp32", CPU, options)
    props = options.report["runtime_properties"]
    assert props["input_shape"] == "[1,3,40,56]" and props["INFERENCE_NUM_THREADS"] == 1
    assert props["INFERENCE_PRECISION_HINT"] == "f32"


def test_the_benchmark_record_keeps_the_compiled_properties(tmp_path):
    from benchmarking.runner import run_benchmark
    from tests.conftest import compose_cfg

    overrides = ["model._target_=tests.benchmarking.fakes.TinyConvNet", "device=cpu", "resolution=48x32"]
    overrides += ["warmup=1", "iterations=2", "backend=openvino", "threads=1", "parity.images=1"]
    rec, _ = run_benchmark(compose_cfg(overrides, config_name="benchmark"), tmp_path)
    assert rec.status == "ok", rec.error
    props = rec.runtime_properties
    assert props["INFERENCE_PRECISION_HINT"] == "f32" and props["INFERENCE_NUM_THREADS"] == 1 == rec.threads
    assert props["PERFORMANCE_HINT"] == "LATENCY" and props["input_shape"] == "[1,3,32,48]"
