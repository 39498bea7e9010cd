"""``train(cfg)``: everything main.py does, callable from tests and launchers."""
from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from training.datamodule import SegDataModule
from training.module import SegmentationModule
from utils.run_folder import RunFolder

log = logging.getLogger("segbench")


def _instantiate_group(group: DictConfig | None, **fill) -> list:
    """Instantiate every ``_target_`` entry of a config group dict; keys in ``fill`` left null are filled."""
    out = []
    for name, node in (group or {}).items():
        if node is None or "_target_" not in node:
            continue
        kwargs = {k: v for k, v in fill.items() if k in node and node[k] in (None, "")}
        out.append(instantiate(node, **kwargs))
    return out


def build_trainer(cfg: DictConfig, run: RunFolder) -> pl.Trainer:
    """Lightning Trainer from ``cfg.trainer`` with callbacks and loggers writing into ``run``."""
    callbacks = _instantiate_group(cfg.get("callbacks"), dirpath=str(run.checkpoints))
    loggers = _instantiate_group(cfg.get("logger"), save_dir=str(run.root))
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, default_root_dir=str(run.root))


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Train ``cfg`` into the run folder ``run_dir``; returns the best validation metrics.

    Returns:
        dict with ``best_mIoU`` (float, 0..1), ``best_epoch`` (int), ``run_dir`` (str).
    """
    run = RunFolder(run_dir).create()
    pl.seed_everything(int(cfg.seed), workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    if pl.utilities.rank_zero_only.rank == 0:
        run.write_hparams(cfg)
        log.info(f"Run folder: {run.root}")
    datamodule = SegDataModule(cfg)
    module = SegmentationModule(cfg)
    module.best_confmat_path = run.confusion_matrix
    trainer = build_trainer(cfg, run)
    trainer.fit(module, datamodule=datamodule)
    result = {"best_mIoU": float(module.best_miou), "best_epoch": int(module.best_epoch), "run_dir": str(run.root)}
    if trainer.is_global_zero:
        log.info(f"Best val mIoU {result['best_mIoU']:.4f} at epoch {result['best_epoch']}")
        log.info(f"Run folder: {run.root}")
    return result
