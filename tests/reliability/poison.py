"""Test callback: make one weight NaN after a given optimizer step (what a diverging run does)."""

import math

import pytorch_lightning as pl
import torch


class PoisonAtStep(pl.Callback):
    """After optimizer step ``step`` (global step reaching it) the first parameter becomes NaN."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(math.nan)
