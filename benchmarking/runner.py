"""``run_benchmark(cfg, ...)``: one measurement -> one JSON record (what ``python benchmark.py`` does).

Steps (``config/benchmark.yaml`` holds every default):

1. the model: ``checkpoint=`` (run folder, ``.ckpt`` or weights file) goes through the loader of validation.py
   and predict.py (:func:`inference.loading.load_for_inference`; a run's config is re-resolved with this
   command's ``environment.*``/``dataset.*``/``model.*``/``augmentation.*`` overrides); without a checkpoint,
   ``cfg.model`` with random weights;
2. params (total/trainable) and FLOPs (``torch.utils.flop_counter``, eager float32, batch 1) at ``resolution``;
3. ``evaluate=true``: mIoU on ``eval_split`` by validation.py's evaluation (:func:`inference.validate.evaluate_config`:
   same loader, ``dataset.test`` settings, the run's ``val_batch_size``) under this benchmark's ``precision``;
4. ``photos=<dir>``: per-photo time and memory through predict.py's predictor
   (:class:`inference.predict.Predictor`: EXIF orientation, auto/slide/streaming, ``photos_preset``) against
   ``budget``;
5. time ``backend`` x ``precision`` with the MMSeg protocol (:mod:`benchmarking.protocol`): a fixed random
   input of ``resolution`` is prepared outside the timer; inside the timer are the model forward, the
   bilinear resize of the logits to the input size and the argmax;
6. memory of one more forward (:func:`core.measure.peak_memory`): ``memory_peak_mib`` (peak total incl.
   the weights) and ``memory_forward_mib`` (peak growth during the forward).

Any exception (OOM, missing weights, unknown encoder, unsupported op) becomes a record with
``status="failed"`` and the error, so that a multirun sweep goes on. Process-wide settings changed for a
measurement (``torch.set_num_threads``) are restored afterwards, also after a failure.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from benchmarking.backends import EXPORTED, BackendModule, BackendOptions, build_runner, check_precision, eager
from benchmarking.protocol import TimingProtocol, time_callable, timer_overhead_ms
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
from datasets.image_io import image_size
from models.build import build_model
from models.display import describe_model

log = logging.getLogger("segbench.benchmark")

#: config roots of a training run that a benchmark override may change when ``checkpoint=`` names a run
RUN_CONFIG_ROOTS = ("environment", "dataset", "model", "augmentation")


def parse_resolution(value) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``"1024x512"``, width first as in "Cityscapes at 1024x512") or an int (square).

    Returns:
        (H, W) in pixels.

    Raises:
        ValueError: anything else (the value is named).
    """
    if isinstance(value, int) and value > 0:
        return value, value
    parts = str(value).lower().split("x")
    if len(parts) == 2 and all(p.strip().isdigit() and int(p) > 0 for p in parts):
        return int(parts[1]), int(parts[0])
    raise ValueError(f"resolution={value!r}: expected WIDTHxHEIGHT such as 1024x512 (or one int for a square)")


def run_overrides(overrides: Sequence[str], group_choices: bool) -> list[str]:
    """The overrides of a benchmark command that concern the training config (:data:`RUN_CONFIG_ROOTS`).

    ``group_choices``: keep ``model=<name>``/``dataset=<name>`` (composing ``config/train.yaml`` for a plain
    weights file); a run folder or ``.ckpt`` brings its own choices, so only dotted keys are kept then.
    """
    out = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.split(".", 1)[0] in RUN_CONFIG_ROOTS and ("." in key or group_choices):
            out.append(o)
    return out


def load_model(cfg: DictConfig, model_choice: str, overrides: Sequence[str]):
    """(model, config, model choice, weights path, run folder) for the benchmark config ``cfg``.

    With ``cfg.checkpoint`` the model and the training config come from
    :func:`inference.loading.load_for_inference` (the benchmark's keys are kept, ``model``, ``dataset``,
    ``augmentation``, ``val_batch_size``, ``num_workers`` and ``environment`` are the run's); otherwise
    ``cfg.model`` with random weights.

    Raises:
        FileNotFoundError: the checkpoint (or the run's best/last checkpoint) is missing.
    """
    ckpt = cfg.get("checkpoint")
    if not ckpt:
        torch.manual_seed(int(cfg.seed))  # random weights: the same model in every backend/precision of a sweep
        return build_model(cfg.model, init_weights=True), cfg, model_choice, None, None
    from inference.loading import find_run_folder, load_for_inference

    src = Path(str(ckpt)).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"checkpoint={ckpt}: no such file or run folder")
    own_config = find_run_folder(src) is not None or src.suffix == ".ckpt"
    model, run_cfg = load_for_inference(
        src, run_overrides(overrides, group_choices=not own_config), which=str(cfg.get("checkpoint_which") or "best")
    )
    merged = cfg.copy()
    OmegaConf.set_struct(merged, False)
    for key in (*RUN_CONFIG_ROOTS, "val_batch_size", "num_workers", "loaded_from"):
        if key in run_cfg:
            merged[key] = run_cfg[key]
    run_dir = run_cfg.loaded_from.run_dir
    run = RunFolder(run_dir) if run_dir else None
    if run is not None:
        model_choice = run.root.parents[1].name
    return model, merged, model_choice, Path(run_cfg.loaded_from.weights), run


