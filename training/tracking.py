"""Experiment trackers as Lightning loggers: ``logger=mlflow``, ``logger=wandb``, ``logger=[tensorboard,mlflow]``.

Thin subclasses of Lightning's :class:`~pytorch_lightning.loggers.MLFlowLogger` and
:class:`~pytorch_lightning.loggers.WandbLogger` (the optional extra ``requirements-tracking.txt``). Metrics are
whatever the LightningModule logs (``train/loss``, ``val/mIoU``, ``val/aAcc``, ``val/mAcc``, ``val/IoU_<class>``,
``lr-*``), the same series every logger of the run receives. On top of Lightning's loggers, each run records:

* the resolved config of the run folder's ``hparams.yaml``, flattened to ``a.b.c`` keys, as params
  (MLflow params / W&B config), plus ``run_dir`` (the run folder, also the MLflow tag ``segbench.run_dir``);
* MLflow: ``checkpoints/best.ckpt`` as the artifact ``checkpoints/best.ckpt`` when training ends;
* W&B: the run is finished when training ends (Lightning leaves it open), so a sweep's trials get a run each.

A new SQLite store is created under a file lock (:func:`store_lock`), so runs started together into one ``LOGDIR``
all land in it. ``save_dir`` is the run folder (filled in by :func:`training.train.build_trainer`). Defaults are in
``config/logger/mlflow.yaml`` and ``config/logger/wandb.yaml``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger as _MLFlowLogger
from pytorch_lightning.loggers import WandbLogger as _WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from core.extras import require
from core.run_folder import RunFolder


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "l": [1, 2]}`` -> ``{"a.b": 1, "l": "[1, 2]"}`` (lists stay one value, as on the CLI)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, (int, float, bool, str)) or value is None else str(value)
    return out


def run_params(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's resolved config (``hparams.yaml``) flattened, plus ``run_dir`` (absolute path)."""
    run = RunFolder(run_dir)
    params = flatten(OmegaConf.to_container(run.load_config(), resolve=True)) if run.hparams.is_file() else {}
    params["run_dir"] = str(Path(run.root).resolve())
    return params


def _run_name(run_dir: Path) -> str:
    """``<experiment>__<overrides>/<timestamp>``: the two last parts of the run folder."""
    return "/".join(run_dir.resolve().parts[-2:])


def _as_uri(location: str | None) -> str | None:
    """A local path (relative paths from the current directory) as a ``file://`` URI; URIs unchanged."""
    if not location or "://" in location or location.startswith("file:"):
        return location
    return Path(location).resolve().as_uri()


#: seconds a run waits for another process creating the same SQLite MLflow store
STORE_LOCK_TIMEOUT_S = 300.0


