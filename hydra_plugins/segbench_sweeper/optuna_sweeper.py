"""The Optuna sweeper of ``hparams_search=...`` (hydra-optuna-sweeper) with resumable studies.

hydra-optuna-sweeper 1.3 leaves two gaps when a study in a storage (``${LOGDIR}/optuna.db``) is resumed:

* an interrupted trial (Ctrl+C, SIGINT: Lightning turns it into ``SystemExit``) stays ``RUNNING`` for ever. Here the
  trials this process asked for and did not finish are told ``FAIL`` on any interruption of the sweep, and when a
  study is resumed, ``RUNNING`` trials of a sweep process that no longer exists are told ``FAIL`` first (decided
  on the host that asked for them, by pid and process start time, as ``core.liveness`` decides a run
  ``killed``; a trial without that record is stale once it is older than :data:`OWNERLESS_STALE_S`);
* a seeded sampler (``TPESampler(seed=1234)``) restarts its random start-up phase at every invocation, so a resumed
  study proposes the same points again. Here a resumed study's sampler is built with ``seed + <trials in the
  study>`` (:func:`resumed_sampler`): a fresh study draws exactly as before, a resumed one draws new points, and
  both stay reproducible.

Selected by ``hydra.sweeper._target_`` (``config/hparams_search/*.yaml``); the sweeper's settings are those of
hydra-optuna-sweeper. Optuna and the sweeper (``requirements-tracking.txt``) are imported only when a search runs.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import socket
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)

#: system attribute of a trial naming the sweep process that asked for it
OWNER_ATTR = "segbench_owner"
#: a RUNNING trial without an owner record (asked by an older sweeper) is stale after this many seconds
OWNERLESS_STALE_S = 60.0


def owner() -> dict:
    """This process as a trial's owner.

    Returns:
        ``{"hostname", "pid", "pid_start"}`` (start time in s since the epoch, :func:`core.liveness.process_start`;
        None where unknown).
    """
    from core.liveness import process_start

    return {"hostname": socket.gethostname(), "pid": os.getpid(), "pid_start": process_start(os.getpid())}


def is_stale(trial: Any, now: _dt.datetime | None = None) -> bool:
    """Whether nobody will finish the RUNNING ``trial``.

    Args:
        trial: an Optuna ``FrozenTrial`` in state RUNNING.
        now: the current time (default: now; Optuna 2 stores naive local times).

    Returns:
        True when its owner process (on this host) is gone, or it has no owner record and started more than
        :data:`OWNERLESS_STALE_S` ago.
    """
    from core.liveness import effective_status

    record = trial.system_attrs.get(OWNER_ATTR)
    if not record:
        start = trial.datetime_start
        return start is None or ((now or _dt.datetime.now()) - start).total_seconds() > OWNERLESS_STALE_S
    return effective_status({"status": "running", **record}) == "killed"


def fail_stale_trials(study: Any) -> list[int]:
    """Tell ``FAIL`` for every stale RUNNING trial of ``study`` (:func:`is_stale`).

    Args:
        study: an ``optuna.Study``.

    Returns:
        the numbers of the trials failed.
    """
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_stale(trial):
            study.tell(trial.number, state=TrialState.FAIL)
            failed.append(trial.number)
    if failed:
        log.warning(f"Study {study.study_name}: trials {failed} were left RUNNING by a process that is gone: FAIL")
    return failed


def resumed_sampler(sampler_cfg: DictConfig | None, sampler: Any, n_trials_done: int) -> Any:
    """The sampler for a study that already holds ``n_trials_done`` trials.

    A sampler configured with a ``seed`` is instantiated again with ``seed + n_trials_done``; otherwise (fresh
    study, no seed, a grid sampler's partial) ``sampler`` is returned as it is.

    Args:
        sampler_cfg: ``hydra.sweeper.sampler`` (``_target_``, ``seed``, ...).
        sampler: the sampler Hydra instantiated from it.
        n_trials_done: trials already in the study, in any state.

    Returns:
        the sampler to use.
    """
    from hydra.utils import instantiate

    seed = sampler_cfg.get("seed") if sampler_cfg is not None else None
    if n_trials_done <= 0 or seed is None or sampler_cfg.get("_partial_"):
        return sampler
    return instantiate(sampler_cfg, seed=int(seed) + int(n_trials_done))


def _existing_study(study_name: str | None, storage: Any) -> Any:
    """The study ``study_name`` in ``storage``, or None (no storage, or no such study yet)."""
    import optuna

    if not study_name or not storage:
        return None
    try:
        return optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler())
    except KeyError:
        return None


def _impl_class():
    from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
    from optuna.trial import TrialState

    class ResumingOptunaSweeperImpl(OptunaSweeperImpl):
        """hydra-optuna-sweeper's implementation with the resume rules of the module docstring."""

        def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
            super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
            self.sampler_cfg = config.hydra.sweeper.get("sampler")
            self.asked: list = []

        def _configure_trials(self, trials, search_space_distributions, fixed_params):
            for trial in trials:
                trial.set_system_attr(OWNER_ATTR, owner())
                self.asked.append(trial)
            return super()._configure_trials(trials, search_space_distributions, fixed_params)

        def sweep(self, arguments: list[str]) -> None:
            study = _existing_study(self.study_name, self.storage)
            if study is not None:
                fail_stale_trials(study)
                n_done = len(study.get_trials(deepcopy=False))
                self.sampler = resumed_sampler(self.sampler_cfg, self.sampler, n_done)
                if n_done:
                    log.info(f"Study {self.study_name} holds {n_done} trials: sampler seed + {n_done}")
            try:
                return super().sweep(arguments)
            except BaseException as e:  # Ctrl+C (Lightning: SystemExit), errors: no trial stays RUNNING
                self._fail_unfinished(e)
                raise

        def _fail_unfinished(self, exc: BaseException) -> None:
            if not self.asked:
                return
            study = self.asked[0].study
            running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            for trial in self.asked:
                if trial.number in running:
                    study.tell(trial, state=TrialState.FAIL)
                    log.warning(f"Trial {trial.number} interrupted ({type(exc).__name__}): FAIL")

    return ResumingOptunaSweeperImpl


class OptunaSweeper(Sweeper):
    """``hydra/sweeper=optuna`` (hydra-optuna-sweeper 1.3, same settings) with the resume rules of the module
    docstring: interrupted and stale trials end ``FAIL``, a resumed study's seeded sampler proposes new points.

    Args:
        kwargs: the settings of ``hydra.sweeper`` (``sampler``, ``direction``, ``storage``, ``study_name``,
            ``n_trials``, ``n_jobs``, ``max_failure_rate``, ``search_space``, ``custom_search_space``, ``params``).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.sweeper = _impl_class()(**kwargs)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Hydra's sweeper setup (launcher, config)."""
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        """Run the trials (resuming the study when it exists)."""
        return self.sweeper.sweep(arguments)
