"""``run_benchmark(cfg, ...)``: one measurement -> one JSON record (what ``python benchmark.py`` does).

Steps (``config/benchmark.yaml`` holds every default):

1. the model (:mod:`benchmarking.loading`): ``checkpoint=`` (run folder, ``.ckpt`` or weights file) goes through
   the loader of validation.py and predict.py (:func:`inference.loading.load_for_inference`; a run's config is
   re-resolved with this command's ``environment.*``/``dataset.*``/``model.*``/``augmentation.*`` overrides);
   without a checkpoint, ``cfg.model`` with random weights;
2. params (total/trainable) and FLOPs (``torch.utils.flop_counter``, eager float32, batch 1) at ``resolution``;
3. ``evaluate=true`` (:mod:`benchmarking.evaluation`): mIoU on ``eval_split`` by validation.py's evaluation
   (:func:`inference.validate.evaluate_config`: same loader, ``dataset.test`` settings, the run's
   ``val_batch_size``) under this benchmark's ``precision``;
4. ``photos=<dir>`` (:mod:`benchmarking.budget`): per-photo time and memory through predict.py's predictor
   (:class:`inference.predict.Predictor`: EXIF orientation, auto/slide/streaming, ``photos_preset``) against
   ``budget``;
5. time ``backend`` x ``precision`` with the MMSeg protocol (:mod:`benchmarking.protocol`): a fixed random
   input of ``resolution`` is prepared outside the timer; inside the timer are the model forward, the
   bilinear resize of the logits to the input size and the argmax;
6. memory of one more forward (:func:`core.measure.peak_memory`): ``memory_peak_mib`` (peak total incl.
   the weights) and ``memory_forward_mib`` (peak growth during the forward).

An exported backend's record also carries parity against eager 32-true (:func:`benchmarking.parity.measure_parity`).
The record starts from :func:`benchmarking.run_record.new_record`; :func:`benchmarking.console.summary` is its
console line.

Any exception (OOM, missing weights, unknown encoder, unsupported op) becomes a record with
``status="failed"`` and the error, so that a multirun sweep goes on. Process-wide settings changed for a
measurement (``torch.set_num_threads``) are restored afterwards, also after a failure.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from benchmarking.backends import EXPORTED, BackendModule, BackendOptions, build_runner, check_precision
from benchmarking.budget import photo_budget, timed_budget
from benchmarking.evaluation import evaluate_miou
from benchmarking.loading import load_model, parse_resolution
from benchmarking.parity import measure_parity
from benchmarking.protocol import TimingProtocol, device_sync, time_callable, timer_overhead_ms
from benchmarking.run_record import error_text, name_from_run, new_record
from core.measure import (
    FLOPS_CONVENTION,
    FLOPS_COUNTER,
    count_flops,
    count_params,
    hardware_info,
    peak_memory,
    resolve_device,
)
from core.records import BenchmarkRecord, write_record
from core.run_folder import RunFolder
from core.versions import commit_label, git_info
from models.batchnorm_folding import fold_batchnorm

log = logging.getLogger("segbench.benchmark")
#: torch backends that time the model with ``fold_bn`` (eager is the module as is: the reference)
FOLDING_BACKENDS = ("channels_last", "compile")


def measure(rec: BenchmarkRecord, cfg: DictConfig, model: torch.nn.Module, device: torch.device) -> None:
    """Fill ``rec`` with params, FLOPs, timing, memory (and mIoU / photo budget when asked)."""
    h, w = parse_resolution(cfg.resolution)
    bs = int(cfg.batch_size)
    torch.manual_seed(int(cfg.seed))
    x = torch.randn(bs, 3, h, w, device=device)
    model = model.to(device).eval()
    rec.params, rec.trainable_params = count_params(model)
    if cfg.get("count_flops", True):
        rec.flops = count_flops(model, x[:1])
        rec.gflops = rec.flops / 1e9
        rec.flops_counter, rec.flops_convention = FLOPS_COUNTER, FLOPS_CONVENTION
    exported = rec.backend in EXPORTED
    fold = cfg.get("fold_bn", False)
    if not isinstance(fold, bool):
        raise ValueError(f"fold_bn={fold!r}: true or false")
    if rec.backend in FOLDING_BACKENDS and fold:
        rec.batchnorm_folded = fold_batchnorm(model, x[:1])
    if cfg.get("evaluate") and not exported:  # before the backend changes the module (channels_last, compile)
        rec.mIoU, rec.eval_split, rec.eval_images = evaluate_miou(model, cfg, device, rec.precision)
    if cfg.get("photos") and not exported:
        rec.budget = photo_budget(model, cfg, device, rec.precision)
    options = backend_options(cfg, rec)
    runner = build_runner(model, x, rec.backend, rec.precision, device, options)
    rec.runtime_properties = dict(options.report.get("runtime_properties") or {})
    rec.accuracy_control.update(options.report.get("accuracy_control") or {})  # + the measured drop
    if rec.precision == "int8":
        rec.quantizers = options.report.get("quantizers")
    if exported:
        measure_parity(rec, cfg, model, runner, device, x[:1])
        if cfg.get("photos"):
            rec.budget = photo_budget(BackendModule(runner, model), cfg, device, "32-true")

    @torch.no_grad()
    def step():
        logits = runner(x)
        if tuple(logits.shape[-2:]) != (h, w):
            logits = F.interpolate(logits.float(), size=(h, w), mode="bilinear", align_corners=False)
        return logits.argmax(1)

    cap = cfg.get("max_seconds")
    protocol = TimingProtocol(
        warmup=int(cfg.warmup),
        iterations=int(cfg.iterations),
        repeat=int(cfg.repeat),
        batch_size=bs,
        max_seconds=None if cap is None else float(cap),
    )
    sync = device_sync(device)
    res = time_callable(step, protocol, sync=sync)
    timed = [len(t) for t in res.times_s]
    rec.warmup, rec.iterations, rec.repeat = protocol.warmup, max(timed), protocol.repeat
    if min(timed) < protocol.iterations:  # max_seconds ended a loop: the record says how many calls were timed
        rec.extra["timed_iterations"], rec.extra["max_seconds"] = timed, protocol.max_seconds
    rec.fps, rec.fps_var, rec.fps_runs = res.fps, res.fps_var, res.fps_runs
    rec.latency_ms_p50, rec.latency_ms_p95 = res.latency_ms(50), res.latency_ms(95)
    rec.latency_ms_mean = float(np.mean(res.all_times_ms))
    rec.overhead_ms = timer_overhead_ms(sync)
    rec.overhead_pct = 100.0 * rec.overhead_ms / rec.latency_ms_p50 if rec.latency_ms_p50 else None
    with peak_memory(device) as mem:
        step()
    rec.memory_peak_mib, rec.memory_forward_mib, rec.memory_kind = mem.peak_mib, mem.forward_mib, mem.kind
    if not rec.budget:
        rec.budget = timed_budget(rec, cfg)


def backend_options(cfg: DictConfig, rec: BenchmarkRecord) -> BackendOptions:
    """Options of exported backends: threads, and for int8 the ``calibration.images`` images of
    ``calibration.split`` (``config/benchmark.yaml``) through the dataset's test pipeline, with
    ``calibration.accuracy_control`` NNCF's accuracy control (its choices go to ``rec.accuracy_control``)."""
    options = BackendOptions.from_config(cfg, threads=int(cfg.threads) if cfg.get("threads") else None)
    if rec.precision == "int8":
        rec.calibration = options.calibration_note
        if options.accuracy_control is not None:  # the choices, also in a record whose quantisation fails
            rec.accuracy_control = options.accuracy_control.choices()
    return options


