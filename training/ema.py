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


def ema_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """``[EMAWeightAveraging]`` when ``cfg.ema.decay`` is set, else ``[]``.

    Args:
        cfg: the training config; ``ema`` node: ``decay`` (float in (0, 1) or null = off),
            ``update_every_n_steps`` (int >= 1), ``update_starting_at_step`` (int or null).

    Raises:
        ValueError: ``ema.decay`` outside (0, 1) or ``ema.update_every_n_steps`` < 1 (value named).
    """
    ema = cfg.get("ema") or {}
    decay = ema.get("decay")
    if decay is None:
        return []
    if not 0.0 < float(decay) < 1.0:
        raise ValueError(f"ema.decay={decay}: expected a float in (0, 1), e.g. 0.999, or null to switch EMA off")
    every = int(ema.get("update_every_n_steps", 1))
    if every < 1:
        raise ValueError(f"ema.update_every_n_steps={every}: expected an int >= 1")
    start = ema.get("update_starting_at_step")
    return [
        EMAWeightAveraging(
            decay=float(decay),
            update_every_n_steps=every,
            update_starting_at_step=None if start is None else int(start),
        )
    ]
