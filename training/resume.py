"""Resume a run: ``+continue_from=<run folder>``, SLURM requeue, and the state a checkpoint must carry.

* :func:`continue_from_argv` (called by main.py before Hydra runs) turns
  ``python main.py +continue_from=<run folder> [overrides]`` into the run's original overrides (from
  ``<run folder>/hydra/overrides.yaml``), then the new ones (same key: the new one wins), then
  ``hydra.run.dir=<staging folder>``: Hydra writes its ``hydra/`` files and ``main.log`` into a temporary
  staging folder, never into the run folder itself.
* :func:`resume_checkpoint` picks ``checkpoints/last.ckpt`` of the run folder when continuing, or when the
  folder already has one (a requeued/preempted SLURM job re-runs in its own folder and so resumes).
* :func:`check_checkpoint` reads that checkpoint and compares every model tensor's shape with the model of
  the (new) config; only then does :func:`adopt_staging` move the staged ``hydra/`` files into the run
  folder and append the staged log to its ``main.log``. A continue that fails (truncated ``last.ckpt``,
  another encoder, a bad val label) leaves every file of the run folder as it was.
* :class:`ReplanSchedule` re-plans the LR schedule when the planned number of optimizer steps changed
  (``epochs=<more>``); :class:`AppendingCSVLogger` appends to ``metrics.csv`` instead of deleting it.
* :class:`BestMetricState` stores the best-epoch record of the module in checkpoints.
"""

from __future__ import annotations

import csv
import inspect
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from core.run_folder import RunFolder, RunFolderError
from models.checkpoint import read_checkpoint

log = logging.getLogger("segbench")

#: overrides of the original run that a continuation drops (weights come from last.ckpt instead)
_DROPPED_ON_CONTINUE = ("continue_from", "finetune_from")


def _key(override: str) -> str:
    return override.lstrip("~+").split("=", 1)[0]


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" else value


def continue_from_argv(argv: list[str]) -> list[str]:
    """Rewrite a command line holding ``[+]continue_from=<run folder>`` (returned unchanged without one).

    Args:
        argv: ``sys.argv[1:]``.

    Returns:
        original overrides of the run, merged with ``argv`` (``argv`` wins per key), then
        ``+continue_from='<folder>'`` and ``hydra.run.dir='<staging>'`` (a new temporary folder; quoted: older
        run folder names hold ``,=[]``).

    Raises:
        RunFolderError: the folder or its ``hydra/overrides.yaml`` is missing.
        ValueError: used together with ``-m``/``--multirun`` (continue one run at a time).
    """
    hits = [a for a in argv if _key(a) == "continue_from" and not a.startswith("~")]
    if not hits:
        return list(argv)
    if any(a in ("-m", "--multirun") for a in argv):
        raise ValueError("+continue_from continues one run: drop -m/--multirun")
    run = RunFolder(_unquote(hits[-1].split("=", 1)[1]))
    overrides_file = run.hydra_dir / "overrides.yaml"
    if not overrides_file.is_file():
        raise RunFolderError(f"continue_from: {overrides_file} is missing ({run.root} is not a main.py run folder)")
    merged: dict[str, str] = {}
    for o in [str(x) for x in OmegaConf.load(overrides_file)] + list(argv):
        k = _key(o)
        if k in _DROPPED_ON_CONTINUE or k == "hydra.run.dir":
            continue
        merged.pop(k, None)
        merged[k] = o
    staging = tempfile.mkdtemp(prefix="segbench-continue-")
    return list(merged.values()) + [f"+continue_from='{run.root}'", f"hydra.run.dir='{staging}'"]


