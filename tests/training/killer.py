"""Test helpers: callbacks that SIGKILL their own process mid-epoch (a crash no handler can catch) or SIGINT it.

Used from the command line: ``+callbacks.kill._target_=tests.training.killer.KillAtStep +callbacks.kill.step=3``;
it only fires when ``SEGBENCH_TEST_KILL=1`` is set, so the same overrides can be resumed without it.
``+callbacks.interrupt._target_=tests.training.killer.InterruptAtStep`` sends SIGINT (Ctrl+C) at step 0.
"""

from __future__ import annotations

import os
import signal

import pytorch_lightning as pl


class KillAtStep(pl.Callback):
    """SIGKILL this process at the start of the batch where ``trainer.global_step == step``."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if os.environ.get("SEGBENCH_TEST_KILL") == "1" and trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class InterruptAtStep(pl.Callback):
    """SIGINT (Ctrl+C) this process at the start of the batch where ``trainer.global_step == step``."""

    def __init__(self, step: int = 0):
        self.step = int(step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)
