"""validation.py: exact reproduction of training-time val mIoU, test-time overrides, the no-run-folder form."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from PIL import Image

import validation
from core.errors import run_entry as run_in_process
from core.run_folder import RunFolder, RunFolderError
from datasets import SegmentationDataset
from inference.loading import load_run_config, resolve_split
from metrics import metrics_from_confusion
from tests.conftest import error_line
from tests.inference.conftest import CAMVID_CLASSES
from training.datamodule import SegDataModule
from training.module import SegmentationModule


def logged_best_miou(run) -> float:
    return float(re.search(r"Best val mIoU ([0-9.]+)", (run / "main.log").read_text()).group(1))


@pytest.mark.slow
def test_validation_reproduces_training_val_exactly(tiny_run, capsys):
    run = tiny_run
    assert run_in_process("validation.py", validation.main, [f"checkpoint={run}"]) == 0
    stdout = capsys.readouterr().out
    assert "mIoU" in stdout and "Building" in stdout  # the printed IoU table
    out = sorted((run / "validation").iterdir())[-1]
    trained = torch.load(run / "ConfusionMatrix.pt")
    assert torch.equal(torch.load(out / "ConfusionMatrix.pt"), trained)  # same pixels, same predictions
    record = json.loads((out / "metrics.json").read_text())
    assert record["mIoU"] == pytest.approx(metrics_from_confusion(trained)["mIoU"], abs=0)
    assert round(record["mIoU"], 4) == logged_best_miou(run)
    assert record["num_images"] == 3 and record["split"] == "val" and record["inference"]["mode"] == "whole"
    assert set(record["IoU"]) == set(CAMVID_CLASSES)
    table = pd.read_csv(out / "per_class.csv")
    assert list(table.columns) == ["class", "IoU", "Acc"] and len(table) == 11
    assert OmegaConf.load(out / "config.yaml").dataset.test.mode == "whole"
    assert len(list((out / "predictions").glob("*.png"))) == 2  # num_vis=2 of TINY_RUN


@pytest.mark.slow
def test_bf16_channels_last_matches_lightning_validate(tiny_run, tmp_path):
    """Under precision=bf16-mixed + channels_last, validation.py equals Lightning's own validation loop."""
    overrides = ["precision=bf16-mixed", "channels_last=true"]
    cfg = load_run_config(tiny_run, overrides)
    module = SegmentationModule(cfg)
    module.load_state_dict(
        torch.load(RunFolder(tiny_run).best_ckpt, map_location="cpu", weights_only=False)["state_dict"]
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        precision="bf16-mixed",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(module, datamodule=SegDataModule(cfg), verbose=False)
    record = validation.main([f"checkpoint={tiny_run}", f"out={tmp_path}", "num_vis=0", *overrides])
    assert torch.equal(torch.load(tmp_path / "ConfusionMatrix.pt"), module.best_confmat)
    assert record["mIoU"] == metrics_from_confusion(module.best_confmat)["mIoU"] and record["precision"] == "bf16-mixed"


@pytest.mark.slow
def test_validation_slide_multiscale_flip_overrides(tiny_run, tiny_camvid, tmp_path):
    record = validation.main(
        [
            f"checkpoint={tiny_run}",
            "which=last",
            f"out={tmp_path}",
            "num_vis=0",
            "dataset.test.mode=slide",
            "dataset.test.crop_size=[64,64]",
            "dataset.test.stride=[32,48]",
            "dataset.test.scales=[0.75,1.0]",
            "dataset.test.flip=true",
            "dataset.test.window_batch=3",
        ]
    )
    assert record["inference"] == {
        "mode": "slide",
        "crop_size": [64, 64],
        "stride": [32, 48],
        "scales": [0.75, 1.0],
        "flip": True,
        "window_batch": 3,
        "accumulate_on": None,
        "resize": None,
    }
    confmat = torch.load(tmp_path / "ConfusionMatrix.pt")
    assert record["checkpoint"].endswith("last.ckpt")
    assert record["mIoU"] == pytest.approx(metrics_from_confusion(confmat)["mIoU"], abs=1e-6)
    assert OmegaConf.load(tmp_path / "config.yaml").dataset.test.crop_size == [64, 64]
    # every labelled pixel of the 3 val frames counted once (CamVid label 11 = Unlabelled is ignored)
    labels = [np.asarray(Image.open(p)) for p in sorted((tiny_camvid / "camvid" / "valannot").glob("*.png"))]
    assert len(labels) == 3 and confmat.sum().item() == sum(int((lab < 11).sum()) for lab in labels)
    assert not (tmp_path / "predictions").exists()


def test_run_config_reresolves_data_root(tiny_run, tmp_path):
    cfg = load_run_config(tiny_run)
    assert cfg.dataset.root == OmegaConf.load(tiny_run / "hparams.yaml").dataset.root  # pinned to the run's value
    moved = load_run_config(tiny_run, [f"environment.data_root={tmp_path}", "dataset.test.flip=true"])
    assert moved.dataset.root == f"{tmp_path}/camvid" and moved.dataset.test.flip is True


def test_missing_checkpoint_says_how_to_enable(tiny_run, tmp_path, capsys):
    shutil.copy(tiny_run / "hparams.yaml", tmp_path / "hparams.yaml")
    with pytest.raises(RunFolderError, match="checkpointing is on by default"):
        validation.main([f"checkpoint={tmp_path}"])
    assert run_in_process("validation.py", validation.main, [f"checkpoint={tmp_path}"]) == 1
    assert "validation.py: error: no checkpoint" in error_line(capsys.readouterr().err, "validation.py")


class TrainValOnly(SegmentationDataset):
    """A dataset class whose test split has no labels."""

    has_labels = ("train", "val")


def test_unlabelled_split_is_refused():
    cfg = OmegaConf.create(
        {"name": "mine", "_target_": f"{__name__}.TrainValOnly", "val_split": "val", "test_split": "test"}
    )
    assert resolve_split(cfg, "val") == "val"
    with pytest.raises(ValueError, match=r"no labels for split 'test' \(labelled splits: \['train', 'val'\]\)"):
        resolve_split(cfg, "test")


@pytest.mark.slow
def test_plain_state_dict_without_run_folder(tiny_run, tiny_camvid, tmp_path):
    state = torch.load(RunFolder(tiny_run).best_ckpt, map_location="cpu", weights_only=False)["state_dict"]
    pth = tmp_path / "unet_r18.pth"
    torch.save({k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}, pth)
    out = tmp_path / "out"
    record = validation.main(
        [
            f"checkpoint={pth}",
            "model=smp",
            "dataset=camvid",
            "split=val",
            f"out={out}",
            f"environment.data_root={tiny_camvid}",
            "val_batch_size=2",
            "num_workers=0",
        ]
    )
    assert record["weights_loaded_by"] == "state_dict" and record["num_images"] == 3
    assert torch.equal(torch.load(out / "ConfusionMatrix.pt"), torch.load(tiny_run / "ConfusionMatrix.pt"))
    with pytest.raises(ValueError, match=r"unet_r18.pth does not fit SMPModel: \d+ missing keys"):
        validation.main(
            [
                f"checkpoint={pth}",
                "model=smp",
                "model.encoder=resnet34",
                f"out={out}",
                f"environment.data_root={tiny_camvid}",
            ]
        )
