"""One evaluation path: the same checkpoint, config and test-time protocol in validation.py, predict.py and
benchmark.py, on real CamVid frames (the embedded subset, 128x96)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import predict
import validation
from benchmarking.runner import run_benchmark
from core.run_folder import RunFolder
from inference.loading import load_for_inference
from inference.predict import normalize, read_rgb
from inference.validate import evaluate_config
from tests.conftest import call_hydra_cli, compose_cfg

FAST_BENCH = ["resolution=64x48", "warmup=1", "iterations=2", "device=cpu", "count_flops=false"]


@pytest.fixture(scope="module")
def forms(tiny_run, tmp_path_factory):
    """The tiny run's best weights as a run folder, a .ckpt inside it, a bare .ckpt and a plain state dict."""
    tmp = tmp_path_factory.mktemp("forms")
    bare = tmp / "bare.ckpt"
    shutil.copy(RunFolder(tiny_run).best_ckpt, bare)
    model, _ = load_for_inference(tiny_run)
    plain = tmp / "plain.pth"
    torch.save(model.state_dict(), plain)
    return {
        "run folder": (tiny_run, []),
        ".ckpt in run": (RunFolder(tiny_run).best_ckpt, []),
        "bare .ckpt": (bare, []),
        "plain file": (plain, ["model=smp", "dataset=camvid", "num_workers=0"]),
    }


@pytest.fixture(scope="module")
def moved_root(tiny_camvid, tmp_path_factory) -> Path:
    """A copy of the tiny CamVid root holding 2 of its 3 val frames."""
    root = tmp_path_factory.mktemp("moved")
    shutil.copytree(tiny_camvid / "camvid", root / "camvid")
    for sub in ("val", "valannot"):
        sorted((root / "camvid" / sub).glob("*.png"))[-1].unlink()
    return root


def frame(tiny_camvid) -> torch.Tensor:
    f = sorted((tiny_camvid / "camvid" / "val").glob("*.png"))[0]
    return normalize(read_rgb(f), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def test_three_checkpoint_forms_give_identical_logits(forms, tiny_run, tiny_camvid):
    x = frame(tiny_camvid)
    logits, run_dirs = {}, {}
    for name, (src, overrides) in forms.items():
        model, cfg = load_for_inference(src, overrides)
        with torch.no_grad():
            logits[name] = model(x)["out"]
        run_dirs[name] = cfg.loaded_from.run_dir
        assert cfg.dataset.num_classes == 11 and not model.training
    ref = logits["run folder"]
    assert ref.shape == (1, 11, 96, 128)
    for name, value in logits.items():
        assert torch.equal(value, ref), name
    assert run_dirs["run folder"] == run_dirs[".ckpt in run"] == str(tiny_run)
    assert run_dirs["bare .ckpt"] is None and run_dirs["plain file"] is None


def test_data_root_override_moves_every_entry_point(forms, moved_root, tmp_path):
    """environment.data_root= re-roots the dataset for every source form of validation.py, benchmark.py and
    predict.py (the moved copy has 2 val frames, the original 3)."""
    override = f"environment.data_root={moved_root}"
    for i, (name, (src, extra)) in enumerate(forms.items()):
        record = validation.main([f"checkpoint={src}", *extra, override, f"out={tmp_path / f'v{i}'}", "num_vis=0"])
        assert record["num_images"] == 2, name
        _, cfg = load_for_inference(src, [*extra, override])
        assert cfg.dataset.root == f"{moved_root}/camvid", name
        args = predict.parse_args([f"checkpoint={src}", *extra, override, "inputs=[x.png]"])
        assert predict.load_predictor(args).cfg.dataset.root == f"{moved_root}/camvid", name
    run, _ = forms["run folder"]
    overrides = [f"checkpoint='{run}'", "evaluate=true", override, *FAST_BENCH]  # quoted: '=' in the folder name
    rec, _ = run_benchmark(compose_cfg(overrides, config_name="benchmark"), tmp_path / "b", overrides=overrides)
    assert rec.status == "ok", rec.error
    assert rec.eval_images == 2 and rec.eval_split == "val"


@pytest.mark.slow
def test_benchmark_miou_equals_validation_miou(tiny_run, tmp_path):
    """``benchmark.py checkpoint=<run> evaluate=true`` == ``validation.py checkpoint=<run>``: same split, test
    settings and precision (32-true)."""
    record = validation.main([f"checkpoint={tiny_run}", f"out={tmp_path / 'val'}", "num_vis=0"])
    before = set(RunFolder(tiny_run).benchmark_dir.glob("*.json"))
    # quoted for Hydra: the run folder's name holds '=' and ','
    argv = [f"checkpoint='{tiny_run}'", "evaluate=true", *FAST_BENCH, f"LOGDIR={tmp_path / 'logs'}"]
    assert call_hydra_cli("benchmark", argv) == 0
    (new,) = set(RunFolder(tiny_run).benchmark_dir.glob("*.json")) - before
    bench = json.loads(new.read_text())
    assert bench["status"] == "ok" and bench["precision"] == "32-true" == record["precision"]
    assert (bench["eval_split"], bench["eval_images"]) == (record["split"], record["num_images"]) == ("val", 3)
    assert bench["mIoU"] == record["mIoU"]


@pytest.mark.parametrize("resize", [None, [160, 120]])
def test_predict_label_png_equals_validation_prediction(tiny_run, tiny_camvid, tmp_path, resize):
    """predict.py's label PNG of a val frame == the prediction validation.py's evaluation makes for it, at the
    native size and with a test-scale resize (labels upsampled band by band)."""
    overrides = ["val_batch_size=1"] + ([f"dataset.test.resize=[{resize[0]},{resize[1]}]"] if resize else [])
    model, cfg = load_for_inference(tiny_run, overrides)
    ev, _, settings = evaluate_config(model, cfg, "val", "cpu", keep=3)
    assert settings.resize == (tuple(resize) if resize else None)
    frames = sorted((tiny_camvid / "camvid" / "val").glob("*.png"))
    predict.main([f"checkpoint={tiny_run}", *overrides, f"inputs=[{','.join(map(str, frames))}]", f"out={tmp_path}"])
    assert len(ev.samples) == len(frames) == 3
    for name, _image, _target, pred in ev.samples:
        label = np.asarray(Image.open(tmp_path / f"{Path(name).stem}_label.png"))
        assert label.shape == pred.shape == (96, 128)
        assert np.array_equal(label, pred.astype(np.uint8)), name
