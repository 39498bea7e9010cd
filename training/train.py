"""``train(cfg)``: everything main.py does, callable from tests and launchers.

Besides building and fitting, this is where a run is continued or initialised:

* resume: ``+continue_from=<run folder>`` (main.py points Hydra's run dir at that folder) or a run folder
  that already holds ``checkpoints/last.ckpt`` (SLURM requeue/preemption re-runs the same job in the same
  folder) resumes from ``last.ckpt``: weights, optimizer, LR scheduler, epoch/step counters, callback
  states and the best-so-far metrics; randomness is a function of ``(seed, epoch)`` (training/determinism.py);
* ``+finetune_from=<ckpt>``: weights only (training/finetune.py);
* ``freeze_encoder_epochs=N`` / ``unfreeze_lr_factor``: two-stage fine-tuning (training/finetune.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from training.datamodule import SegDataModule
from training.determinism import EpochSeedCallback
from training.ema import ema_callbacks
from training.finetune import FreezeEncoder, finetune_from
from training.module import SegmentationModule
from training.resume import BestMetricState, resume_checkpoint
from training.summary import RunSummary
from utils.run_folder import RunFolder

log = logging.getLogger("segbench")


def _instantiate_group(group: DictConfig | None, **fill) -> list:
    """Instantiate every ``_target_`` entry of a config group dict; keys in ``fill`` left null are filled."""
    out = []
    for _name, node in (group or {}).items():
        if node is None or "_target_" not in node:
            continue
        kwargs = {k: v for k, v in fill.items() if k in node and node[k] in (None, "")}
        out.append(instantiate(node, **kwargs))
    return out


def segbench_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Callbacks every run gets: best-metric state in checkpoints, per-epoch seeding, optional encoder freeze."""
    out = [BestMetricState(), EpochSeedCallback(int(cfg.seed))]
    out.append(RunSummary(cfg))  # summary.json in the run folder (training/summary.py)
    if int(cfg.get("freeze_encoder_epochs") or 0) > 0:
        out.append(FreezeEncoder(int(cfg.freeze_encoder_epochs), float(cfg.get("unfreeze_lr_factor", 0.5))))
    out += ema_callbacks(cfg)  # ema.decay=0.999: validation and checkpoints on EMA weights (training/ema.py)
    return out


def build_trainer(cfg: DictConfig, run: RunFolder) -> pl.Trainer:
    """Lightning Trainer from ``cfg.trainer`` with callbacks and loggers writing into ``run``."""
    callbacks = _instantiate_group(cfg.get("callbacks"), dirpath=str(run.checkpoints)) + segbench_callbacks(cfg)
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
    ckpt_path = resume_checkpoint(cfg, run)
    datamodule = SegDataModule(cfg)
    module = SegmentationModule(cfg)
    module.best_confmat_path = run.confusion_matrix
    if cfg.get("finetune_from") and ckpt_path is None:
        finetune_from(module.model, cfg.finetune_from)
    trainer = build_trainer(cfg, run)
    if ckpt_path is not None and trainer.is_global_zero:
        log.info(f"Resuming from {ckpt_path}")
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    result = {"best_mIoU": float(module.best_miou), "best_epoch": int(module.best_epoch), "run_dir": str(run.root)}
    if trainer.is_global_zero:
        log.info(f"Best val mIoU {result['best_mIoU']:.4f} at epoch {result['best_epoch']}")
        log.info(f"Run folder: {run.root}")
    return result
