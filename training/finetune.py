"""Fine-tuning: weights-only initialisation (``+finetune_from``) and two-stage encoder freezing.

* :func:`finetune_from` — copy the tensors of a checkpoint into a model, skipping entries whose shape differs
  (e.g. a 19-class Cityscapes head into an 11-class CamVid model) and reporting missing/unexpected keys.
* :class:`FreezeEncoder` — the fastai ``freeze()`` / ``unfreeze()`` schedule (Howard & Gugger 2020, as in the
  SMP/fastai sweep this project grew from): the encoder (``encoder`` of smp models, ``backbone`` of HRNet
  ones) is frozen for ``freeze_encoder_epochs`` epochs, then unfrozen and the learning rate of every param
  group is multiplied by ``unfreeze_lr_factor`` (default 0.5).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.nn.parallel import DistributedDataParallel

from models.checkpoint import load_weights

log = logging.getLogger("segbench")

#: attribute names searched (shallowest first) for the part that ``freeze_encoder_epochs`` freezes
ENCODER_NAMES = ("encoder", "backbone")
#: param-group / scheduler keys holding learning rates (PolynomialLR uses ``lr``; OneCycleLR the others)
_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


def finetune_from(model: torch.nn.Module, path: str | Path) -> dict[str, list[str]]:
    """``+finetune_from``: initialise ``model`` from the weights in ``path`` (weights only: no optimizer, epoch
    or schedule), by :func:`models.checkpoint.load_weights` with ``strict=False``: tensors whose name and shape
    fit are copied (e.g. a 19-class Cityscapes model into an 11-class CamVid one keeps its own head).

    Returns:
        ``{"loaded": [...], "missing": [...], "unexpected": [...], "shape_mismatch": [...]}`` key lists.

    Raises:
        FileNotFoundError: ``path`` does not exist. ValueError: no tensor of the file fits the model.
    """
    report = load_weights(model, path, strict=False)
    mismatch = report["shape_mismatch"]
    log.info(
        f"finetune_from {path}: loaded {len(report['loaded'])}/{len(model.state_dict())} tensors "
        f"({report['loaded_by']}); shape mismatch (kept initialisation): {mismatch[:5]}"
        f"{'...' if len(mismatch) > 5 else ''}; missing {len(report['missing'])}, unexpected {len(report['unexpected'])}"
    )
    return report


def find_encoder(model: torch.nn.Module, names=ENCODER_NAMES) -> torch.nn.Module:
    """The shallowest submodule of ``model`` named like one of ``names``.

    Raises:
        ValueError: none found (names the model class and the names searched).
    """
    found = [(n.count("."), n, m) for n, m in model.named_modules() if n and n.rsplit(".", 1)[-1] in names]
    if not found:
        raise ValueError(f"freeze_encoder_epochs: {type(model).__name__} has no submodule named {list(names)}")
    return min(found, key=lambda t: t[:2])[2]


def scale_lr(optimizer: torch.optim.Optimizer, factor: float, schedulers=()) -> None:
    """Multiply every learning rate of ``optimizer`` (and the ``base_lrs`` of ``schedulers``) by ``factor``."""
    for group in optimizer.param_groups:
        for key in _LR_KEYS:
            if key in group:
                group[key] = group[key] * factor
    for sched in schedulers:
        if hasattr(sched, "base_lrs"):
            sched.base_lrs = [lr * factor for lr in sched.base_lrs]


class FreezeEncoder(pl.Callback):
    """Freeze the encoder for ``epochs`` epochs, then unfreeze it and scale the LR by ``lr_factor``.

    Frozen means ``requires_grad=False`` on the encoder's parameters (BatchNorm statistics keep updating,
    as fastai's ``freeze`` with ``train_bn``); the optimizer holds all parameters from the start, so the
    LR schedule (poly, OneCycle) is one curve over the whole run, and the unfreeze multiplies it by
    ``lr_factor`` once (state saved in checkpoints: a resumed run does not scale twice).

    Raises:
        ValueError: (at fit start) the model is wrapped in DDP without ``find_unused_parameters`` (frozen
            parameters get no gradient; use ``trainer.strategy=ddp_find_unused_parameters_true``).
    """

    def __init__(self, epochs: int, lr_factor: float = 0.5):
        self.epochs, self.lr_factor = int(epochs), float(lr_factor)
        self.unfrozen = False

    @property
    def state_key(self) -> str:
        return "FreezeEncoder"

    def state_dict(self) -> dict:
        return {"unfrozen": self.unfrozen}

    def load_state_dict(self, state_dict: dict) -> None:
        self.unfrozen = bool(state_dict.get("unfrozen", False))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # after the strategy's setup the module is wrapped: torch's DistributedDataParallel exposes the setting
        wrapped = trainer.strategy.model
        if isinstance(wrapped, DistributedDataParallel) and not wrapped.find_unused_parameters:
            raise ValueError(
                "freeze_encoder_epochs>0 under DDP needs trainer.strategy=ddp_find_unused_parameters_true "
                "(frozen encoder parameters get no gradient)"
            )

    def _set(self, pl_module: pl.LightningModule, trainable: bool) -> None:
        for p in find_encoder(pl_module.model).parameters():
            p.requires_grad_(trainable)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch < self.epochs:
            self._set(pl_module, False)
            return
        self._set(pl_module, True)
        if not self.unfrozen:
            self.unfrozen = True
            schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
            for opt in trainer.optimizers:
                scale_lr(opt, self.lr_factor, schedulers)
            log.info(f"Epoch {trainer.current_epoch}: encoder unfrozen, LR x {self.lr_factor}")
