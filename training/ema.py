"""Exponential moving average (EMA) of the weights, from config: ``ema.decay=0.999``.

Lightning 2.6's :class:`pytorch_lightning.callbacks.EMAWeightAveraging` does the work (public API, no shim):
after every ``update_every_n_steps``-th optimizer step (from ``update_starting_at_step`` on) it updates
``ema = decay * ema + (1 - decay) * w`` over every parameter and buffer (BatchNorm running statistics
included; the first update copies ``w``), as torch's ``AveragedModel`` with ``get_ema_avg_fn``. Consequences
for a segbench run:

* validation (``val/mIoU``, ``ConfusionMatrix.pt``, the best-epoch record) runs on the EMA weights: the
  callback swaps them in at ``on_validation_epoch_start`` and back at ``on_validation_epoch_end``;
* every checkpoint's ``state_dict`` holds the EMA weights (so ``checkpoints/best.ckpt``, validation.py,
  predict.py and benchmark.py use them), the raw weights are in ``current_model_state``, the
  ``AveragedModel`` counter in ``averaging_state``;
* resuming from ``last.ckpt`` restores both the raw and the EMA weights and the last update step;
* after the last epoch the module holds the EMA weights.

Source: Polyak & Juditsky (1992); the EMA "model EMA" recipe of timm / MMSegmentation's ``EMAHook``.
"""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import EMAWeightAveraging

from core.schema import EmaConfig, checked


def ema_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """``[EMAWeightAveraging]`` when ``cfg.ema.decay`` is set, else ``[]`` (also when the config has no ``ema``).

    Args:
        cfg: the training config; ``ema`` node typed by :class:`core.schema.EmaConfig`: ``decay`` (float in
            (0, 1) or null = off), ``update_every_n_steps`` (int >= 1), ``update_starting_at_step`` (int or null).

    Raises:
        ValueError: a value of ``ema`` of the wrong type or out of its range, or an unknown key (key named).
    """
    if cfg.get("ema") is None:
        return []
    ema = checked(cfg.ema, EmaConfig, "ema")
    if ema.decay is None:
        return []
    return [
        EMAWeightAveraging(
            decay=ema.decay,
            update_every_n_steps=ema.update_every_n_steps,
            update_starting_at_step=ema.update_starting_at_step,
        )
    ]
