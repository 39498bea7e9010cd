"""The run folder: the one place that knows where a run's files live.

Layout (``../shared/DESIGN.md``)::

    LOGDIR/<dataset>/<model>/<experiment>[__<overrides>]/<YYYY-MM-DD_HH-MM-SS>/
        checkpoints/best.ckpt  checkpoints/last.ckpt
        hydra/config.yaml  hydra/overrides.yaml  hydra/hydra.yaml
        hparams.yaml           resolved config of the run (what validation.py reloads)
        main.log               console log of main.py
        events.out.tfevents.*  TensorBoard (logger=tensorboard)
        ConfusionMatrix.pt     int64 (K, K) confusion matrix of the best validation epoch
        summary.json           run summary, rewritten atomically each epoch and at the end (training/summary.py)
        validation/<timestamp>/   written by validation.py
        benchmark/                written by benchmark.py
        export/<timestamp>/       ONNX + OpenVINO IR written by `benchmark.py export`

Every entry point (main.py, validation.py, benchmark.py, predict.py) goes through :class:`RunFolder`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


class RunFolderError(FileNotFoundError):
    """A run folder (or one of its files) is missing; the message says what and how to get it."""


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run. ``RunFolder(root)`` creates nothing; :meth:`create` makes the folders."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())

    # -------------------------------------------------------------- layout
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best_ckpt(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def last_ckpt(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def hparams(self) -> Path:
        return self.root / "hparams.yaml"

    @property
    def hydra_dir(self) -> Path:
        return self.root / "hydra"

    @property
    def log_file(self) -> Path:
        return self.root / "main.log"

    @property
    def confusion_matrix(self) -> Path:
        return self.root / "ConfusionMatrix.pt"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def validation_root(self) -> Path:
        return self.root / "validation"

    @property
    def benchmark_dir(self) -> Path:
        return self.root / "benchmark"

    @property
    def export_root(self) -> Path:
        return self.root / "export"

    def tensorboard_events(self) -> list[Path]:
        """TensorBoard event files written directly into the run folder."""
        return sorted(self.root.glob("events.out.tfevents.*"))

    def new_validation_dir(self, timestamp: str | None = None) -> Path:
        """Create and return ``validation/<YYYY-MM-DD_HH-MM-SS>/`` (suffixed if it already exists)."""
        stamp = timestamp or _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        path, i = self.validation_root / stamp, 1
        while path.exists():
            path, i = self.validation_root / f"{stamp}_{i}", i + 1
        path.mkdir(parents=True)
        return path

    # -------------------------------------------------------------- actions
    def create(self) -> RunFolder:
        """Make the run folder and ``checkpoints/``."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self

    def write_hparams(self, cfg: DictConfig) -> Path:
        """Write the fully resolved config as ``hparams.yaml`` (used to reload the run)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.hparams.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        return self.hparams

    def load_config(self) -> DictConfig:
        """Load the run's resolved config from ``hparams.yaml``.

        Raises:
            RunFolderError: the folder or its ``hparams.yaml`` is missing.
        """
        if not self.root.is_dir():
            raise RunFolderError(f"run folder {self.root} does not exist")
        if not self.hparams.is_file():
            raise RunFolderError(
                f"{self.root} is not a segbench run folder: no hparams.yaml (runs of main.py write it at start)"
            )
        return OmegaConf.load(self.hparams)

    def checkpoint(self, which: str = "best") -> Path:
        """Path of ``best``/``last`` checkpoint, or ``which`` itself if it is a file path.

        Raises:
            RunFolderError: the checkpoint does not exist (says how checkpointing is enabled).
        """
        path = {"best": self.best_ckpt, "last": self.last_ckpt}.get(which, Path(which))
        if not path.is_file():
            raise RunFolderError(
                f"no checkpoint {path}: checkpointing is on by default (callbacks=default writes "
                f"checkpoints/best.ckpt and last.ckpt); runs with trainer.fast_dev_run=true or "
                f"callbacks.model_checkpoint=null save none"
            )
        return path

    def missing(self) -> list[str]:
        """Names of the promised files a finished training run lacks (empty when complete)."""
        need = [
            self.best_ckpt,
            self.last_ckpt,
            self.hparams,
            self.log_file,
            self.confusion_matrix,
            self.hydra_dir / "config.yaml",
            self.hydra_dir / "overrides.yaml",
        ]
        out = [str(p.relative_to(self.root)) for p in need if not p.exists()]
        if not self.tensorboard_events() and not (self.root / "metrics.csv").exists():
            out.append("events.out.tfevents.* (or metrics.csv)")
        return out
