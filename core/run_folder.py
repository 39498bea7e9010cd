"""The run folder: the one place that knows where a run's files live.

Layout (``../shared/DESIGN.md``)::

    LOGDIR/<dataset>/<model>/<experiment>[__<overrides>]/<YYYY-MM-DD_HH-MM-SS>[_<n>]/
        checkpoints/best.ckpt  checkpoints/last.ckpt
        hydra/config.yaml  hydra/overrides.yaml  hydra/hydra.yaml
        hparams.yaml           resolved config of the run (what validation.py reloads)
        main.log               console log of main.py
        events.out.tfevents.*  TensorBoard (logger=tensorboard)
        ConfusionMatrix.pt     int64 (K, K) confusion matrix of the best validation epoch
        summary.json           run summary, rewritten atomically each epoch and at the end (training/summary.py)
        validation/<timestamp>/   written by validation.py
        benchmark/                written by benchmark.py
        calibration/temperature.json   temperature scaling fitted by validation.py fit_temperature=true
        export/<timestamp>/       ONNX + OpenVINO IR written by `benchmark.py export`
        export/<backend>_<precision>_<WxH>/   the file benchmark.py / predict.py run with an exported backend
                                  (+ manifest.json), reused while the manifest matches (benchmarking/backends/cache.py)

Every entry point (main.py, validation.py, benchmark.py, predict.py) goes through :class:`RunFolder`.

Names and creation:

* ``<overrides>`` is made by :func:`safe_name` from Hydra's ``override_dirname`` (``key-value`` items joined
  by ``_``, e.g. ``batch_size-4_lr-0.01``): only ``[A-Za-z0-9._-]``, so a printed path can be passed back
  unquoted to every entry point (``benchmark.py checkpoint=<run>``, ``+finetune_from=<run>/checkpoints/best.ckpt``).
  The full overrides stay in ``hydra/overrides.yaml``.
* :func:`claim_folder` creates a folder atomically (``os.mkdir``); when the name exists (two identical
  commands started in the same second) it takes ``<name>_1``, ``<name>_2``, ...
* Folders named by older versions (``epochs=2,lr=0.1``) are still read: :func:`quote_path_overrides` quotes
  such paths in a Hydra command line before Hydra parses it.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


class RunFolderError(FileNotFoundError):
    """A run folder (or one of its files) is missing; the message says what and how to get it."""


#: characters a run-folder name may hold (Hydra's override grammar and shells take them unquoted)
SAFE_CHARS = "A-Za-z0-9._-"
_SUBSTITUTE = {"=": "-", ",": "-", ":": "-", "/": "_", " ": "_"}


def safe_name(text: str) -> str:
    """``text`` with only :data:`SAFE_CHARS`: ``[]()'"{}`` dropped, ``=``/``,``/``:`` -> ``-``, ``/``/space -> ``_``,
    anything else -> ``-``; e.g. ``dataset.crop_size=[64,96]`` -> ``dataset.crop_size-64-96``."""
    text = re.sub(r"[\[\](){}'\"]", "", str(text))
    text = "".join(_SUBSTITUTE.get(c, c) for c in text)
    return re.sub(f"[^{SAFE_CHARS}]", "-", text)


def claim_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` atomically (parents as needed); if it exists, create ``<path>_1``, ``<path>_2``, ...

    Two processes asking for the same path at the same time get two different folders (``os.mkdir`` either
    creates or fails).

    Returns:
        the folder created (absolute).
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, i = path, 0
    while True:
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            i += 1
            candidate = path.with_name(f"{path.name}_{i}")


_GRAMMAR_SAFE = re.compile(r"[A-Za-z0-9._/+-]*")


def quote_path_overrides(argv: Sequence[str], keys: Sequence[str]) -> list[str]:
    """Quote the value of ``key=value`` overrides whose key is in ``keys`` (``+``/``++`` prefixes allowed) when
    the value holds characters Hydra's override grammar does not take unquoted (``=``, ``,``, ``[]`` of
    older run-folder names); other arguments are returned unchanged. A value holding both quote characters (a shell
    command, a caption) is single-quoted with its ``'`` escaped the way the grammar reads it back."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") in keys and value and value[0] not in "'\"" and not _GRAMMAR_SAFE.fullmatch(value):
            if "'" not in value:
                arg = f"{key}='{value}'"
            elif '"' not in value:
                arg = f'{key}="{value}"'
            else:  # backslashes before a quote (and at the end) are doubled, the quote escaped
                escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
                escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
                arg = f"{key}='{escaped}'"
        out.append(arg)
    return out


def backend_export_name(backend: str, precision: str, resolution: str) -> str:
    """``<backend>_<precision>_<WxH>``: the folder of an exported backend's files under ``export/``, precision in
    short form (``fp32``, ``bf16``, ``fp16``, ``int8``), e.g. ``openvino_int8_512x512``."""
    short = {"32-true": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16"}.get(precision, precision)
    return safe_name(f"{backend}_{short}_{resolution}")


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
    def calibration_dir(self) -> Path:
        return self.root / "calibration"

    @property
    def temperature_file(self) -> Path:
        """``calibration/temperature.json``: the temperature of the run's logits (:mod:`inference.temperature`)."""
        return self.calibration_dir / "temperature.json"

    @property
    def export_root(self) -> Path:
        return self.root / "export"

    def backend_export_dir(self, backend: str, precision: str, resolution: str) -> Path:
        """``export/<backend>_<precision>_<WxH>/`` (:func:`backend_export_name`)."""
        return self.export_root / backend_export_name(backend, precision, resolution)

    def tensorboard_events(self) -> list[Path]:
        """TensorBoard event files written directly into the run folder."""
        return sorted(self.root.glob("events.out.tfevents.*"))

    def new_validation_dir(self, timestamp: str | None = None) -> Path:
        """Create and return ``validation/<YYYY-MM-DD_HH-MM-SS>/`` (suffixed if it already exists)."""
        stamp = timestamp or _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        return claim_folder(self.validation_root / stamp)

    def has_results(self) -> bool:
        """True once training has written anything: a checkpoint, TensorBoard events or ``metrics.csv``."""
        return bool(
            (self.checkpoints.is_dir() and any(self.checkpoints.iterdir()))
            or self.tensorboard_events()
            or (self.root / "metrics.csv").exists()
        )

    def discard(self, keep_log: str | os.PathLike | None = None, prune_up_to: str | os.PathLike | None = None) -> None:
        """Remove a run folder that holds no results (a run that failed before its first step), copying its
        ``main.log`` to ``keep_log`` first; parent folders left empty are removed up to (not including)
        ``prune_up_to`` (LOGDIR).

        Raises:
            RuntimeError: the folder holds results (never removed).
        """
        if self.has_results():
            raise RuntimeError(f"{self.root} holds results; not removed")
        if keep_log is not None and self.log_file.is_file():
            shutil.copyfile(self.log_file, keep_log)
        root_logger = logging.getLogger()
        for h in list(root_logger.handlers):  # Hydra's main.log handler would re-create the folder
            if isinstance(h, logging.FileHandler) and self.root in Path(h.baseFilename).parents:
                h.close()
                root_logger.removeHandler(h)
        shutil.rmtree(self.root, ignore_errors=True)
        if prune_up_to is not None:
            stop, parent = Path(prune_up_to).resolve(), self.root.parent
            while parent != stop and stop in parent.parents:
                try:
                    parent.rmdir()  # only when empty
                except OSError:
                    break
                parent = parent.parent

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
