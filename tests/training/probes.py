"""Test helper callbacks (named by ``+callbacks.<name>._target_=tests.training.probes.<Class>``)."""

from __future__ import annotations

import pytorch_lightning as pl


class Record(pl.Callback):
    """Records, per train batch: dtype of the model's ``"out"``, the LR, and whether the encoder trains."""

    seen: list[dict] = []  # class attribute: tests read it after an in-process run

    def on_train_start(self, trainer, pl_module) -> None:
        Record.seen = []
        self._dtype = None

        def hook(module, inputs, outputs):
            self._dtype = outputs["out"].dtype

        pl_module.model.register_forward_hook(hook)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        enc = pl_module.model.net.encoder
        Record.seen.append(
            {
                "epoch": trainer.current_epoch,
                "step": trainer.global_step,
                "dtype": self._dtype,
                "lr": trainer.optimizers[0].param_groups[0]["lr"],
                "encoder_trains": all(p.requires_grad for p in enc.parameters()),
                "encoder_sum": float(sum(p.detach().double().sum() for p in enc.parameters())),
            }
        )
