"""int8 with NNCF accuracy control (``calibration.accuracy_control``): the measured mIoU drop on held-out frames stays
within ``max_drop`` where plain ``nncf.quantize`` exceeds it, and the benchmark record keeps the choices and the drop
(benchmarking/backends/accuracy_control.py)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from benchmarking.backends import AccuracyControl, export_openvino, quantize_int8, validation_fn
from metrics.aggregations import per_image_confusion
from metrics.confusion import metrics_from_confusion
from tests.benchmarking.fakes import TinyConvNet

# find_spec, not import: importing OpenVINO at collection would affect every later in-process Hydra run
if importlib.util.find_spec("nncf") is None:
    pytest.skip("optional extra: pip install -r requirements-openvino.txt (make test does)", allow_module_level=True)

MAX_DROP = 1.0  # mIoU points


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """TinyConvNet (3 classes, seed 0), 4 calibration and 4 held-out 24x32 images labelled by the fp32 model itself
    (fp32 mIoU = 100, so every flipped pixel of int8 is a drop)."""
    torch.manual_seed(0)
    model = TinyConvNet(3).eval()
    images = [torch.randn(1, 3, 24, 32) for _ in range(8)]
    with torch.no_grad():
        held_out = [(x, model(x)["out"].argmax(1)) for x in images[4:]]
    xml = export_openvino(model, images[0], "fp32", folder=tmp_path_factory.mktemp("ov"))
    return xml, images[:4], held_out


def miou_points(compiled, samples) -> float:
    """mIoU (points) of an OpenVINO compiled model on (image, mask) pairs, summed over one confusion matrix."""
    total = torch.zeros(3, 3, dtype=torch.int64)
    for x, mask in samples:
        pred = torch.from_numpy(compiled(x.numpy())[0]).argmax(1)
        total += per_image_confusion(pred, mask, 3).sum(0)
    return 100 * metrics_from_confusion(total)["mIoU"]


def test_accuracy_control_keeps_the_drop_within_max_drop(tiny):
    import openvino as ov

    xml, calibration, held_out = tiny
    core, f32 = ov.Core(), {"INFERENCE_PRECISION_HINT": "f32"}
    fp32 = miou_points(core.compile_model(str(xml), "CPU", f32), held_out)
    plain = miou_points(core.compile_model(quantize_int8(core.read_model(str(xml)), calibration), "CPU", f32), held_out)
    assert fp32 == 100.0 and fp32 - plain > MAX_DROP  # plain nncf.quantize loses more than allowed here
    ac = AccuracyControl(max_drop=MAX_DROP, images=4, max_iters=5, samples=lambda: held_out, num_classes=3)
    report = {}
    model = quantize_int8(core.read_model(str(xml)), calibration, accuracy_control=ac, report=report)
    int8 = miou_points(core.compile_model(model, "CPU", f32), held_out)
    assert fp32 - int8 <= MAX_DROP
    assert any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())  # still partly int8
    r = report["accuracy_control"]
    assert r["fp32_mIoU"] == pytest.approx(fp32) and r["int8_mIoU"] == pytest.approx(int8)
    assert r["drop"] == pytest.approx(fp32 - int8) and r["validation_images"] == 4
    assert {k: r[k] for k in ("enabled", "max_drop", "images", "max_iters", "split")} == {
        "enabled": True, "max_drop": 1.0, "images": 4, "max_iters": 5, "split": "train"
    }  # fmt: skip


def test_within_max_drop_accuracy_control_returns_the_plain_int8_model(tiny):
    """When plain quantisation already meets ``max_drop``, NNCF returns it: the same quantizers and the same logits,
    so two int8 rows of one model that differ only in accuracy control ran one IR (speed differences are noise)."""
    import numpy as np
    import openvino as ov

    from benchmarking.backends import count_quantizers

    xml, calibration, held_out = tiny
    core, f32 = ov.Core(), {"INFERENCE_PRECISION_HINT": "f32"}
    assert count_quantizers(core.read_model(str(xml))) == 0
    for first_last, quantizers in ((False, 3), (True, 1)):  # TinyConvNet: 3 convolutions, the outer two in float
        plain = quantize_int8(core.read_model(str(xml)), calibration, float_first_last=first_last)
        ac = AccuracyControl(max_drop=100.0, images=4, samples=lambda: held_out, num_classes=3)
        report = {}
        kept = quantize_int8(core.read_model(str(xml)), calibration, float_first_last=first_last, accuracy_control=ac,
                             report=report)  # fmt: skip
        assert count_quantizers(plain) == count_quantizers(kept) == quantizers
        assert report["accuracy_control"]["drop"] <= 100.0
        for x, _ in held_out:
            a = core.compile_model(plain, "CPU", f32)(x.numpy())[0]
            b = core.compile_model(kept, "CPU", f32)(x.numpy())[0]
            np.testing.assert_array_equal(a, b)


def test_validation_fn_is_the_projects_miou_in_points(tiny):
    import openvino as ov

    xml, _, held_out = tiny
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    wrong = [(x, (m + 1) % 3) for x, m in held_out]  # every label shifted: IoU 0 for every class
    items = [(x.numpy(), m.numpy()) for x, m in held_out + wrong]
    miou, per_item = validation_fn(3)(compiled, items)
    assert per_item == [100.0] * 4 + [0.0] * 4
    assert miou == pytest.approx(miou_points(compiled, held_out + wrong))


def test_the_benchmark_record_keeps_the_choices_and_the_drop(tmp_path):
    """Through the ``benchmark.py`` entry point, in its own interpreter, as a user runs it."""
    import subprocess
    import sys
    from pathlib import Path

    from benchmarking.console import summary
    from core.records import load_records

    overrides = ["model._target_=tests.benchmarking.fakes.TinyConvNet", "device=cpu", "resolution=48x32"]
    overrides += ["warmup=1", "iterations=2", "backend=openvino", "precision=int8", "threads=1", "parity.images=1"]
    overrides += ["calibration.images=4", "calibration.accuracy_control.enabled=true"]
    overrides += ["calibration.accuracy_control.images=3", f"calibration.accuracy_control.max_drop={MAX_DROP}"]
    overrides += [f"LOGDIR={tmp_path}", f"hydra.run.dir={tmp_path}/run"]
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "benchmark.py", *overrides], cwd=root, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ((_, rec),) = load_records(tmp_path)
    assert rec.status == "ok", rec.error
    assert rec.calibration == (
        "train (4 images, first and last convolution in float, nncf.quantize_with_accuracy_control: max_drop 1 "
        "mIoU points on 3 held-out train images, max_iters 10)"
    )
    ac = rec.accuracy_control
    assert ac["enabled"] and ac["max_drop"] == MAX_DROP and ac["validation_images"] == 3 and ac["max_iters"] == 10
    assert ac["drop"] == pytest.approx(ac["fp32_mIoU"] - ac["int8_mIoU"]) and ac["drop"] <= MAX_DROP
    assert 0 <= ac["int8_mIoU"] <= 100 and rec.runtime_properties["INFERENCE_PRECISION_HINT"] == "f32"
    assert f", accuracy control: drop {ac['drop']:.2f} mIoU points (max 1) on 3 held-out train images" in summary(rec)


SIGNAL_AFTER_ACCURACY_CONTROL = """
import signal, subprocess, sys, tempfile
import torch
from benchmarking.backends import AccuracyControl, export_openvino, quantize_int8
from benchmarking.backends.signal_stack import current_signal_stack
from tests.benchmarking.fakes import TinyConvNet
import openvino as ov

