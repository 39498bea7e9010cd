"""``summary.json``: what a training run did, in one file that ``benchmark.py compare`` reads.

:class:`RunSummary` (added to every run by ``training.train.segbench_callbacks``) rewrites the run folder's
``summary.json`` atomically (temporary file + ``os.replace``, :func:`core.records.atomic_write_text`) at
fit start, after every training epoch (validation included), on an exception (``status: failed`` + ``error``)
and at the end (``status: finished``); on rank 0 only. A SIGKILL cannot be caught: such a run keeps
``status: running``; the file also holds the writer's ``pid``, its start time and ``hostname``, and
`core.liveness.effective_status` reports ``killed`` when that process no longer exists (checked on the same host).

Fields (units in the names or below): ``dataset``, ``model`` (config choice), ``model_name`` (display name
from ``config/benchmark.yaml`` ``display``), ``experiment``, ``overrides`` (command line, Hydra), ``choices``
(config groups), ``seed``, ``status``/``error``, ``best`` (epoch, mIoU, aAcc, mAcc, mIoU_image, fwIoU, IoU_micro in
[0, 1] at the epoch of the best dataset-level mIoU, per-class ``IoU`` by class name, and that epoch's calibration
errors ECE, MCE in [0, 1], :mod:`metrics.calibration`), ``last`` (epoch,
train_loss = mean of the epoch's training-batch losses, not divided by ``accumulate_grad_batches``, val_loss = CE of
the ``out`` prediction, val_mIoU and the last validation's mIoU, aAcc, mAcc, mIoU_image, fwIoU, IoU_micro, ECE, MCE
in [0, 1]),
``epochs_done``, ``steps_done`` (optimizer steps), ``time`` (``total_s`` wall time from fit start, ``train_s``
training batches only: data loading + forward/backward/step, no validation, both summed over resumed processes;
``s_per_step_median`` per training batch of this process; ``train_images`` training images of all ranks,
:func:`images_of_batch`: rank 0's batches times ``world_size``, since DDP's distributed sampler gives every rank as
many; ``images_per_s`` = ``train_images`` / ``train_s``, the global throughput), ``memory`` (peak MiB since fit
start: CUDA ``max_memory_allocated`` or the CPU process's peak RSS), ``load_1min_max`` (the highest 1-minute load
average of the machine seen at the end of a training epoch), ``params`` / ``trainable_params``, ``gflops`` (one eager
forward at the training ``crop_size``, batch 1, counted by
:func:`core.measure.count_flops`: 1 MAC = 2 FLOPs), ``checkpoint_mb`` (``best.ckpt``, MB = 1e6
bytes), ``precision``, ``devices`` (incl. ``hardware_profile``: GPU name or CPU model + ISA flags), ``versions``,
``git`` (commit, dirty), ``started``/``ended``/``heartbeat`` (ISO 8601 local time), and ``links`` to the run's
``validation/`` and ``benchmark/`` folders.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import socket
import statistics
import time
import traceback
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from core.liveness import process_start
from core.measure import read_peak_memory, reset_peak_memory
from core.run_folder import RunFolder
from core.versions import TRAINING_PACKAGES, git_info, package_versions

log = logging.getLogger("segbench")

SCHEMA_VERSION = 1
#: val metrics of the last epoch kept in ``last`` under their own names (``benchmark.py compare select=last``)
LAST_METRICS = ("mIoU", "aAcc", "mAcc", "mIoU_image", "fwIoU", "IoU_micro", "ECE", "MCE")
#: distributions whose versions a summary records
REPO = Path(__file__).resolve().parents[1]


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _num(v) -> float | None:
    """float, or None for None/NaN/inf (valid JSON)."""
    if v is None:
        return None
    v = float(v.item() if isinstance(v, torch.Tensor) else v)
    return v if math.isfinite(v) else None


def library_versions() -> dict:
    """Python and the training libraries' versions (:func:`core.versions.package_versions`)."""
    return package_versions(TRAINING_PACKAGES, python=True)


