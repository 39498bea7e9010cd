"""Stop a run whose loss or weights stop being finite, before anything non-finite is saved.

:class:`NonFiniteGuard` (one of the callbacks every run gets, training/train.py::segbench_callbacks):

* before each backward pass the loss (and each model output's loss term, ``train/loss_<output>``) must be
  finite, otherwise :class:`NonFiniteError` names the epoch, the global step, the output(s) and the values;
* after each optimizer step every parameter must be finite (one stacked ``isfinite().all()`` flag per
  tensor, a single host sync per step), otherwise the error names the first non-finite parameter;
* when any checkpoint is about to be written (``best.ckpt``, ``last.ckpt``) its ``state_dict`` is checked
  again: a checkpoint holding a non-finite tensor is never written, so ``last.ckpt`` stays the last good one.

:func:`check_split_labels` reads every label of a split once (values only, no images, no transforms) so a
bad val label fails before the first training step instead of after an epoch.

Lightning stops ``fit`` on the exception (no checkpoint on exception unless a callback asks for it); main.py
turns it into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import logging
import math
import time

import pytorch_lightning as pl
import torch

from datasets.base import CorruptFileError

log = logging.getLogger("segbench")


class NonFiniteError(RuntimeError):
    """The loss or a weight became NaN/inf; the message names epoch, step, output and loss."""


def first_non_finite(tensors) -> str | None:
    """Name of the first floating-point tensor in ``tensors`` (iterable of ``(name, Tensor)``) holding NaN/inf."""
    for name, t in tensors:
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


class NonFiniteGuard(pl.Callback):
    """Raise :class:`NonFiniteError` on a non-finite loss or weight (see the module docstring)."""

    def _where(self, trainer: pl.Trainer) -> str:
        return f"epoch {trainer.current_epoch}, step {trainer.global_step}"

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if bool(torch.isfinite(loss.detach()).all()):
            return
        parts = getattr(pl_module, "last_loss_parts", None) or {}
        bad = {k: float(v) for k, v in parts.items() if not math.isfinite(float(v))}
        outputs = ", ".join(f"{k}={v}" for k, v in bad.items()) or "out"
        raise NonFiniteError(
            f"non-finite loss at {self._where(trainer)}: loss={float(loss.detach())} (output {outputs}); "
            f"training stopped, checkpoints/last.ckpt is the last finite state (lower lr={pl_module.cfg.get('lr')}?)"
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        params = [p.detach() for p in pl_module.parameters() if p.is_floating_point()]
        if not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            return
        name = first_non_finite(pl_module.named_parameters())
        if name is not None:
            raise NonFiniteError(
                f"non-finite weight {name} after {self._where(trainer)} (loss was finite); training stopped, "
                f"checkpoints/last.ckpt is the last finite state"
            )

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        name = first_non_finite((checkpoint.get("state_dict") or {}).items())
        if name is not None:
            raise NonFiniteError(
                f"refusing to save a checkpoint with non-finite tensor {name} at {self._where(trainer)}; "
                f"checkpoints/last.ckpt is the last finite state"
            )


def check_split_labels(dataset) -> int:
    """Read every label map of ``dataset`` (a :class:`datasets.base.SegmentationDataset`) and check its values
    (``[0, K)`` or ``ignore_index`` after the dataset's label mapping); images are not decoded.

    Datasets without ``pairs``/``load_label`` (wrappers) are not checked. With ``skip_corrupt`` an unreadable
    label is left to the loader (it is skipped there).

    Returns:
        number of label files checked.

    Raises:
        datasets.base.DatasetError: the first bad label (file and values named, see ``load_label``).
    """
    pairs, load = getattr(dataset, "pairs", None), getattr(dataset, "load_label", None)
    if pairs is None or load is None or not getattr(dataset, "check_labels", True):
        return 0
    t0, n = time.perf_counter(), 0
    for _image, label in pairs:
        if label is None:
            continue
        try:
            load(label)
        except CorruptFileError:
            if not getattr(dataset, "skip_corrupt", False):
                raise
        n += 1
    log.info(f"{n} labels of split {getattr(dataset, 'split', '?')!r} checked in {time.perf_counter() - t0:.1f} s")
    return n
