"""Hydra submitit launchers (``hydra/launcher=submitit_slurm|submitit_local``) whose waits are bounded.

hydra-submitit-launcher 1.2 waits for results with ``Job.results()``, which polls until a result file exists
or ``sacct`` reports the job finished. Without SLURM accounting (``accounting_storage/none``, as on the local
test cluster of ``scripts/slurm_local.sh``) ``sacct`` fails, so a job killed before writing its result
(``scancel``, OOM, time limit) is waited for forever. These subclasses bound that wait:

* ``launcher_wait.timeout_min`` (top-level config key; the launcher node's schema admits no extra keys):
  longest wait for one job, queueing included; then the job is cancelled and
  :class:`submitit.core.utils.UncompletedJobError` is raised.
* ``launcher_wait.gone_grace_s`` (SLURM only): a job absent from ``squeue`` for that long without a result
  file is reported as killed (``UncompletedJobError`` naming the job id and its logs) instead of waited for.

Requeued/preempted jobs stay in ``squeue`` (PENDING), so ``max_num_timeout`` resubmission keeps working;
the resubmitted job runs in the same run folder and resumes from ``last.ckpt`` (training/resume.py).
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import time
from collections.abc import Iterator

from hydra_plugins.hydra_submitit_launcher import submitit_launcher

log = logging.getLogger(__name__)


def _in_slurm_queue(job_id: str) -> bool | None:
    """True/False whether ``squeue`` lists ``job_id``; None when squeue cannot answer."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i", "-j", str(job_id)], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        # squeue exits 1 with "Invalid job id specified" once the job is purged from the controller
        return False if "Invalid job id" in out.stderr else None
    return bool(out.stdout.strip())


def bounded_wait(job, timeout_s: float, gone_grace_s: float | None, poll_s: float = 1.0) -> None:
    """Wait until ``job`` (a submitit Job) is done, at most ``timeout_s`` seconds.

    Raises:
        submitit.core.utils.UncompletedJobError: the timeout passed (the job is cancelled) or, with
            ``gone_grace_s``, the job left the SLURM queue without writing its result (killed).
    """
    from submitit.core.utils import UncompletedJobError

    deadline = time.monotonic() + timeout_s
    gone_since = None
    while not job.done():
        now = time.monotonic()
        if now > deadline:
            with contextlib.suppress(Exception):
                job.cancel(check=False)
            raise UncompletedJobError(
                f"job {job.job_id} not done after {timeout_s:.0f} s (launcher_wait.timeout_min); "
                f"cancelled. Logs: {job.paths.stdout} {job.paths.stderr}"
            )
        if gone_since is None or now - gone_since > 1:
            queued = _in_slurm_queue(job.job_id) if gone_grace_s is not None else True
            gone_since = (gone_since or now) if queued is False else None
        if gone_since is not None and now - gone_since > gone_grace_s and not job.paths.result_pickle.exists():
            raise UncompletedJobError(
                f"job {job.job_id} left the SLURM queue without a result (killed: scancel, "
                f"OOM or time limit?). Logs: {job.paths.stdout} {job.paths.stderr}"
            )
        time.sleep(poll_s)


@contextlib.contextmanager
def _bounded_job_waits(timeout_s: float, gone_grace_s: float | None) -> Iterator[None]:
    """Within the block, ``submitit`` ``Job.wait`` (used by ``Job.results``) is :func:`bounded_wait`."""
    from submitit.core import core

    original = core.Job.wait
    core.Job.wait = lambda job: bounded_wait(job, timeout_s, gone_grace_s)
    try:
        yield
    finally:
        core.Job.wait = original


class _Bounded:
    _gone_grace_default: float | None = None

    def launch(self, job_overrides, initial_job_idx):
        # the schema of hydra.launcher (hydra-submitit-launcher) admits no extra keys: settings are top-level
        wait = self.config.get("launcher_wait") or {}
        timeout_s = float(wait.get("timeout_min", 1440)) * 60
        grace = wait.get("gone_grace_s", self._gone_grace_default) if self._gone_grace_default is not None else None
        with _bounded_job_waits(timeout_s, None if grace is None else float(grace)):
            return super().launch(job_overrides, initial_job_idx)


class SlurmLauncher(_Bounded, submitit_launcher.SlurmLauncher):
    """``hydra/launcher=submitit_slurm`` with bounded waits (``launcher_wait.timeout_min``, ``.gone_grace_s``)."""

    _gone_grace_default = 20.0


class LocalLauncher(_Bounded, submitit_launcher.LocalLauncher):
    """``hydra/launcher=submitit_local`` (processes on this machine) with a bounded wait."""