@contextlib.contextmanager
def store_lock(tracking_uri: str | None, timeout_s: float = STORE_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``<db>.lock`` (``filelock``) while this process opens a SQLite MLflow store (``sqlite:///<db>``).

    MLflow creates and migrates the tables of a new store on first use; two runs doing that at once into one
    ``LOGDIR`` collide (``duplicate column name``) and one run is lost. Under the lock one process creates the
    tables (and the experiment), the other finds them. Other URIs (a server, a file store) are not locked.

    Args:
        tracking_uri: the MLflow tracking URI.
        timeout_s: longest wait for the lock.

    Raises:
        TimeoutError: another process held the lock longer than ``timeout_s`` (lock file named).
    """
    if not tracking_uri or not str(tracking_uri).startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock, Timeout

    db = str(tracking_uri)[len("sqlite:///") :].split("?", 1)[0]
    lock = FileLock(f"{db}.lock")
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout:
        raise TimeoutError(
            f"MLflow store {db}: another process held {db}.lock for more than {timeout_s:.0f} s"
        ) from None
    try:
        yield
    finally:
        lock.release()


class MLFlowLogger(_MLFlowLogger):
    """Lightning's MLflow logger writing the run's config, folder and best checkpoint too.

    Args:
        save_dir: the run folder.
        tracking_uri: any MLflow tracking URI; default (config) ``sqlite:///${LOGDIR}/mlflow.db``.
        artifact_location: where a NEW experiment stores artifacts (local paths become ``file://`` URIs);
            an existing experiment keeps its own.
        experiment_name: MLflow experiment (created on first use).
        run_name: default: the run folder's last two parts.
        tags: extra run tags (``segbench.run_dir`` is always set).
        log_best_checkpoint: log ``checkpoints/best.ckpt`` (the monitored ModelCheckpoint's best) at the end.

    Raises:
        ModuleNotFoundError: mlflow is not installed (names ``requirements-tracking.txt``).
    """

    def __init__(
        self,
        save_dir: str,
        tracking_uri: str | None = None,
        artifact_location: str | None = None,
        experiment_name: str = "segbench",
        run_name: str | None = None,
        tags: dict[str, Any] | None = None,
        log_best_checkpoint: bool = True,
        **kwargs: Any,
    ):
        require("mlflow", "logger=mlflow")
        run_dir = Path(save_dir)
        tags = {"segbench.run_dir": str(run_dir.resolve()), **(tags or {})}
        # Lightning's logger opens the store in its constructor (MlflowClient): both under the lock
        with store_lock(tracking_uri):
            super().__init__(
                experiment_name=experiment_name,
                run_name=run_name or _run_name(run_dir),
                tracking_uri=tracking_uri,
                tags=tags,
                save_dir=str(run_dir / "mlruns"),
                artifact_location=_as_uri(artifact_location),
                **kwargs,
            )
            _ = self.experiment  # creates the store's tables (first run), the experiment and this run
        self._run_dir = run_dir
        self._log_best = bool(log_best_checkpoint)
        self._best_ckpt: str | None = None
        self.log_hyperparams(run_params(run_dir))

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Remember the monitored callback's best checkpoint (logged once, in :meth:`finalize`)."""
        super().after_save_checkpoint(checkpoint_callback)
        if checkpoint_callback.monitor is not None and checkpoint_callback.best_model_path:
            self._best_ckpt = checkpoint_callback.best_model_path

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """Log the best checkpoint as the artifact ``checkpoints/<name>.ckpt``, then end the MLflow run."""
        if self._initialized and self._log_best and self._best_ckpt and Path(self._best_ckpt).is_file():
            self.experiment.log_artifact(self.run_id, self._best_ckpt, "checkpoints")
        super().finalize(status)


class WandbLogger(_WandbLogger):
    """Lightning's W&B logger, offline unless ``WANDB_MODE`` says otherwise, with the run's config and folder.

    Args:
        save_dir: the run folder; W&B writes ``<save_dir>/wandb/offline-run-*`` (sync later: ``wandb sync``).
        project: W&B project.
        name: W&B run name (default: the run folder's last two parts).
        kwargs: passed to Lightning's ``WandbLogger`` / ``wandb.init``.

    Raises:
        ModuleNotFoundError: wandb is not installed (names ``requirements-tracking.txt``).
    """

    def __init__(self, save_dir: str, project: str = "segbench", name: str | None = None, **kwargs: Any):
        require("wandb", "logger=wandb")
        os.environ.setdefault("WANDB_MODE", "offline")  # nothing leaves the machine unless the user asks
        run_dir = Path(save_dir)
        super().__init__(name=name or _run_name(run_dir), save_dir=str(run_dir), project=project, **kwargs)
        self.log_hyperparams(run_params(run_dir))

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the W&B run: its records are flushed to disk, and the next run of the process (a sweep's next
        trial) starts its own run instead of reusing this one (Lightning's logger leaves the run open)."""
        super().finalize(status)
        if self._experiment is not None:
            self._experiment.finish(exit_code=0 if status == "success" else 1)
            self._experiment = None
