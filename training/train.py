"""``train(cfg)``: everything main.py does, callable from tests and launchers.

Besides building and fitting, this is where a run is continued or initialised:

* resume: ``+continue_from=<run folder>`` (main.py stages Hydra's files, see training/resume.py) or a run folder
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

from core.run_folder import RunFolder
from training.datamodule import SegDataModule
from training.determinism import EpochSeedCallback
from training.ema import ema_callbacks
from training.finetune import FreezeEncoder, finetune_from
from training.guards import NonFiniteGuard, check_split_labels
from training.module import SegmentationModule
from training.resume import BestMetricState, ReplanSchedule, adopt_staging, check_checkpoint, resume_checkpoint
from training.summary import RunSummary

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
    """Callbacks every run gets: best-metric state in checkpoints, per-epoch seeding, LR re-planning on a longer
    continue, the non-finite guard, optional encoder freeze."""
    out = [BestMetricState(), EpochSeedCallback(int(cfg.seed)), ReplanSchedule(cfg)]
    out.append(NonFiniteGuard())  # non-finite loss/weights stop the run; no such checkpoint is written
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

    With ``cfg.continue_from`` the run folder is that folder and ``run_dir`` is where Hydra staged its files
    (main.py: a temporary folder; in-process callers may pass the run folder itself). Before anything is
    written into the run folder: the checkpoint to resume is read and its tensor shapes checked against the
    model of ``cfg`` (:func:`training.resume.check_checkpoint`), the datasets are built and the val split's
    label values checked (:func:`training.guards.check_split_labels`).

    Returns:
        dict with ``best_mIoU`` (float, 0..1), ``best_epoch`` (int), ``run_dir`` (str).

    Raises:
        ValueError / RunFolderError / DatasetError: bad checkpoint, config or data (one line, culprit named).
    """
    continuing = bool(cfg.get("continue_from"))
    run = RunFolder(cfg.continue_from if continuing else run_dir)
    pl.seed_everything(int(cfg.seed), workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    ckpt_path = resume_checkpoint(cfg, run)
    module = SegmentationModule(cfg)
    if ckpt_path is not None:
        check_checkpoint(module, ckpt_path)
    datamodule = SegDataModule(cfg)
    datamodule.setup("fit")
    check_split_labels(datamodule.val_set)
    if cfg.get("finetune_from") and ckpt_path is None:
        finetune_from(module.model, cfg.finetune_from)
    # checks passed: from here on the run folder is written
    if continuing:
        adopt_staging(Path(run_dir), run)
    run.create()
    module.best_confmat_path = run.confusion_matrix
    if pl.utilities.rank_zero_only.rank == 0:
        run.write_hparams(cfg)
        log.info(f"Run folder: {run.root}")
    trainer = build_trainer(cfg, run)
    if ckpt_path is not None and trainer.is_global_zero:
        log.info(f"Resuming from {ckpt_path}")
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    result = {"best_mIoU": float(module.best_miou), "best_epoch": int(module.best_epoch), "run_dir": str(run.root)}
    if trainer.is_global_zero:
        log.info(f"Best val mIoU {result['best_mIoU']:.4f} at epoch {result['best_epoch']}")
        log.info(f"Run folder: {run.root}")
    return result
