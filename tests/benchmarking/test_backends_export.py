"""Exported backends (ONNX Runtime, OpenVINO fp32/bf16/int8): parity with eager fp32, the export command,
benchmark records with parity, predict.py backend=, and the one-line error of a missing extra.

Model: smp Unet with a 3-stage resnet18 encoder and (32, 16, 8) decoder channels, random weights (seed 0),
traced at 64x96. Stated tolerances: fp32 backends max |Δ logit| <= 1e-4 (logits of order 1) and identical labels
on a real CamVid frame wherever eager's top-2 margin exceeds 2e-4 (random weights leave a few near-ties: >= 99.99 %
of the pixels agree); int8 (NNCF, calibrated on 4 real CamVid training frames) label agreement >= 0.85 on real
validation frames; bf16 (where the CPU has it) label agreement >= 0.95.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import predict
from benchmarking import backends
from benchmarking.aggregate import aggregate
from benchmarking.backends import (
    BackendModule,
    BackendOptions,
    build_runner,
    onnx_runtime,
    openvino_runtime,
    size_multiple,
)
from benchmarking.export import run_export
from benchmarking.parity import compare, split_images, violations
from benchmarking.runner import run_benchmark
from core.errors import run_entry as run_in_process
from models.smp import SMPModel
from tests.conftest import REPO, compose_cfg

# find_spec, not import: importing OpenVINO at collection would affect every later in-process Hydra run
if importlib.util.find_spec("openvino") is None:
    pytest.skip("optional extra: pip install -r requirements-openvino.txt (make test does)", allow_module_level=True)

TINY = ["+model.encoder_depth=3", "+model.decoder_channels=[32,16,8]"]
CPU = torch.device("cpu")
FP32_TOL = 1e-4


def tiny_model() -> SMPModel:
    torch.manual_seed(0)
    return SMPModel("Unet", "resnet18", 11, encoder_depth=3, decoder_channels=[32, 16, 8]).eval()


def differing_beyond_ties(ref_logits: torch.Tensor, a: torch.Tensor, b: torch.Tensor, tol: float = FP32_TOL) -> int:
    """Pixels whose labels ``a`` and ``b`` (int[..., H, W]) differ although the eager top-2 logit margin exceeds
    ``2 * tol`` (random weights leave a few near-ties that any fp32 reordering may flip)."""
    top2 = ref_logits.float().topk(2, dim=1).values
    decisive = (top2[:, 0] - top2[:, 1]) > 2 * tol
    return int(((a != b) & decisive.reshape(a.shape)).sum())


def bench_cfg(*overrides):
    return compose_cfg([*TINY, "device=cpu", *overrides], config_name="benchmark")


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def cfg():
    return bench_cfg()


@pytest.fixture(scope="module")
def val_frames(cfg):
    """Three real CamVid validation frames (data/camvid), float32[1, 3, 360, 480] normalised."""
    return split_images(cfg, "val", 3)


@pytest.fixture(scope="module")
def calibration_log():
    return []


@pytest.fixture(scope="module")
def runners(model, cfg, calibration_log, tmp_path_factory):
    """Eager fp32 and every exported backend, all traced at 64x96 into one folder."""
    example = torch.randn(1, 3, 64, 96)

    def calibration():
        images = split_images(cfg, "train", 4)
        calibration_log.append(images)
        return images

    options = BackendOptions(folder=tmp_path_factory.mktemp("export"), calibration=calibration)
    out = {"eager": build_runner(model, example, "eager", "fp32", CPU)}
    for backend, precision in (("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8")):
        out[f"{backend}:{precision}"] = build_runner(model, example, backend, precision, CPU, options)
    out["folder"] = options.folder
    return out


@pytest.mark.parametrize("backend", ["onnxruntime:fp32", "openvino:fp32"])
@pytest.mark.parametrize("size", [(64, 96), (128, 160), (70, 100)])  # traced size, another, one needing padding
def test_fp32_parity_at_any_size(runners, backend, size):
    torch.manual_seed(1)
    x = torch.randn(2, 3, *size)  # batch of 2: N is dynamic too
    ref, got = runners["eager"](x), runners[backend](x)
    assert got.shape == ref.shape == (2, 11, *size)
    assert float((got - ref).abs().max()) <= FP32_TOL


@pytest.mark.parametrize("backend", ["onnxruntime:fp32", "openvino:fp32"])
def test_fp32_identical_labels_on_real_camvid_frame(runners, val_frames, backend):
    frame = val_frames[0]
    assert frame.shape == (1, 3, 360, 480)  # 360 is no multiple of 32: the padded path
    res = compare(runners["eager"], runners[backend], [frame])
    assert res["max_abs_logit"] <= FP32_TOL and res["max_abs_reference"] > 0.1
    assert res["label_agreement"] >= 1 - 1e-4 and res["pixels"] == 360 * 480
    ref, got = runners["eager"](frame), runners[backend](frame)
    assert differing_beyond_ties(ref, ref.argmax(1), got.argmax(1)) == 0  # identical labels up to fp32 near-ties


def test_int8_calibrated_on_real_training_frames(runners, cfg, val_frames, calibration_log):
    import openvino as ov

    (images,) = calibration_log  # the calibration ran once, on 4 real training frames through the test pipeline
    expected = split_images(cfg, "train", 4)
    assert len(images) == 4 and all(torch.equal(a, b) for a, b in zip(images, expected, strict=True))
    assert images[0].shape == (1, 3, 360, 480) and float(images[0].std()) > 0.5  # normalised photo, not noise
    ir = ov.Core().read_model(str(runners["folder"] / "openvino_int8" / "model.xml"))
    assert sum(op.get_type_name() == "FakeQuantize" for op in ir.get_ops()) >= 5  # quantisers were inserted
    res = compare(runners["eager"], runners["openvino:int8"], val_frames)
    assert res["label_agreement"] >= 0.85
    assert res["max_abs_logit"] > 10 * FP32_TOL  # really quantised, not the fp32 graph


def _fed_by_fake_quantize(ir, name: str) -> bool:
    op = next(o for o in ir.get_ops() if o.get_friendly_name() == name)
    return any(i.get_source_output().get_node().get_type_name() == "FakeQuantize" for i in op.inputs())


def test_nncf_options_reach_the_quantiser(runners, cfg):
    import nncf
    import openvino as ov

    from benchmarking.backends import NNCF_OPTIONS, first_and_last_convolution, nncf_options, quantize_int8
    from core.schema import NncfConfig

    fp32 = ov.Core().read_model(str(runners["folder"] / "openvino_fp32" / "model.xml"))
    head = "out"  # the segmentation head's convolution writes the graph output
    assert next(o for o in fp32.get_ops() if o.get_friendly_name() == head).get_type_name() == "Convolution"
    default = ov.Core().read_model(str(runners["folder"] / "openvino_int8" / "model.xml"))
    assert _fed_by_fake_quantize(default, head)  # the segmentation head is quantised by default
    nncf_cfg = {"preset": "mixed", "ignored_scope": {"names": [head]}}
    options = BackendOptions.from_config(
        cfg, {**OmegaConf.to_container(cfg.calibration), "images": 2, "float_first_last": False, "nncf": nncf_cfg}
    )
    assert (
        options.calibration_note
        == f"train (2 images, preset=mixed, ignored_scope={{'names': ['{head}']}}, nncf.quantize)"
    )
    assert not options.float_first_last and BackendOptions.from_config(cfg).float_first_last  # config default: on
    note = BackendOptions.from_config(cfg).calibration_note
    assert note == "train (32 images, first and last convolution in float, nncf.quantize)"
    assert nncf_options(options.quantize, nncf) == {
        "preset": nncf.QuantizationPreset.MIXED,
        "ignored_scope": nncf.IgnoredScope(names=[head]),
    }
    kept = quantize_int8(
        ov.Core().read_model(str(runners["folder"] / "openvino_fp32" / "model.xml")),
        options.calibration(),
        8,
        options.quantize,
    )
    assert not _fed_by_fake_quantize(kept, head)  # ignored_scope keeps it in float
    assert sum(op.get_type_name() == "FakeQuantize" for op in kept.get_ops()) >= 5  # the rest is still int8
    # the stem and the head in float (float_first_last), the rest quantised
    fp32 = ov.Core().read_model(str(runners["folder"] / "openvino_fp32" / "model.xml"))
    stem = "/model/net/encoder/conv1/Conv/WithoutBiases"  # resnet18's 7x7 stem, the first layer on the image
    assert sorted({stem, head}) == first_and_last_convolution(fp32) and _fed_by_fake_quantize(default, stem)
    mixed = quantize_int8(fp32, options.calibration(), 8, {}, float_first_last=True)
    assert not _fed_by_fake_quantize(mixed, stem) and not _fed_by_fake_quantize(mixed, head)
    assert sum(op.get_type_name() == "FakeQuantize" for op in mixed.get_ops()) >= 5
    with pytest.raises(ValueError, match=r"^calibration.nncf.presett: Key 'presett' not in 'NncfConfig'$"):
        BackendOptions.from_config(cfg, {**OmegaConf.to_container(cfg.calibration), "nncf": {"presett": "mixed"}})
    with pytest.raises(ValueError, match=r"^calibration.float_first_last: Value 'maybe' is not a valid bool"):
        BackendOptions.from_config(cfg, {**OmegaConf.to_container(cfg.calibration), "float_first_last": "maybe"})
    with pytest.raises(ValueError, match=r"calibration.nncf: unknown option\(s\) \['presett'\]"):
        nncf_options({"presett": "mixed"})  # the same keys when quantize_int8 is called without a config
    assert set(NncfConfig.__dataclass_fields__) == set(NNCF_OPTIONS)


def test_bf16_where_the_cpu_has_it(model):
    example = torch.randn(1, 3, 64, 96)
    if "BF16" in backends.openvino_capabilities():
        run = build_runner(model, example, "openvino", "bf16", CPU)
        res = compare(backends.eager(model, example, "fp32", CPU), run, [torch.randn(1, 3, 64, 96)])
        assert res["label_agreement"] >= 0.95
    else:
        with pytest.raises(
            ValueError, match=r"precision=bf16-mixed with backend=openvino needs a CPU with BF16; this one"
        ):
            build_runner(model, example, "openvino", "bf16", CPU)


def test_unsupported_precision_is_named(model):
    with pytest.raises(ValueError, match=r"backend=onnxruntime supports precision \['32-true'\], got 'int8'"):
        build_runner(model, torch.randn(1, 3, 64, 96), "onnxruntime", "int8", CPU)
    with pytest.raises(
        ValueError, match=r"backend=eager supports precision \['32-true', 'bf16-mixed', '16-mixed'\], got 'int8'"
    ):
        build_runner(model, torch.randn(1, 3, 64, 96), "eager", "int8", CPU)


@pytest.mark.parametrize(
    "missing,backend,precision,file",
    [
        ("onnxruntime", "onnxruntime", "fp32", "requirements-onnx.txt"),
        ("openvino", "openvino", "fp32", "requirements-openvino.txt"),
        ("nncf", "openvino", "int8", "requirements-openvino.txt"),
    ],
)
def test_missing_extra_fails_in_one_line(monkeypatch, tmp_path, missing, backend, precision, file):
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` raises ImportError
    rec, _ = run_benchmark(
        bench_cfg("resolution=96x64", f"backend={backend}", f"precision={precision}", "calibration.images=1"), tmp_path
    )
    assert rec.status == "failed"
    assert (
        rec.error == f"ModuleNotFoundError: {missing} is not installed; it is an optional extra: pip install -r {file}"
    )


def test_parity_violations_closed_form():
    p = {"max_abs_logit": 0.02, "max_abs_reference": 10.0, "label_agreement": 0.97}
    assert violations(p, {"max_abs_logit_rel": 1e-3, "label_agreement": 0.95}) == ["max |Δ logit| 0.02 > 0.01"]
    assert violations(p, {"label_agreement": 0.99}, delta_miou=-0.006) == ["label agreement 0.9700 < 0.99"]
    assert violations(p, {"delta_miou_points": 0.5}, delta_miou=-0.006) == ["|ΔmIoU| 0.60 points > 0.5"]
    assert violations(p, None, delta_miou=1.0) == []


def test_benchmark_record_carries_parity_and_csv_marks_excess(tmp_path):
    common = ("resolution=96x64", "warmup=1", "iterations=2", "backend=onnxruntime", "parity.images=2")
    ok, _ = run_benchmark(
        bench_cfg(*common, "evaluate=true", "eval_max_images=2"), tmp_path / "a" / "run", model_choice="smp"
    )
    assert ok.status == "ok", ok.error
    assert ok.parity_reference == "eager 32-true" and ok.parity_images == "val (2 images)"
    assert ok.parity_max_abs_logit <= FP32_TOL and ok.parity_label_agreement >= 1 - 1e-4
    assert abs(ok.parity_delta_mIoU) <= 1e-4 and ok.parity_ok and ok.parity_violations == []
    assert ok.eval_split == "val" and ok.eval_images == 2
    bad, _ = run_benchmark(
        bench_cfg(*common, "parity.tolerance.fp32.max_abs_logit_rel=1e-12"), tmp_path / "b" / "run", model_choice="smp"
    )
    assert bad.status == "ok" and bad.parity_ok is False and bad.parity_delta_mIoU is None
    assert bad.parity_violations[0].startswith("max |Δ logit| ")
    eager, _ = run_benchmark(bench_cfg("resolution=96x64", "warmup=1", "iterations=2"), tmp_path / "c" / "run")
    assert eager.parity_ok is None and eager.parity_max_abs_logit is None
    aggregate(tmp_path, tmp_path / "tables")
    df = pd.read_csv(tmp_path / "tables" / "all.csv").set_index("backend")
    assert df.loc["eager", "parity"] != df.loc["eager", "parity"]  # empty (NaN) for eager backends
    rows = df.loc["onnxruntime"].set_index(df.loc["onnxruntime", "parity"].str.split(" ").str[0])
    assert rows.loc["ok", "parity"] == "ok (vs eager 32-true, val (2 images))"
    assert rows.loc["ok", "parity_label_agreement"] == pytest.approx(ok.parity_label_agreement)
    # points, as mIoU; the CSV keeps 6 significant digits
    assert rows.loc["ok", "parity_delta_mIoU"] == pytest.approx(100 * ok.parity_delta_mIoU, rel=1e-5)
    assert rows.loc["exceeded:", "parity"].startswith("exceeded: max |Δ logit| ")


def test_export_command_writes_files_and_parity(tmp_path, capsys):
    out, weights = tmp_path / "export", tmp_path / "tiny.pth"
    torch.save(tiny_model().state_dict(), weights)
    args = [
        *TINY,
        f"checkpoint={weights}",
        "resolution=96x64",
        "parity.images=2",
        f"out={out}",
        "formats=onnx,openvino",
    ]
    code = run_export(args)
    printed = capsys.readouterr()
    assert code == 0, printed.err
    info = json.loads((out / "export.json").read_text())
    assert sorted(info["parity"]) == ["onnx", "openvino"] and info["source"] == str(weights)
    assert info["input"]["size_multiple"] == 32 and info["num_classes"] == 11 and info["traced_at"] == "96x64"
    for p in info["parity"].values():
        assert p["ok"] and p["max_abs_logit"] <= FP32_TOL and p["label_agreement"] >= 1 - 1e-4
        assert p["on"] == "val (2 images)" and (out / p["file"]).is_file()
    assert (out / "openvino_fp32" / "model.bin").is_file()
    # the exported ONNX file alone reproduces the weights' model at a new size (dynamic H, W)
    runner = backends.onnxruntime_runner(out / "model.onnx", 32, CPU)
    x = torch.randn(1, 3, 100, 130)
    assert float((runner(x) - tiny_model()(x)["out"]).abs().max()) <= FP32_TOL
    # an existing folder is never rewritten: one line, exit 2
    before = (out / "export.json").read_text()
    assert run_export([*TINY, f"out={out}"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"benchmark.py export: ValueError: export folder {out} already exists; give another out="
    )
    assert (out / "export.json").read_text() == before
    assert run_export(["formats=onnx,tensorrt", f"out={tmp_path / 'x'}"]) == 2
    assert "unknown ['tensorrt']" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_predict_backend_gives_the_eager_labels(tmp_path):
    # predict.py in-process (these tests run last in their worker, see tests/conftest.py)
    weights = tmp_path / "tiny.pth"
    torch.save(tiny_model().state_dict(), weights)
    frame = REPO / "data" / "camvid" / "val" / "0016E5_07967.png"
    labels = {}
    for backend in ("eager", "onnxruntime", "openvino"):
        out = tmp_path / backend
        args = [f"checkpoint={weights}", f"inputs=[{frame}]", f"out={out}", f"backend={backend}", "model=smp", *TINY]
        assert run_in_process("predict.py", predict.main, args) == 0
        labels[backend] = np.asarray(Image.open(out / f"{frame.stem}_label.png"))
        assert json.loads((out / "summary.json").read_text())["backend"] == backend
    assert labels["eager"].shape == (360, 480)
    ref = tiny_model()(split_images(bench_cfg(), "val", 1)[0])["out"]
    eager = torch.from_numpy(labels["eager"]).long()
    assert differing_beyond_ties(ref, eager, ref.argmax(1)[0]) == 0  # predict.py's eager labels = the model's argmax
    for backend in ("onnxruntime", "openvino"):
        assert differing_beyond_ties(ref, eager, torch.from_numpy(labels[backend]).long()) == 0
        assert (labels[backend] == labels["eager"]).mean() >= 1 - 1e-4


def test_backend_module_is_a_segbench_model(runners):
    m = BackendModule(runners["onnxruntime:fp32"])
    x = torch.randn(1, 3, 64, 96)
    assert m.output_names == ("out",) and torch.equal(m(x)["out"], runners["onnxruntime:fp32"](x))
    assert size_multiple(tiny_model()) == 32 and size_multiple(torch.nn.Conv2d(3, 3, 1)) == 1


@pytest.fixture()
def private_tmp(tmp_path, monkeypatch):
    """A fresh system temporary folder for this test (``tempfile.gettempdir()``)."""
    import tempfile

    folder = tmp_path / "system_tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_random_weight_exports_leave_no_temporary_folder(model, private_tmp):
    """Without a run folder the export goes to a temporary folder that is gone once the runtime loaded it."""
    example, x = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96)
    ref = backends.eager(model, example, "fp32", CPU)(x)
    for backend in ("onnxruntime", "openvino", "onnxruntime"):
        run = build_runner(model, example, backend, "fp32", CPU)
        assert sorted(private_tmp.iterdir()) == []  # nothing left behind, also by a second export
        assert float((run(x) - ref).abs().max()) <= FP32_TOL  # the loaded runtime works without its files


def _tiny_run_folder(root):
    """A run folder as main.py leaves it (hparams.yaml + checkpoints/best.ckpt) holding tiny_model()'s weights."""
    from omegaconf import OmegaConf

    run = root / "logs" / "camvid" / "smp" / "default" / "2026-01-01_00-00-00"
    (run / "checkpoints").mkdir(parents=True)
    cfg = compose_cfg(["model.arch=Unet", "model.encoder=resnet18", *TINY])
    (run / "hparams.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    state = {f"model.{k}": v for k, v in tiny_model().state_dict().items()}
    torch.save({"state_dict": state}, run / "checkpoints" / "best.ckpt")
    return run


def test_exports_of_a_run_stay_in_its_folder_and_are_reused(tmp_path, private_tmp, monkeypatch):
    run = _tiny_run_folder(tmp_path)
    fast = ("resolution=96x64", "warmup=1", "iterations=1", "parity.images=1", "count_flops=false", f"checkpoint={run}")
    rec, _ = run_benchmark(bench_cfg(*fast, "backend=onnxruntime"), tmp_path / "out")
    assert rec.status == "ok", rec.error
    folder = run / "export" / "onnxruntime_fp32_96x64"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["file"] == "model.onnx" and manifest["traced_at"] == "96x64" and manifest["precision"] == "32-true"
    assert manifest["source"]["weights"] == str((run / "checkpoints" / "best.ckpt").resolve())
    onnx_bytes = (folder / "model.onnx").read_bytes()

    real_export = backends.export_onnx
    calls = []
    for module in (onnx_runtime, openvino_runtime):  # the modules that export
        monkeypatch.setattr(module, "export_onnx", lambda *a, **k: calls.append(a) or real_export(*a, **k))
    again, _ = run_benchmark(bench_cfg(*fast, "backend=onnxruntime"), tmp_path / "out")
    assert again.status == "ok" and calls == []  # the run's export was reused
    assert again.parity_max_abs_logit == rec.parity_max_abs_logit
    ckpt = run / "checkpoints" / "best.ckpt"
    st = ckpt.stat()
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # new weights (a continued run): exported anew
    third, _ = run_benchmark(bench_cfg(*fast, "backend=onnxruntime"), tmp_path / "out")
    assert third.status == "ok" and len(calls) == 1
    assert json.loads((folder / "manifest.json").read_text())["source"]["weights_mtime_ns"] == st.st_mtime_ns + 10**9
    assert (folder / "model.onnx").read_bytes() == onnx_bytes  # same weights, same graph
    assert sorted(p.name for p in (run / "export").iterdir()) == ["onnxruntime_fp32_96x64"]  # nothing else, no temp
    # predict.py --backend on the run: its own traced size, kept and reused the same way
    frame = REPO / "data" / "camvid" / "val" / "0016E5_07967.png"
    for i in range(2):
        args = [f"checkpoint={run}", f"inputs=[{frame}]", f"out={tmp_path / f'pred{i}'}", "backend=openvino"]
        assert run_in_process("predict.py", predict.main, args) == 0
    assert sorted(p.name for p in (run / "export").iterdir()) == ["onnxruntime_fp32_96x64", "openvino_fp32_64x64"]
    assert len(calls) == 2  # predict's first call exported (ONNX, then IR), the second reused
    labels = [np.asarray(Image.open(tmp_path / f"pred{i}" / f"{frame.stem}_label.png")) for i in range(2)]
    assert np.array_equal(*labels)
    assert sorted(private_tmp.iterdir()) == []


def test_int8_with_and_without_accuracy_control_keep_their_own_exports(tmp_path, private_tmp):
    """The run's plain int8 IR and the accuracy-controlled one sit side by side (neither replaces the other), and
    each record counts its IR's quantizers: with a drop inside ``max_drop`` NNCF keeps plain quantisation, so the
    counts are equal."""
    from benchmarking.backends import count_quantizers

    run = _tiny_run_folder(tmp_path)
    fast = ("resolution=96x64", "warmup=1", "iterations=1", "parity.images=1", "count_flops=false", f"checkpoint={run}")
    int8 = (*fast, "backend=openvino", "precision=int8", "calibration.images=2")
    ac = ("calibration.accuracy_control.enabled=true", "calibration.accuracy_control.images=2")
    plain, _ = run_benchmark(bench_cfg(*int8), tmp_path / "out")
    kept, _ = run_benchmark(bench_cfg(*int8, *ac, "calibration.accuracy_control.max_drop=100"), tmp_path / "out")
    assert plain.status == kept.status == "ok", (plain.error, kept.error)
    assert sorted(p.name for p in (run / "export").iterdir()) == ["openvino_int8-ac_96x64", "openvino_int8_96x64"]
    import openvino as ov

    counts = [
        count_quantizers(ov.Core().read_model(str(run / "export" / name / "openvino_int8" / "model.xml")))
        for name in ("openvino_int8_96x64", "openvino_int8-ac_96x64")
    ]
    assert plain.quantizers == kept.quantizers == counts[0] == counts[1] > 0
    assert kept.accuracy_control["drop"] <= 100 and not plain.accuracy_control
    assert plain.parity_max_abs_logit == kept.parity_max_abs_logit  # one model, one set of logits
