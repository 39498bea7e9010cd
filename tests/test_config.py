"""Every option of every config group composes and resolves (lightning-hydra-template style)."""

import importlib.util
import os
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from benchmarking.runner import run_benchmark
from core.precision import canonical_precision
from models.display import describe_model
from tests.conftest import CONFIG_DIR, REPO, compose_cfg
from training.datamodule import SegDataModule
from training.module import SegmentationModule

# Folders of config/ that are not groups of train.yaml: Hydra's own, predict.py's inference presets
# (tests/inference) and the pretrained-weights registry (tests/models/test_pretrained.py).
NOT_GROUPS = ("hydra", "inference", "pretrained")
GROUPS = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name not in NOT_GROUPS)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_composes(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert container["lossfunction"] and len(container["lossfunction"]) == len(container["lossweight"])
    if group == "experiment":
        assert container["experiment"] == option, "a recipe names itself in `experiment` (run folder name)"


def test_defaults_are_the_documented_ones():
    cfg = compose_cfg([])
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.momentum == 0.9
    assert cfg.optimizer.weight_decay == pytest.approx(5e-4)
    assert cfg.lr_scheduler.scheduler._target_.endswith("PolynomialLR") and cfg.lr_scheduler.scheduler.power == 0.9
    assert cfg.lr_scheduler.interval == "step"
    assert cfg.trainer.accelerator == "cpu"
    assert "tensorboard" in cfg.logger
    assert cfg.dataset.name == "camvid" and cfg.dataset.ignore_index == 255
    for key in [
        "epochs",
        "batch_size",
        "val_batch_size",
        "num_workers",
        "lr",
        "wd",
        "momentum",
        "lossfunction",
        "lossweight",
        "seed",
        "LOGDIR",
        "experiment",
    ]:
        assert key in cfg, key


def test_command_line_overrides_reach_the_model():
    cfg = compose_cfg(["model=smp", "model.arch=FPN", "model.encoder=resnet34", "lossfunction=[wCE]", "epochs=3"])
    assert (cfg.model.arch, cfg.model.encoder, list(cfg.lossfunction), cfg.trainer.max_epochs) == (
        "FPN",
        "resnet34",
        ["wCE"],
        3,
    )


def test_paths_come_from_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGBENCH_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("SEGBENCH_LOGDIR", str(tmp_path / "l"))
    cfg = compose_cfg([])
    assert cfg.dataset.root == str(tmp_path / "d" / "camvid")
    assert str(tmp_path / "l") == cfg.LOGDIR


def test_default_paths_are_repo_relative(monkeypatch):
    for var in ("SEGBENCH_DATA", "SEGBENCH_LOGDIR", "SEGBENCH_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    cfg = compose_cfg([])
    repo = Path(__file__).resolve().parents[1]
    assert Path(cfg.environment.data_root) == repo / "data"
    assert Path(cfg.LOGDIR) == repo / "logs"


def test_no_absolute_paths_in_configs():
    for path in CONFIG_DIR.rglob("*.yaml"):
        text = path.read_text()
        for line in text.splitlines():
            value = line.split(":", 1)[-1].strip()
            assert not value.startswith(("/home", "/work", "/root", "/data", "/mnt", "/scratch")), f"{path}: {line}"


def _make_train_overrides() -> list[str]:
    """The overrides of `make train` as the Makefile spells them (``$(PY) main.py <overrides>``)."""
    recipe = re.search(r"^train:.*\n\t\$\(PY\) main\.py (.*)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "Makefile has no `train:` target running main.py"
    return recipe.group(1).split()


def test_make_train_composes_and_builds():
    overrides = _make_train_overrides()
    assert overrides == ["experiment=camvid_embedded"]
    cfg = compose_cfg(overrides)
    assert (cfg.model.arch, cfg.model.encoder, cfg.optimizer._target_) == (
        "Unet",
        "tu-tf_efficientnet_lite0",
        "torch.optim.AdamW",
    )
    assert cfg.model.encoder_weights == "efficientnet_lite0_imagenet"
    assert (list(cfg.model.input_norm.mean), list(cfg.model.input_norm.std)) == ([0.5] * 3, [0.5] * 3)
    assert (
        cfg.freeze_encoder_epochs,
        cfg.unfreeze_lr_factor,
        cfg.lr_scheduler.scheduler._target_.rsplit(".", 1)[-1],
    ) == (
        2,
        0.5,
        "OneCycleLR",
    )
    assert (cfg.trainer.precision, cfg.channels_last, list(cfg.dataset.crop_size)) == (
        canonical_precision("auto"),
        True,
        [256, 320],
    )
    assert Path(cfg.dataset.root) == REPO / "data" / "camvid" or "SEGBENCH_DATA" in os.environ
    module = SegmentationModule(cfg)
    assert module.output_names == ("out",) and module.criterion.names == ["CE"]
    assert next(module.model.parameters()).is_contiguous(memory_format=torch.channels_last)
    dm = SegDataModule(cfg)
    dm.setup("fit")
    if "SEGBENCH_DATA" not in os.environ:  # the embedded subset: 24 train / 12 val frames (data/camvid/*.txt)
        assert (len(dm.train_set), len(dm.val_set)) == (24, 12)
    sample = dm.train_set[0]
    assert tuple(sample["image"].shape) == (3, 256, 320) and tuple(sample["mask"].shape) == (256, 320)


MODEL_OPTIONS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
# (table name, method) per model option with its defaults: `display` (config/display/default.yaml)
BENCH_NAMES = {
    "espnet": ("ESPNet (p=2, q=8)", "ESPNet"),
    "espnetv2": ("ESPNetv2 (s=2.0)", "ESPNetv2"),
    "hrnet": ("HRNetV2-W48", "HRNet"),
    "hrnet_ocr": ("HRNetV2-W48 + OCR", "OCR"),
    "hrnet_ocr_aspp": ("HRNetV2-W48 + OCR + ASPP", "OCR"),
    "hrnet_ocr_ms": ("HRNetV2-W48 + OCR + HMSA (MS-OCR)", "MS-OCR"),
    "mmseg": ("segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py", "MMSeg"),
    "segman": ("SegMAN-t", "SegMAN"),
    "smp": ("Unet-resnet18", "Unet"),
}
HAVE_MMSEG = all(importlib.util.find_spec(m) is not None for m in ("mmseg", "mmengine", "mmcv"))


def test_every_model_option_has_a_benchmark_name():
    assert sorted(BENCH_NAMES) == MODEL_OPTIONS
    assert sorted(compose_cfg(config_name="benchmark").display) == MODEL_OPTIONS


def test_training_names_the_model_from_its_composed_display_node():
    from training.summary import model_display_name

    cfg = compose_cfg(["model=hrnet", "model.width=18"])
    assert model_display_name(cfg.model, "hrnet", cfg.display) == "HRNetV2-W18"
    cfg = compose_cfg(["model=hrnet", "display.hrnet.name='HR-{width}'"])  # an override reaches the name
    assert model_display_name(cfg.model, "hrnet", cfg.display) == "HR-48"
    assert model_display_name(cfg.model, "hrnet", None) == "hrnet"  # a config without `display`


@pytest.mark.parametrize(
    "option",
    [
        pytest.param(o, marks=pytest.mark.skipif(not HAVE_MMSEG, reason="pip install -r requirements-mmseg.txt"))
        if o == "mmseg"
        else o
        for o in MODEL_OPTIONS
    ],
)
def test_benchmark_config_measures_every_model_option(option, tmp_path):
    """benchmark.py's path: compose config/benchmark.yaml with `model=<option>`, model choice from Hydra's
    runtime choices, then run_benchmark (64x64 input, one warm-up and one timed forward on CPU; HRNet at W18)."""
    full = compose_cfg([f"model={option}"], config_name="benchmark", return_hydra_config=True)
    choice = full.hydra.runtime.choices.model
    assert choice == option and full.dataset.name == "camvid" and full.model.num_classes == 11
    assert describe_model(full.model, choice, full.display) == BENCH_NAMES[option]  # the option's defaults
    small = ["model.width=18"] if "width" in full.model else []
    fast = ["resolution=64x64", "warmup=1", "iterations=1", "device=cpu", "count_flops=false", *small]
    rec, path = run_benchmark(compose_cfg([f"model={option}", *fast], config_name="benchmark"), tmp_path, choice)
    assert rec.status == "ok", rec.error
    name, method = BENCH_NAMES[option]
    assert (rec.name, rec.method) == (name.replace("-W48", "-W18") if small else name, method)
    assert (rec.model, rec.dataset, rec.resolution, rec.iterations) == (option, "camvid", "64x64", 1)
    assert path.parent == tmp_path / "benchmark"


def test_benchmark_names_meet_the_reported_tables():
    """Reproduced rows join their reported rows by name (the dotted line of the plots)."""
    reported = set(pd.concat(pd.read_csv(p) for p in (REPO / "tables" / "reported").glob("*.csv"))["name"])
    joined = {o for o, (name, _) in BENCH_NAMES.items() if name in reported}
    assert joined == {"espnet", "espnetv2", "hrnet", "hrnet_ocr", "hrnet_ocr_ms"}