def check_checkpoint(module: torch.nn.Module, path: Path) -> dict:
    """Read the Lightning checkpoint ``path`` and check that it fits ``module`` (same keys, same shapes).

    Returns:
        the checkpoint dict (as :func:`models.checkpoint.read_checkpoint` gives it).

    Raises:
        ValueError: the file cannot be read (truncated, not a checkpoint: file named), or its model tensors
            differ from the configured model (the first differing keys and both shapes named).
    """
    ckpt = read_checkpoint(path)
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is no Lightning checkpoint of main.py (no state_dict)")
    own = module.state_dict()
    keys = sorted(set(own) | set(state), key=lambda k: (k not in state or k not in own, k))  # shape clashes first
    differ = [
        f"{k}: checkpoint {tuple(state[k].shape) if k in state else 'missing'} vs config "
        f"{tuple(own[k].shape) if k in own else 'missing'}"
        for k in keys
        if k not in state or k not in own or tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if differ:
        raise ValueError(
            f"checkpoint {path} does not fit the configured model ({len(differ)} tensors differ, first: "
            f"{'; '.join(differ[:2])}): continue with the run's model settings"
        )
    return ckpt


def adopt_staging(staging: Path, run: RunFolder) -> None:
    """Move what Hydra wrote into ``staging`` into the run folder: ``hydra/*`` replaces the run's files (the
    continued run's config and overrides), ``main.log`` is appended to the run's ``main.log`` and this
    process's log file handlers write there from now on."""
    staging = Path(staging).resolve()
    if staging == run.root or not staging.is_dir():
        return
    if (staging / "hydra").is_dir():
        run.hydra_dir.mkdir(exist_ok=True)
        for f in (staging / "hydra").iterdir():
            shutil.copyfile(f, run.hydra_dir / f.name)
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == staging:
            h.acquire()
            try:
                h.flush()
                h.close()
                with open(h.baseFilename, "rb") as src, open(run.log_file, "ab") as dst:
                    shutil.copyfileobj(src, dst)
                h.baseFilename = str(run.log_file)  # reopened in append mode on the next record
            finally:
                h.release()
    shutil.rmtree(staging, ignore_errors=True)


class ReplanSchedule(pl.Callback):
    """Re-plan a step-wise LR schedule whose planned length differs from the Trainer's (``epochs=<more>``).

    The rule: after resuming at optimizer step ``s`` with ``T_new = trainer.estimated_stepping_batches`` planned
    steps, the schedule is the one a run planned for ``T_new`` steps from the start has at step ``s``; it is
    built by instantiating ``cfg.lr_scheduler.scheduler`` with ``T_new`` on a stand-in optimizer with the same
    hyper-parameters and stepping it ``s`` times. Hence

    * ``poly``: ``lr(s) = lr0 * (1 - s / T_new) ** power`` (``lr0`` = ``initial_lr`` of each param group);
    * ``onecycle``: ``OneCycleLR`` with ``total_steps = T_new`` at step ``s`` (warm-up phase
      ``pct_start * T_new`` steps; a run already past it continues on the annealing branch, also momentum), its
      ``max_lr`` that of each param group (times ``unfreeze_lr_factor`` once the encoder was unfrozen).

    Nothing changes when the plan is the same (a plain resume after preemption stays bit-identical) or when
    ``s >= T_new`` (nothing left to train).
    """

    def __init__(self, cfg: DictConfig):
        self.sched_cfg = cfg.get("lr_scheduler")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.sched_cfg or not trainer.lr_scheduler_configs:
            return
        total = int(trainer.estimated_stepping_batches)
        arg = str(self.sched_cfg.total_steps_arg)
        for config in trainer.lr_scheduler_configs:
            sched = config.scheduler
            planned, step = getattr(sched, arg, None), int(sched.last_epoch)
            if planned is None or int(planned) == total or step >= total:
                continue
            replan_scheduler(sched, self.sched_cfg, total, step)
            log.info(
                f"LR schedule re-planned for {total} steps (was {planned}) at step {step}: "
                f"lr={[round(g['lr'], 8) for g in sched.optimizer.param_groups]}"
            )


def replan_scheduler(sched, sched_cfg: DictConfig, total: int, step: int) -> None:
    """Set ``sched`` (and its optimizer's ``lr``/momentum) to a fresh ``sched_cfg.scheduler`` planned for ``total``
    steps and advanced ``step`` steps (the rule of :class:`ReplanSchedule`).

    The LR levels come from the optimizer's param groups (restored from ``last.ckpt``), not from the config: poly
    starts from each group's ``initial_lr``; a scheduler argument that is also a param-group key (OneCycle's
    ``max_lr``, ``max_momentum``, ``base_momentum``) is passed per group from there. So an LR already scaled by
    ``unfreeze_lr_factor`` stays scaled, and an ``lr=`` given when continuing changes nothing.

    Args:
        sched: the restored scheduler (stepped per optimizer step).
        sched_cfg: the ``lr_scheduler`` config group (``scheduler``, ``total_steps_arg``).
        total: optimizer steps of the new plan.
        step: optimizer steps already done.
    """
    opt = sched.optimizer
    groups = [
        {k: v for k, v in g.items() if k != "params"} | {"params": [torch.zeros(1, requires_grad=True)]}
        for g in opt.param_groups
    ]
    for g in groups:
        g["lr"] = g.get("initial_lr", g["lr"])
    stand_in = type(opt)(groups, **opt.defaults)
    factory = instantiate(sched_cfg.scheduler)
    # scheduler arguments the param groups hold (OneCycle's max_lr, max/base_momentum) come from the checkpoint, as
    # the base LR of poly does: the unfreeze_lr_factor applied to them stays applied (training/finetune.py)
    accepted = inspect.signature(getattr(factory, "func", factory)).parameters
    saved = {
        k: [g[k] for g in opt.param_groups]
        for k in accepted
        if k != "optimizer" and all(k in g for g in opt.param_groups)
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": no training here
        fresh = factory(stand_in, **saved, **{str(sched_cfg.total_steps_arg): total})
        for _ in range(step):
            fresh.step()
    for real, new in zip(opt.param_groups, stand_in.param_groups):
        for key in ("lr", "initial_lr", "max_lr", "min_lr", "momentum", "betas"):
            if key in new:
                real[key] = new[key]
    sched.load_state_dict(fresh.state_dict())


class _AppendingWriter(ExperimentWriter):
    """Lightning 2.6's CSV writer deletes an existing ``metrics.csv`` when it starts; this one keeps its rows
    and its header (new columns rewrite the file with every old row kept, as Lightning does)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = list(next(csv.reader(f), []))


class AppendingCSVLogger(CSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` that appends to an existing ``metrics.csv`` (continued runs read
    as one run: earlier epochs' rows stay, new rows follow with the continued global step)."""

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class BestMetricState(pl.Callback):
    """Keeps the module's best-epoch record (``best_miou``, ``best_epoch``, ``best_confmat``, ``best_calibration``) in
    checkpoints."""

    @property
    def state_key(self) -> str:
        return "BestMetricState"

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        checkpoint["segbench_best"] = {
            "best_miou": float(pl_module.best_miou),
            "best_epoch": int(pl_module.best_epoch),
            "best_confmat": pl_module.best_confmat,
            "best_calibration": dict(getattr(pl_module, "best_calibration", None) or {}),
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        best = checkpoint.get("segbench_best")
        if best:
            pl_module.best_miou, pl_module.best_epoch = best["best_miou"], best["best_epoch"]
            pl_module.best_confmat = best["best_confmat"]
            pl_module.best_calibration = dict(best.get("best_calibration") or {})


def resume_checkpoint(cfg: DictConfig, run: RunFolder) -> Path | None:
    """The checkpoint to resume from: ``run``'s ``last.ckpt`` if ``continue_from`` is set or it exists.

    Raises:
        RunFolderError: ``continue_from`` is set but the folder has no ``checkpoints/last.ckpt``.
    """
    if cfg.get("continue_from"):
        return run.checkpoint("last")
    if run.last_ckpt.is_file():  # the same job started again (SLURM requeue / preemption)
        return run.last_ckpt
    return None
