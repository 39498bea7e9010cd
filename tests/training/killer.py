"""Test helper: a callback that SIGKILLs its own process mid-epoch (a crash no handler can catch).

Used from the command line: ``+callbacks.kill._target_=tests.training.killer.KillAtStep +callbacks.kill.step=3``;
it only fires when ``SEGBENCH_TEST_KILL=1`` is set, so the same overrides can be resumed without it.
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