def _sync_fn(device: torch.device):
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def evaluate_miou(model, cfg: DictConfig, device: torch.device, precision: str) -> tuple[float, str, int]:
    """mIoU (0..1) of ``model`` on ``cfg.eval_split`` (default ``val``) by validation.py's evaluation
    (:func:`inference.validate.evaluate_config`, float32 weights in the default memory format, ``precision``),
    on at most ``cfg.eval_max_images`` images (all when null).

    Returns:
        (mIoU, split name, images evaluated).

    Raises:
        ValueError: the split has no labels (the labelled splits are listed).
    """
    from inference.validate import evaluate_config

    ev, split, _settings = evaluate_config(
        model, cfg, str(cfg.get("eval_split") or "val"), device, precision, False, limit=cfg.get("eval_max_images")
    )
    return float(ev.metrics["mIoU"]), split, ev.num_images


def photo_budget(model, cfg: DictConfig, device: torch.device, precision: str) -> dict:
    """Per-photo time and peak memory on the photos of ``cfg.photos`` against ``cfg.budget``, measured through
    predict.py's predictor (:class:`inference.predict.Predictor`, mode ``auto``, settings ``dataset.test`` then
    ``cfg.photos_preset``).

    Each photo is read (EXIF orientation applied) outside the timer; the timer covers normalisation,
    inference and the label map at full size (``Predictor.labels``), after one untimed warm-up on the
    smallest photo. Memory: :func:`core.measure.peak_memory` around the same call.

    Returns:
        dict with ``checked_on="photos"``, ``images``, ``max_seconds``, ``median_seconds``, ``max_memory_mib``
        (peak total), ``worst_time_image``, ``worst_memory_image``, ``per_image``, ``violations`` and ``ok``.

    Raises:
        FileNotFoundError: ``cfg.photos`` is not a folder or holds no image.
    """
    from inference.engine import InferenceSettings
    from inference.predict import Predictor, list_images, load_preset, read_rgb

    folder = Path(str(cfg.photos)).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"photos={folder}: not a folder")
    files = list_images([folder])
    if cfg.get("photos_limit"):
        files = files[: int(cfg.photos_limit)]
    preset = load_preset(cfg.get("photos_preset"))
    mode = preset.pop("mode", "auto")
    if mode != "auto":
        preset["mode"] = mode
    settings = InferenceSettings.from_config({**dict(cfg.dataset.get("test") or {}), **preset})
    pcfg = cfg.copy()
    OmegaConf.set_struct(pcfg, False)
    pcfg.precision, pcfg.channels_last = precision, False
    predictor = Predictor(model, pcfg, settings, device, mode)
    sync = _sync_fn(device)
    images = {}

    def load(p):
        if p not in images:
            images.clear()
            images[p] = read_rgb(p)
        return images[p]

    sizes = {}
    for p in files:
        w, h = image_size(p)  # header only
        sizes[p] = w * h
    predictor.labels(load(min(files, key=sizes.get)))
    rows = []
    for p in files:
        image = load(p)
        with peak_memory(device) as mem:
            sync()
            t0 = time.perf_counter()
            _labels, used = predictor.labels(image)
            sync()
            seconds = time.perf_counter() - t0
        rows.append((p.name, (image.shape[1], image.shape[0]), seconds, mem.peak_mib, mem.forward_mib, used.mode))
        del _labels
    b = cfg.budget
    max_s, max_mib = float(b.seconds), float(b.memory_gib) * 1024
    violations = [f"{n} ({w}x{h}): {s:.2f} s > {max_s:g} s" for n, (w, h), s, *_ in rows if s > max_s]
    violations += [f"{n} ({w}x{h}): {m:.0f} MiB > {b.memory_gib:g} GiB" for n, (w, h), _, m, *_ in rows if m > max_mib]
    return {
        "checked_on": "photos",
        "folder": str(folder),
        "preset": cfg.get("photos_preset"),
        "inference": settings.to_dict(),
        "images": len(rows),
        "seconds": max_s,
        "memory_gib": float(b.memory_gib),
        "max_seconds": max(r[2] for r in rows),
        "median_seconds": float(np.median([r[2] for r in rows])),
        "max_memory_mib": max(r[3] for r in rows),
        "worst_time_image": max(rows, key=lambda r: r[2])[0],
        "worst_memory_image": max(rows, key=lambda r: r[3])[0],
        "per_image": [
            {
                "image": n,
                "width": w,
                "height": h,
                "seconds": s,
                "memory_peak_mib": m,
                "memory_forward_mib": f,
                "mode": md,
            }
            for n, (w, h), s, m, f, md in rows
        ],
        "violations": violations,
        "ok": not violations,
    }