torch.manual_seed(0)
model = TinyConvNet(3).eval()
images = [torch.randn(1, 3, 24, 32) for _ in range(8)]
with torch.no_grad():
    held_out = [(x, model(x)["out"].argmax(1)) for x in images[4:]]
xml = export_openvino(model, images[0], "fp32", folder=tempfile.mkdtemp())
before = current_signal_stack()
ac = AccuracyControl(max_drop=1.0, images=4, max_iters=5, samples=lambda: held_out, num_classes=3)
quantize_int8(ov.Core().read_model(str(xml)), images[:4], accuracy_control=ac, report={})
assert current_signal_stack() == before, (before, current_signal_stack())
signal.signal(signal.SIGCHLD, lambda *args: None)  # a Python handler, as a multi-worker DataLoader installs
for _ in range(3):
    subprocess.run(["true"], check=True)  # each exit delivers SIGCHLD to this thread
print("survived")
"""


def test_a_signal_after_accuracy_control_is_handled_not_fatal():
    """After ``nncf.quantize_with_accuracy_control`` the thread's alternate signal stack is the one it had
    (benchmarking/backends/signal_stack.py), so a SIGCHLD handled in Python afterwards does not end the process with
    SIGSEGV (exit -11), as it did without the shim. In its own interpreter: a crash must not take the test runner."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_AFTER_ACCURACY_CONTROL], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("survived"), (done.returncode, done.stderr[-1500:])