def run_benchmark(
    cfg: DictConfig, output_dir: str | Path, model_choice: str = "", overrides: str | Sequence[str] = ""
) -> tuple[BenchmarkRecord, Path]:
    """Measure one configuration and write its record; never raises for a failed measurement.

    Args:
        cfg: composed ``config/benchmark.yaml``.
        output_dir: this job's folder (Hydra run dir); the record goes to ``<output_dir>/benchmark/`` unless
            ``cfg.checkpoint`` belongs to a run folder, whose ``benchmark/`` receives it.
        model_choice: name of the ``model`` config group option (``smp``, ``hrnet`` ...).
        overrides: the command-line overrides (list, or one space-separated string), kept as the record's
            ``config``; those of :data:`benchmarking.loading.RUN_CONFIG_ROOTS` also apply to a checkpoint's run config.

    Returns:
        (record, path of the JSON file). ``record.status`` is ``"failed"`` with ``record.error`` on error.
    """
    overrides = overrides.split() if isinstance(overrides, str) else list(overrides)
    folder = RunFolder(output_dir).benchmark_dir
    rec = new_record(cfg, model_choice, overrides)
    threads = torch.get_num_threads()
    try:
        rec.precision = check_precision(rec.backend, rec.precision)  # canonical name; fails before building anything
        h, w = parse_resolution(cfg.resolution)
        rec.resolution, rec.height, rec.width = f"{w}x{h}", h, w
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        device = resolve_device(cfg.get("device"))
        rec.__dict__.update({k: v for k, v in hardware_info(device).items() if k in rec.__dict__})
        rec.commit, rec.load_1min = commit_label(git_info()), os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        if cfg.get("checkpoint"):  # named in the record, and filed in the run's benchmark/, also when loading fails
            from inference.loading import find_run_folder

            rec.weights = str(cfg.checkpoint)
            found = find_run_folder(Path(str(cfg.checkpoint)).expanduser())
            folder = found.benchmark_dir if found is not None and found.hparams.is_file() else folder
        model, cfg, model_choice, weights, run = load_model(cfg, model_choice, overrides)
        if run is not None:
            folder = run.benchmark_dir
            name_from_run(rec, cfg, model_choice)
        if weights is not None:
            rec.weights = str(weights)
        measure(rec, cfg, model, device)
    except Exception as e:
        rec.status = "failed"
        rec.error = error_text(e)
        log.error(f"benchmark of {rec.name} failed: {rec.error}")
        log.debug(traceback.format_exc())
    finally:
        torch.set_num_threads(threads)
    path = write_record(rec, folder)
    return rec, path
