"""DDP for real on CPU: 2 processes, gloo (trainer=ddp_cpu); validation metrics with no duplicates. SyncBN is a
GPU-only feature of torch DDP, checked here through the composed trainer=ddp config."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from PIL import Image

from core.run_folder import RunFolder
from tests.conftest import REPO, compose_cfg, run_entry
from training.datamodule import SegDataModule
from training.module import SegmentationModule

N_TRAIN, N_VAL = 4, 5  # odd val set: a padding DistributedSampler would count one image twice


def _small_camvid(root):
    """data_root/camvid with the first 4 train and 5 val frames of the embedded subset (symlinks)."""
    src = REPO / "data" / "camvid"
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for sub in (split, f"{split}annot"):
            (root / "camvid" / sub).mkdir(parents=True)
        for img in sorted((src / split).glob("*.png"))[:n]:
            (root / "camvid" / split / img.name).symlink_to(img)
            (root / "camvid" / f"{split}annot" / img.name).symlink_to(src / f"{split}annot" / img.name)
    return root


def test_ddp_cpu_config_composes():
    cfg = compose_cfg(["trainer=ddp_cpu"])
    assert cfg.trainer.devices == 2 and cfg.trainer.accelerator == "cpu" and cfg.trainer.sync_batchnorm is False
    assert cfg.trainer.strategy.process_group_backend == "gloo"
    gpu = compose_cfg(["trainer=ddp"])
    assert gpu.trainer.strategy == "ddp" and gpu.trainer.sync_batchnorm is True and gpu.trainer.accelerator == "gpu"


def test_ddp_two_process_validation_equals_one_process(tmp_path):
    data = _small_camvid(tmp_path / "data")
    logdir = tmp_path / "logs"
    overrides = [
        "trainer=ddp_cpu",
        "epochs=1",
        "batch_size=2",
        "val_batch_size=1",
        "num_workers=0",
        "dataset.crop_size=[64,96]",
        "trainer.limit_train_batches=1",
        "num_vis=0",
        "callbacks.progress_bar.refresh_rate=0",
        f"environment.data_root={data}",
    ]
    proc = run_entry("main.py", *overrides, env={"SEGBENCH_LOGDIR": str(logdir)})
    assert proc.returncode == 0, proc.stderr[-3000:]

    runs = [p.parent for p in logdir.glob("camvid/smp/*/*/hparams.yaml")]
    assert len(list(logdir.glob("camvid/smp/*/*"))) == 1 and len(runs) == 1  # ranks > 0 made no folder
    run = RunFolder(runs[0])
    assert run.missing() == []
    assert OmegaConf.load(run.hparams).trainer.devices == 2
    ddp_confmat = torch.load(run.confusion_matrix)

    # the same weights validated by one process
    cfg = compose_cfg([o for o in overrides if not o.startswith("trainer=")])
    module = SegmentationModule.load_from_checkpoint(run.best_ckpt, map_location="cpu")
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(module, datamodule=SegDataModule(cfg))
    assert torch.equal(ddp_confmat, module.best_confmat)

    labelled = sum(int((np.asarray(Image.open(p)) != 11).sum()) for p in (data / "camvid" / "valannot").glob("*.png"))
    assert int(ddp_confmat.sum()) == labelled  # every val pixel counted exactly once
