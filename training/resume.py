"""Resume a run: ``+continue_from=<run folder>``, SLURM requeue, and the state a checkpoint must carry.

* :func:`continue_from_argv` (called by main.py before Hydra runs) turns
  ``python main.py +continue_from=<run folder> [overrides]`` into the run's original overrides (from
  ``<run folder>/hydra/overrides.yaml``), then the new ones (same key: the new one wins), then
  ``hydra.run.dir=<run folder>``, so Hydra writes into the SAME folder (``main.log`` is appended to).
* :func:`resume_checkpoint` picks ``checkpoints/last.ckpt`` of the run folder when continuing, or when the
  folder already has one (a requeued/preempted SLURM job re-runs in its own folder and so resumes).
* :class:`BestMetricState` stores the best-epoch record of the module in checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from utils.run_folder import RunFolder, RunFolderError

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
        ``+continue_from='<folder>'`` and ``hydra.run.dir='<folder>'`` (quoted: run folder names hold ``,=[]``).

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
    return list(merged.values()) + [f"+continue_from='{run.root}'", f"hydra.run.dir='{run.root}'"]


class BestMetricState(pl.Callback):
    """Keeps the module's best-epoch record (``best_miou``, ``best_epoch``, ``best_confmat``) in checkpoints."""

    @property
    def state_key(self) -> str:
        return "BestMetricState"

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        checkpoint["segbench_best"] = {
            "best_miou": float(pl_module.best_miou),
            "best_epoch": int(pl_module.best_epoch),
            "best_confmat": pl_module.best_confmat,
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        best = checkpoint.get("segbench_best")
        if best:
            pl_module.best_miou, pl_module.best_epoch = best["best_miou"], best["best_epoch"]
            pl_module.best_confmat = best["best_confmat"]


def resume_checkpoint(cfg: DictConfig, run: RunFolder) -> Path | None:
    """The checkpoint to resume from: ``run``'s ``last.ckpt`` if ``continue_from`` is set or it exists.

    Raises:
        ValueError: ``continue_from`` names another folder than the run folder (main.py redirects Hydra's
            run dir to it; callers of :func:`train` must pass the same folder).
        RunFolderError: ``continue_from`` is set but the folder has no ``checkpoints/last.ckpt``.
    """
    continue_from = cfg.get("continue_from")
    if continue_from:
        if Path(continue_from).resolve() != run.root:
            raise ValueError(
                f"continue_from={continue_from} but the run folder is {run.root}: resume writes into "
                f"the same folder (run main.py with +continue_from=<run folder>)"
            )
        return run.checkpoint("last")
    if run.last_ckpt.is_file():  # the same job started again (SLURM requeue / preemption)
        return run.last_ckpt
    return None