def _timed_budget(rec: BenchmarkRecord, cfg: DictConfig) -> dict:
    b = cfg.budget
    sec = (rec.latency_ms_p50 or 0) / 1000 / max(rec.batch_size, 1)
    v = []
    if sec > float(b.seconds):
        v.append(f"timed input {rec.resolution}: {sec:.2f} s/img > {float(b.seconds):g} s")
    if rec.memory_peak_mib is not None and rec.memory_peak_mib > float(b.memory_gib) * 1024:
        v.append(f"timed input {rec.resolution}: {rec.memory_peak_mib:.0f} MiB > {float(b.memory_gib):g} GiB")
    return {
        "checked_on": "timed input",
        "seconds": float(b.seconds),
        "memory_gib": float(b.memory_gib),
        "violations": v,
        "ok": not v,
    }


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
    if cfg.get("evaluate") and not exported:  # before the backend changes the module (channels_last, compile)
        rec.mIoU, rec.eval_split, rec.eval_images = evaluate_miou(model, cfg, device, rec.precision)
    if cfg.get("photos") and not exported:
        rec.budget = photo_budget(model, cfg, device, rec.precision)
    runner = build_runner(model, x, rec.backend, rec.precision, device, backend_options(cfg, rec))
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

    protocol = TimingProtocol(
        warmup=int(cfg.warmup), iterations=int(cfg.iterations), repeat=int(cfg.repeat), batch_size=bs
    )
    sync = _sync_fn(device)
    res = time_callable(step, protocol, sync=sync)
    rec.warmup, rec.iterations, rec.repeat = protocol.warmup, protocol.iterations, protocol.repeat
    rec.fps, rec.fps_var, rec.fps_runs = res.fps, res.fps_var, res.fps_runs
    rec.latency_ms_p50, rec.latency_ms_p95 = res.latency_ms(50), res.latency_ms(95)
    rec.latency_ms_mean = float(np.mean(res.all_times_ms))
    rec.overhead_ms = timer_overhead_ms(sync)
    rec.overhead_pct = 100.0 * rec.overhead_ms / rec.latency_ms_p50 if rec.latency_ms_p50 else None
    with peak_memory(device) as mem:
        step()
    rec.memory_peak_mib, rec.memory_forward_mib, rec.memory_kind = mem.peak_mib, mem.forward_mib, mem.kind
    if not rec.budget:
        rec.budget = _timed_budget(rec, cfg)


def backend_options(cfg: DictConfig, rec: BenchmarkRecord) -> BackendOptions:
    """Options of exported backends: threads, and for int8 the ``calibration.images`` images of
    ``calibration.split`` (``config/benchmark.yaml``) through the dataset's test pipeline."""
    options = BackendOptions.from_config(cfg, threads=int(cfg.threads) if cfg.get("threads") else None)
    if rec.precision == "int8":
        rec.calibration = options.calibration_note
    return options