def hydra_job() -> tuple[list[str], dict]:
    """(command-line overrides, config-group choices without ``hydra/*``) of the current Hydra job, or
    ``([], {})`` outside one (``train()`` called directly)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [], {}
    hc = HydraConfig.get()
    choices = {str(k): (None if v is None else str(v)) for k, v in hc.runtime.choices.items()}
    return [str(o) for o in hc.overrides.task], {k: v for k, v in choices.items() if not k.startswith("hydra/")}


def model_display_name(model_cfg: DictConfig, choice: str, display: DictConfig | None) -> str:
    """Display name of a model config as in benchmark tables (:func:`models.display.describe_model` with the
    composed config's ``display`` node; None: the model choice)."""
    from models.display import describe_model

    return describe_model(model_cfg, choice, display)[0]


def images_of_batch(trainer: pl.Trainer | None, batch: dict) -> int:
    """Training images one step of ``batch`` stands for across all ranks: its size times ``trainer.world_size``
    (under DDP the distributed sampler gives every rank a batch of the same size; padded, never dropped).

    Args:
        trainer: the trainer (its ``world_size``; None counts as 1).
        batch: this rank's training batch (``image`` of shape ``[N, 3, H, W]``).

    Returns:
        ``N * world_size``.
    """
    return int(batch["image"].shape[0]) * int(getattr(trainer, "world_size", 1) or 1)


def batch_loss(trainer: pl.Trainer | None, outputs) -> torch.Tensor | None:
    """The training loss of one batch from ``on_train_batch_end``'s ``outputs``, as the criterion computed it.

    Lightning divides ``outputs["loss"]`` by ``accumulate_grad_batches``; :class:`training.module.SegmentationModule`
    also returns the undivided ``batch_loss``. Other modules' ``loss`` is multiplied back.

    Args:
        trainer: the trainer (its ``accumulate_grad_batches``; None counts as 1).
        outputs: what ``training_step`` returned, as Lightning hands it to callbacks (tensor or dict).

    Returns:
        a detached float32 scalar tensor, or None when ``outputs`` holds no loss.
    """
    if isinstance(outputs, dict) and isinstance(outputs.get("batch_loss"), torch.Tensor):
        return outputs["batch_loss"].detach().float()
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    if not isinstance(loss, torch.Tensor):
        return None
    return loss.detach().float() * int(getattr(trainer, "accumulate_grad_batches", 1) or 1)


class RunSummary(pl.Callback):
    """Writes ``summary.json`` (module docstring) into the trainer's ``default_root_dir`` (the run folder).

    Its state (times summed over processes, best-epoch record, start time) is saved in checkpoints, so a run
    resumed with ``+continue_from`` continues its summary.
    """

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.state = {"train_s": 0.0, "total_s": 0.0, "images": 0, "best": {}, "last": {}, "epochs_done": 0}
        self.state["started"] = _now()
        self._t_fit = self._t_prev = None
        self._durations: list[float] = []
        self._loss_sum, self._loss_n = None, 0
        self._static: dict = {}
        self.path: Path | None = None

    @property
    def state_key(self) -> str:
        return "RunSummary"

    def state_dict(self) -> dict:
        return {**self.state, "total_s": self._total_s()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.state.update(state_dict)
        if self._t_fit is not None:
            self._t_fit = time.perf_counter()  # total_s of the earlier processes is in the state

    def _total_s(self) -> float:
        return self.state["total_s"] + (time.perf_counter() - self._t_fit if self._t_fit is not None else 0.0)

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t_fit = time.perf_counter()
        if not trainer.is_global_zero:
            return
        reset_peak_memory(pl_module.device)
        self.path = RunFolder(trainer.default_root_dir).summary
        self._static = self._describe(trainer, pl_module)
        self.write(trainer, pl_module, "running")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t_prev = time.perf_counter()
        self._loss_sum, self._loss_n = None, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._t_prev is not None:
            self._durations.append(now - self._t_prev)
            self.state["train_s"] += now - self._t_prev
        self._t_prev = now
        self.state["images"] += images_of_batch(trainer, batch)
        loss = batch_loss(trainer, outputs)
        if loss is not None:
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
            self._loss_n += 1

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        m = {k.split("/", 1)[1]: _num(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        self.state["last"].update(
            {"epoch": int(trainer.current_epoch), "val_loss": m.get("loss"), "val_mIoU": m.get("mIoU")}
        )
        self.state["last"].update({k: m[k] for k in LAST_METRICS if k in m})
        confmat = getattr(pl_module, "best_confmat", None)
        if getattr(pl_module, "best_epoch", -1) == trainer.current_epoch and confmat is not None:
            from metrics import metrics_from_confusion
            from metrics.aggregations import aggregations

            b = metrics_from_confusion(confmat) | aggregations(confmat, m.get("mIoU_image"))
            best = {"epoch": int(trainer.current_epoch)}
            best.update({k: _num(b.get(k)) for k in ("mIoU", "aAcc", "mAcc", "mIoU_image", "fwIoU", "IoU_micro")})
            best.update({k: _num(v) for k, v in (getattr(pl_module, "best_calibration", None) or {}).items()})
            names = list(self.cfg.dataset.get("class_names") or range(len(b["IoU"])))
            best["IoU"] = {str(n): _num(v) for n, v in zip(names, b["IoU"])}
            self.state["best"] = best

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.state["load_1min_max"] = max(self.state.get("load_1min_max") or 0.0, os.getloadavg()[0])
        self.state["epochs_done"] = int(trainer.current_epoch) + 1
        self.state["last"]["epoch"] = int(trainer.current_epoch)
        self.state["last"]["train_loss"] = _num(self._loss_sum / self._loss_n) if self._loss_n else None
        if trainer.is_global_zero:
            self.write(trainer, pl_module, "running")

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.write(trainer, pl_module, "finished")

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if trainer.is_global_zero:
            if not self._static:  # failed before fit start
                try:
                    self._static = self._describe(trainer, pl_module)
                except Exception:
                    self._static = {"schema": SCHEMA_VERSION, "run_dir": str(RunFolder(trainer.default_root_dir).root)}
            log.debug("".join(traceback.format_exception(exception)))
            msg = str(exception).strip().splitlines()
            self.write(trainer, pl_module, "failed", f"{type(exception).__name__}: {msg[0] if msg else ''}"[:500])

    # ------------------------------------------------------------------ content
    def _describe(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        """The fields that do not change during the run (computed once, at fit start)."""
        from core.measure import FLOPS_CONVENTION, count_flops, count_params, hardware_profile

        cfg = self.cfg
        overrides, choices = hydra_job()
        model = getattr(pl_module, "model", pl_module)
        total, trainable = count_params(model)
        crop = [int(v) for v in (cfg.dataset.get("crop_size") or [])]
        gflops = None
        if len(crop) == 2:
            was_training = model.training
            try:
                model.eval()
                x = torch.zeros(1, 3, *crop, device=pl_module.device)
                gflops = count_flops(model, x) / 1e9
            except Exception as e:  # a counter failure must not stop training
                log.warning(f"summary.json: FLOPs not counted ({type(e).__name__}: {e})")
            finally:
                model.train(was_training)
        choice = choices.get("model") or str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
        try:
            name = model_display_name(cfg.model, choice, cfg.get("display"))
        except Exception:
            name = choice
        run = RunFolder(trainer.default_root_dir)
        return {
            "schema": SCHEMA_VERSION,
            "run_dir": str(run.root),
            "dataset": str(cfg.dataset.get("name", "")),
            "model": choice,
            "model_name": name,
            "experiment": str(cfg.get("experiment", "")),
            "overrides": overrides,
            "choices": choices,
            "seed": int(cfg.seed) if cfg.get("seed") is not None else None,
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
            "hostname": socket.gethostname(),
            "params": total,
            "trainable_params": trainable,
            "gflops": gflops,
            "flops_at": {"crop_size": crop, "batch": 1, "convention": FLOPS_CONVENTION},
            "precision": str(cfg.get("precision", "32")),
            "devices": {
                "accelerator": type(trainer.accelerator).__name__,
                "num_devices": int(trainer.num_devices),
                "num_nodes": int(trainer.num_nodes),
                "world_size": int(trainer.world_size),
                "device": str(pl_module.device),
                "threads": torch.get_num_threads(),
                "hardware_profile": hardware_profile(pl_module.device),
            },
            "versions": library_versions(),
            "git": git_info(),
            "links": {
                "validation": str(run.validation_root.relative_to(run.root)),
                "benchmark": str(run.benchmark_dir.relative_to(run.root)),
            },
        }

    def content(self, trainer: pl.Trainer, pl_module: pl.LightningModule, status: str, error: str = "") -> dict:
        """The ``summary.json`` dict for the current moment."""
        train_s, images = self.state["train_s"], self.state["images"]
        mem, kind = read_peak_memory(pl_module.device)
        best_ckpt = RunFolder(trainer.default_root_dir).best_ckpt
        return {
            **self._static,
            "status": status,
            "error": error,
            "best": self.state["best"],
            "last": self.state["last"],
            "epochs_done": self.state["epochs_done"],
            "max_epochs": trainer.max_epochs,
            "steps_done": int(trainer.global_step),
            "time": {
                "total_s": round(self._total_s(), 3),
                "train_s": round(train_s, 3),
                "s_per_step_median": statistics.median(self._durations) if self._durations else None,
                "images_per_s": images / train_s if train_s > 0 else None,
                "train_images": images,
            },
            "memory": {"peak_mib": _num(mem), "kind": kind},
            "load_1min_max": self.state.get("load_1min_max"),
            "checkpoint_mb": best_ckpt.stat().st_size / 1e6 if best_ckpt.is_file() else None,
            "started": self.state["started"],
            "ended": _now() if status != "running" else None,
            "heartbeat": _now(),
        }

    def write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, status: str, error: str = "") -> Path:
        """Atomically (re)write ``summary.json``; returns its path."""
        from core.records import atomic_write_text

        self.path = self.path or RunFolder(trainer.default_root_dir).summary
        return atomic_write_text(self.path, json.dumps(self.content(trainer, pl_module, status, error), indent=2))
