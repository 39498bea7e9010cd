"""One measurement end to end in-process: counts, FLOPs closed form, records, failures, checkpoints, budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from benchmarking.loading import parse_resolution
from benchmarking.runner import run_benchmark
from core.versions import commit_label, git_info
from datasets import build_dataset
from datasets.transforms import build_transforms
from tests.benchmarking.fakes import CountingModel
from tests.conftest import compose_cfg

FAKE = ["model._target_=tests.benchmarking.fakes.CountingModel"]
FAST = ["resolution=64x48", "warmup=2", "iterations=3", "device=cpu"]


def bench_cfg(*overrides):
    return compose_cfg(list(overrides), config_name="benchmark")


def test_parse_resolution():
    assert parse_resolution("1024x512") == (512, 1024)  # WIDTHxHEIGHT -> (H, W)
    assert parse_resolution(64) == (64, 64)
    with pytest.raises(ValueError, match=r"resolution='512'.*WIDTHxHEIGHT"):
        parse_resolution("512")


def test_config_defaults_are_mmseg_protocol():
    cfg = bench_cfg()
    assert (cfg.warmup, cfg.iterations, cfg.batch_size, cfg.repeat) == (5, 195, 1, 1)
    assert cfg.max_seconds == 120  # ends the timed loop of slow models early (not MMSeg's protocol)
    assert (cfg.precision, cfg.backend, cfg.budget.seconds, cfg.budget.memory_gib) == ("32-true", "eager", 3.0, 12.0)


def test_counts_flops_and_record(tmp_path):
    CountingModel.calls = 0
    rec, path = run_benchmark(bench_cfg(*FAKE, *FAST, "repeat=2"), tmp_path, model_choice="smp", overrides="x=1")
    assert rec.status == "ok", rec.error
    # 1 FLOP-count forward + repeat * (warmup + timed) + 1 memory forward
    assert CountingModel.calls == 1 + 2 * (2 + 3) + 1
    assert (rec.warmup, rec.iterations, rec.repeat, len(rec.fps_runs)) == (2, 3, 2, 2)
    assert rec.resolution == "64x48" and (rec.height, rec.width) == (48, 64)
    k = 11  # camvid classes
    assert rec.params == rec.trainable_params == 3 * 9 * k + k
    # conv 3x3, 3 -> K channels, stride 2: output 24x32; 1 MAC = 2 FLOPs (bias not counted)
    assert rec.flops == 2 * (3 * 9) * k * 24 * 32
    assert rec.flops_convention == "1 MAC = 2 FLOPs" and rec.flops_counter == "torch.utils.flop_counter"
    assert rec.fps == pytest.approx(np.mean(rec.fps_runs)) and rec.latency_ms_p95 >= rec.latency_ms_p50
    # fps of a repeat = iterations / its timed seconds; latency_ms_mean = mean of all 2 * 3 timed calls
    assert sum(3 / f for f in rec.fps_runs) == pytest.approx(2 * 3 * rec.latency_ms_mean / 1000)
    assert rec.memory_kind == "cpu_rss" and rec.memory_peak_mib >= rec.memory_forward_mib
    assert rec.overhead_pct == pytest.approx(100 * rec.overhead_ms / rec.latency_ms_p50)
    assert rec.budget["checked_on"] == "timed input" and rec.budget["ok"]
    assert path.parent == tmp_path / "benchmark" and json.loads(path.read_text())["config"] == "x=1"
    # provenance a results record states: the code (git commit of the source tree) and the machine's load
    assert rec.commit == commit_label(git_info()) and len(rec.commit.split("+")[0]) == 7 and rec.load_1min >= 0


def test_max_seconds_ends_the_timed_loop_and_the_record_says_how_many_calls_ran(tmp_path):
    CountingModel.calls = 0
    cfg = bench_cfg(*FAKE, *FAST, "iterations=9", "max_seconds=1e-9", "count_flops=false")
    rec, path = run_benchmark(cfg, tmp_path, model_choice="smp")
    assert rec.status == "ok", rec.error
    assert CountingModel.calls == 2 + 5 + 1  # warm-up, the 5 timed calls that always run, the memory forward
    assert rec.iterations == 5 and rec.extra == {"timed_iterations": [5], "max_seconds": 1e-9}
    assert json.loads(path.read_text())["extra"]["timed_iterations"] == [5]
    uncapped, _ = run_benchmark(bench_cfg(*FAKE, *FAST, "count_flops=false"), tmp_path, model_choice="smp")
    assert uncapped.iterations == 3 and "timed_iterations" not in uncapped.extra


@pytest.mark.parametrize(
    "backend,precision,name",
    [("channels_last", "bf16-mixed", "bf16-mixed"), ("eager", "fp16", "16-mixed"), ("eager", "bf16", "bf16-mixed")],
)
def test_backends_and_precisions_run(tmp_path, backend, precision, name):
    rec, path = run_benchmark(bench_cfg(*FAKE, *FAST, f"backend={backend}", f"precision={precision}"), tmp_path)
    assert rec.status == "ok", rec.error
    assert (rec.backend, rec.precision) == (backend, name)  # aliases are recorded by their Lightning name
    assert json.loads(path.read_text())["precision"] == name


@pytest.mark.parametrize(
    "override,error",
    [
        ("model.encoder=does_not_exist", "ValueError: unknown smp encoder 'does_not_exist'"),
        (
            "backend=tensorrt",
            "ValueError: unknown backend 'tensorrt'; valid: ['channels_last', 'compile', 'eager', 'onnxruntime', 'openvino']",
        ),
        ("checkpoint=/nonexistent/best.ckpt", "FileNotFoundError: checkpoint=/nonexistent/best.ckpt"),
        ("resolution=big", "ValueError: resolution='big'"),
        ("fold_bn=maybe", "ValueError: fold_bn='maybe': true or false"),
    ],
)
def test_failures_become_failed_records(tmp_path, override, error):
    rec, path = run_benchmark(bench_cfg(*FAST, override), tmp_path, model_choice="smp")
    assert rec.status == "failed" and rec.error.startswith(error), rec.error
    assert json.loads(path.read_text())["status"] == "failed"


def test_onnxruntime_backend_or_clear_failure(tmp_path):
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        rec, _ = run_benchmark(bench_cfg(*FAKE, *FAST, "backend=onnxruntime"), tmp_path)
        assert rec.status == "failed" and "requirements-onnx.txt" in rec.error
    else:
        rec, _ = run_benchmark(bench_cfg(*FAKE, *FAST, "backend=onnxruntime"), tmp_path)
        assert rec.status == "ok", rec.error


def _fake_run_folder(tmp_path):
    """A run folder as main.py leaves it: LOGDIR/camvid/smp/<exp>/<stamp>/ with hparams.yaml + best.ckpt."""
    run = tmp_path / "logs" / "camvid" / "smp" / "default" / "2026-01-01_00-00-00"
    (run / "checkpoints").mkdir(parents=True)
    train_cfg = compose_cfg(["model.arch=Linknet", *FAKE])
    (run / "hparams.yaml").write_text(OmegaConf.to_yaml(train_cfg, resolve=True))
    model = instantiate(train_cfg.model)
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, run / "checkpoints" / "best.ckpt"
    )
    return run, model


def test_checkpoint_run_folder(tmp_path):
    run, _ = _fake_run_folder(tmp_path)
    rec, path = run_benchmark(bench_cfg(*FAST, f"checkpoint={run}"), tmp_path / "hydra_out", model_choice="x")
    assert rec.status == "ok", rec.error
    assert path.parent == run / "benchmark"  # the record goes into the run folder
    assert rec.weights == str(run / "checkpoints" / "best.ckpt")
    assert (rec.name, rec.method, rec.model) == ("Linknet-resnet18", "Linknet", "smp")  # from hparams.yaml


def test_budget_on_photos(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, (w, h) in {"a.png": (40, 30), "b.jpg": (50, 20)}.items():
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(photos / name)
    (photos / "notes.txt").write_text("not an image")
    rec, _ = run_benchmark(bench_cfg(*FAKE, *FAST, f"photos={photos}", "budget.seconds=1e-9"), tmp_path)
    b = rec.budget
    assert rec.status == "ok", rec.error
    assert b["checked_on"] == "photos" and b["images"] == 2 and not b["ok"]
    assert [(p["image"], p["width"], p["height"]) for p in b["per_image"]] == [("a.png", 40, 30), ("b.jpg", 50, 20)]
    assert len([v for v in b["violations"] if "s >" in v]) == 2
    rec, _ = run_benchmark(bench_cfg(*FAKE, *FAST, f"photos={photos}"), tmp_path)
    assert rec.budget["ok"] and rec.budget["max_seconds"] < 3


def test_evaluate_on_embedded_camvid(tmp_path):
    torch.manual_seed(0)  # the model's initial weights, rebuilt below
    rec, _ = run_benchmark(bench_cfg(*FAKE, *FAST, "evaluate=true", "eval_max_images=2"), tmp_path)
    assert rec.status == "ok", rec.error
    assert rec.eval_split == "val" and rec.eval_images == 2
    # the same two images by hand: the model's argmax at label size, confusion by bincount, mean IoU of the
    # classes present in label or prediction
    torch.manual_seed(0)
    cfg = bench_cfg(*FAKE)
    model = instantiate(cfg.model).eval()
    ds = build_dataset(cfg.dataset, "val", build_transforms(cfg.augmentation.test, cfg.dataset.mean, cfg.dataset.std))
    k, confusion = 11, np.zeros((11, 11), np.int64)
    for i in range(2):
        img, mask = ds[i]["image"], ds[i]["mask"].numpy()
        with torch.no_grad():
            logits = F.interpolate(model(img[None])["out"], size=mask.shape, mode="bilinear", align_corners=False)
        pred, keep = logits.argmax(1)[0].numpy(), mask != 255
        confusion += np.bincount(k * mask[keep] + pred[keep], minlength=k * k).reshape(k, k)
    inter, union = np.diag(confusion), confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
    assert rec.mIoU == pytest.approx(float(np.mean(inter[union > 0] / union[union > 0])), abs=1e-6)


def test_evaluate_split_without_labels_fails(tmp_path):
    rec, _ = run_benchmark(bench_cfg(*FAKE, *FAST, "evaluate=true", "eval_split=nolabels"), tmp_path)
    assert rec.status == "failed" and "no labels for split 'nolabels' (labelled splits: [" in rec.error


def test_channels_last_times_and_evaluates_the_folded_model_eager_the_module_as_is(tmp_path):
    common = ["model.arch=Unet", "model.encoder=resnet18", *FAST, "evaluate=true", "eval_max_images=2"]
    records = {}
    for backend, fold in [("eager", "true"), ("channels_last", "true"), ("channels_last", "false")]:
        torch.manual_seed(0)
        rec, _ = run_benchmark(
            bench_cfg(*common, f"backend={backend}", f"fold_bn={fold}"), tmp_path, model_choice="smp"
        )
        assert rec.status == "ok", rec.error
        records[backend, fold] = rec
    assert records["eager", "true"].batchnorm_folded is None  # the reference is never changed
    assert records["channels_last", "true"].batchnorm_folded == 30  # every BatchNorm of a resnet18 Unet
    assert records["channels_last", "false"].batchnorm_folded is None
    # same weights (seeded), same frames: folding moves the mIoU by float rounding only
    assert records["channels_last", "true"].mIoU == pytest.approx(records["eager", "true"].mIoU, abs=1e-3)
    assert records["channels_last", "true"].params == records["eager", "true"].params  # counted before folding