def measure_parity(rec: BenchmarkRecord, cfg: DictConfig, model, runner, device: torch.device, fallback) -> None:
    """Fill the ``parity_*`` fields of ``rec``: ``runner`` vs eager 32-true on ``parity.images`` images of the
    evaluation split (``fallback``, the timed input, when the split cannot be read), and with ``evaluate=true``
    the backend's mIoU (validation.py's evaluation) minus eager 32-true's; checked against
    ``parity.tolerance[precision]``."""
    from benchmarking.parity import compare, split_images, tolerance_for, violations

    p = cfg.get("parity") or {}
    split = str(cfg.get("eval_split") or cfg.dataset.get("val_split", "val"))
    try:
        images, rec.parity_images = split_images(cfg, split, int(p.get("images", 4))), split
    except (OSError, ValueError) as e:
        log.warning(f"parity on the timed input: split {split!r} unreadable ({error_text(e)})")
        images, rec.parity_images = [fallback], "timed input"
    rec.parity_images += f" ({len(images)} images)"
    res = compare(eager(model, fallback, "32-true", device), runner, images)
    rec.parity_reference = "eager 32-true"
    rec.parity_max_abs_logit, rec.parity_max_abs_reference = res["max_abs_logit"], res["max_abs_reference"]
    rec.parity_label_agreement = res["label_agreement"]
    if cfg.get("evaluate"):
        ref, _, _ = evaluate_miou(model, cfg, device, "32-true")
        rec.mIoU, rec.eval_split, rec.eval_images = evaluate_miou(BackendModule(runner, model), cfg, device, "32-true")
        rec.parity_delta_mIoU = rec.mIoU - ref
    rec.parity_violations = violations(res, tolerance_for(p.get("tolerance"), rec.precision), rec.parity_delta_mIoU)
    rec.parity_ok = not rec.parity_violations


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
            ``config``; those of :data:`RUN_CONFIG_ROOTS` also apply to a checkpoint's run config.

    Returns:
        (record, path of the JSON file). ``record.status`` is ``"failed"`` with ``record.error`` on error.
    """
    overrides = overrides.split() if isinstance(overrides, str) else list(overrides)
    folder = RunFolder(output_dir).benchmark_dir
    name, method = describe_model(cfg.model, model_choice, cfg.get("display"))
    rec = BenchmarkRecord(
        name=str(cfg.get("name") or name),
        method=str(cfg.get("method") or method),
        model=model_choice,
        config=" ".join(overrides),
        dataset=str(cfg.dataset.name),
        batch_size=int(cfg.batch_size),
        precision=str(cfg.precision),
        backend=str(cfg.backend),
    )
    threads = torch.get_num_threads()
    try:
        rec.precision = check_precision(rec.backend, rec.precision)  # canonical name; fails before building anything
        h, w = parse_resolution(cfg.resolution)
        rec.resolution, rec.height, rec.width = f"{w}x{h}", h, w
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        device = resolve_device(cfg.get("device"))
        rec.__dict__.update({k: v for k, v in hardware_info(device).items() if k in rec.__dict__})
        if cfg.get("checkpoint"):  # named in the record, and filed in the run's benchmark/, also when loading fails
            from inference.loading import find_run_folder

            rec.weights = str(cfg.checkpoint)
            found = find_run_folder(Path(str(cfg.checkpoint)).expanduser())
            folder = found.benchmark_dir if found is not None and found.hparams.is_file() else folder
        model, cfg, model_choice, weights, run = load_model(cfg, model_choice, overrides)
        if run is not None:
            folder = run.benchmark_dir
            name, method = describe_model(cfg.model, model_choice, cfg.get("display"))
            rec.name, rec.method = str(cfg.get("name") or name), str(cfg.get("method") or method)
            rec.model, rec.dataset = model_choice, str(cfg.dataset.name)
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


def error_text(e: BaseException, limit: int = 500) -> str:
    """``"<Type>: <first line>"`` of ``e``, cut to ``limit``; Hydra's wrappers of constructor errors are unwrapped."""
    from hydra.errors import InstantiationException

    while isinstance(e, InstantiationException) and (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    msg = str(e).strip()
    return f"{type(e).__name__}: {msg.splitlines()[0] if msg else ''}"[:limit]


def summary(rec: BenchmarkRecord) -> str:
    """One line for the console."""
    if rec.status != "ok":
        return f"{rec.name} [{rec.backend}/{rec.precision} {rec.resolution}] FAILED: {rec.error}"
    miou = f", mIoU {100 * rec.mIoU:.2f}" if rec.mIoU is not None else ""
    mem = (
        f"{rec.memory_peak_mib:.0f} MiB peak ({rec.memory_forward_mib:.0f} MiB during the forward)"
        if rec.memory_peak_mib is not None
        else "n/a"
    )
    gf = f"{rec.gflops:.1f}" if rec.gflops is not None else "n/a"
    parity = ""
    if rec.parity_ok is not None:
        parity = (
            f", parity vs {rec.parity_reference}: max |Δ logit| {rec.parity_max_abs_logit:.3g}, label agreement "
            f"{rec.parity_label_agreement:.4f}"
            + ("" if rec.parity_delta_mIoU is None else f", ΔmIoU {100 * rec.parity_delta_mIoU:+.2f}")
            + ("" if rec.parity_ok else " PARITY EXCEEDED: " + "; ".join(rec.parity_violations))
        )
    return (
        f"{rec.name} [{rec.backend}/{rec.precision} {rec.resolution} on {rec.hardware}]: {rec.fps:.2f} fps, "
        f"latency p50 {rec.latency_ms_p50:.1f} ms p95 {rec.latency_ms_p95:.1f} ms, params "
        f"{rec.params / 1e6:.2f} M, {gf} GFLOPs, memory {mem}{miou}, timer overhead {rec.overhead_pct:.2g} %{parity}"
        f"{'' if rec.budget.get('ok', True) else ' BUDGET EXCEEDED: ' + '; '.join(rec.budget['violations'])}"
    )
