"""Test helper callbacks (named by ``+callbacks.<name>._target_=tests.training.probes.<Class>``)."""

from __future__ import annotations

import pytorch_lightning as pl


def _encoder_sums(enc) -> dict:
    return {
        "encoder_sum": float(sum(p.detach().double().sum() for p in enc.parameters())),
        "encoder_bn_sum": float(sum(b.double().sum() for n, b in enc.named_buffers() if "running_" in n)),
    }


class Record(pl.Callback):
    """Records, per train batch: dtype of the model's ``"out"``, the LR, and whether the encoder trains."""

    seen: list[dict] = []  # class attribute: tests read it after an in-process run

    start: dict = {}  # encoder sums before the first step

    def on_train_start(self, trainer, pl_module) -> None:
        Record.seen = []
        Record.start = _encoder_sums(pl_module.model.net.encoder)
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
                **_encoder_sums(enc),
                "encoder_in_eval": not any(m.training for m in enc.modules()),
                "decoder_sum": float(sum(p.detach().double().sum() for p in pl_module.model.net.decoder.parameters())),
            }
        )
