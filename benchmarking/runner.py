"""``run_benchmark(cfg, ...)``: one measurement -> one JSON record (what ``python benchmark.py`` does).

Steps (``config/benchmark.yaml`` holds every default):

1. build the model from ``cfg.model`` (or from the run folder's ``hparams.yaml`` when ``checkpoint=`` names
   a run folder or one of its ``checkpoints/*.ckpt``) and load the weights;
2. params (total/trainable) and FLOPs (``torch.utils.flop_counter``, eager fp32, batch 1) at ``resolution``;
3. time ``backend`` x ``precision`` with the MMSeg protocol (:mod:`benchmarking.protocol`): a fixed random
   input of ``resolution`` is prepared outside the timer; inside the timer are the model forward, the
   bilinear resize of the logits to the input size and the argmax;
4. peak memory of one more forward (:func:`benchmarking.measure.peak_memory`);
5. optionally mIoU on a labelled split with the inference engine (``evaluate=true``) and the
   per-image time/memory budget on real photos (``photos=<dir>``).

Any exception (OOM, missing weights, unknown encoder, unsupported op) becomes a record with
``status="failed"`` and the error, so that a multirun sweep goes on.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from benchmarking.backends import (
    EXPORTED,
    BackendModule,
    BackendOptions,
    autocast,
    build_runner,
    check_precision,
    eager,
)
from benchmarking.measure import (
    FLOPS_CONVENTION,
    FLOPS_COUNTER,
    count_flops,
    count_params,
    hardware_info,
    peak_memory,
    resolve_device,
)
from benchmarking.protocol import TimingProtocol, time_callable, timer_overhead_ms
from benchmarking.records import BenchmarkRecord, write_record
from models.build import build_model
from utils.run_folder import RunFolder

log = logging.getLogger("segbench.benchmark")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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


def describe_model(model_cfg: DictConfig, model_choice: str, display: DictConfig | None = None) -> tuple[str, str]:
    """(name, method) shown in tables, from ``display[model_choice]`` (``config/benchmark.yaml``) formatted with
    the model config's keys, e.g. ``{arch}-{encoder}`` -> ``Unet-resnet18``; the model choice otherwise."""
    fmt = (display or {}).get(model_choice) or {}
    keys = {k: model_cfg.get(k) for k in model_cfg if isinstance(k, str)} if model_cfg is not None else {}
    out = []
    for field in ("name", "method"):
        try:
            out.append(str(fmt.get(field, model_choice)).format(**keys))
        except (KeyError, IndexError, ValueError):
            out.append(model_choice or "model")
    return out[0] or "model", out[1] or "model"


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load weights into ``model`` as validation.py does (cross-team agreement).

    ``.pth``/``.pt`` with a model that defines ``load_pretrained`` -> ``model.load_pretrained(path)``;
    otherwise a Lightning ``.ckpt`` (``state_dict`` with ``model.`` prefix) or a plain state dict, strictly.

    Raises:
        FileNotFoundError: ``path`` does not exist (named).
        RuntimeError: key mismatch (from ``load_state_dict``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix in (".pth", ".pt") and hasattr(model, "load_pretrained"):
        model.load_pretrained(str(path))
        return
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if any(k.startswith("model.") for k in state):
        state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    model.load_state_dict(state, strict=True)


def resolve_checkpoint(cfg: DictConfig, model_choice: str) -> tuple[DictConfig, str, Path | None, RunFolder | None]:
    """Config, model choice, weights file and run folder for ``cfg.checkpoint``.

    A run folder (or a ``.ckpt`` inside its ``checkpoints/``) brings its own ``model``/``dataset`` config from
    ``hparams.yaml`` and receives the record in its ``benchmark/``; any other file is loaded into the model
    of the composed config.

    Raises:
        FileNotFoundError: the checkpoint (or the run's best/last checkpoint) is missing.
    """
    ckpt = cfg.get("checkpoint")
    if not ckpt:
        return cfg, model_choice, None, None
    p = Path(str(ckpt)).expanduser()
    run = None
    if p.is_dir():
        run = RunFolder(p)
        weights = run.checkpoint(str(cfg.get("checkpoint_which") or "best"))
    elif p.is_file():
        weights = p
        if p.parent.name == "checkpoints" and (p.parent.parent / "hparams.yaml").is_file():
            run = RunFolder(p.parent.parent)
    else:
        raise FileNotFoundError(f"checkpoint={ckpt}: no such file or run folder")
    if run is not None:
        run_cfg = run.load_config()
        cfg = cfg.copy()
        OmegaConf.set_struct(cfg, False)
        cfg.model, cfg.dataset = run_cfg.model, run_cfg.dataset
        if "augmentation" in run_cfg:
            cfg.augmentation = run_cfg.augmentation
        model_choice = run.root.parents[1].name
    return cfg, model_choice, weights, run


def _sync_fn(device: torch.device):
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def evaluate_miou(model, cfg: DictConfig, device: torch.device, precision: str) -> tuple[float, str, int]:
    """mIoU (0..1) of ``model`` on ``cfg.eval_split`` (default ``dataset.val_split``) with the inference engine.

    Uses ``dataset.test`` settings (:class:`inference.InferenceSettings`) and at most ``cfg.eval_max_images``
    images (all when null).

    Raises:
        ValueError: the split has no labels (the labelled splits are listed).
    """
    from torch.utils.data import DataLoader

    from datasets import build_dataset
    from datasets.transforms import build_transforms
    from inference import InferenceSettings, predict_labels
    from metrics.confusion import SegmentationMetrics

    d = cfg.dataset
    split = str(cfg.get("eval_split") or d.get("val_split", "val"))
    labelled = tuple(getattr(get_class(d._target_), "has_labels", ()))
    if split not in labelled:
        raise ValueError(
            f"evaluate=true on dataset {d.name} split {split!r}: no labels; labelled splits: {list(labelled)}"
        )
    aug = cfg.get("augmentation")
    ds = build_dataset(d, split, build_transforms(aug.test if aug is not None else None, d.mean, d.std))
    settings = InferenceSettings.from_config(d.get("test"))
    metric = SegmentationMetrics(int(d.num_classes), int(d.ignore_index)).to(device)
    limit = cfg.get("eval_max_images")
    n = 0
    for batch in DataLoader(ds, batch_size=1, num_workers=0):
        if limit is not None and n >= int(limit):
            break
        img, mask = batch["image"].to(device), batch["mask"].to(device)
        with autocast(precision, device):
            pred = predict_labels(model, img, settings, out_size=tuple(mask.shape[-2:]))
        metric.update(pred, mask)
        n += 1
    return float(metric.compute()["mIoU"]), split, n


def photo_budget(model, cfg: DictConfig, device: torch.device, precision: str) -> dict:
    """Per-image time and peak memory on the photos of ``cfg.photos`` against ``cfg.budget``.

    Every photo (at most ``cfg.photos_limit``) is normalised with the dataset mean/std outside the timer and
    predicted at its own size with the inference engine (``dataset.test`` settings) after one untimed
    warm-up on the smallest photo.

    Returns:
        dict with ``checked_on="photos"``, ``images``, ``max_seconds``, ``median_seconds``, ``max_memory_mib``,
        ``worst_time_image``, ``worst_memory_image``, ``violations`` (list of str) and ``ok`` (bool).

    Raises:
        FileNotFoundError: ``cfg.photos`` is not a folder or holds no image.
    """
    from inference import InferenceSettings, predict_labels

    folder = Path(str(cfg.photos)).expanduser()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"photos={folder}: not a folder with images ({', '.join(IMAGE_EXTENSIONS)})")
    if cfg.get("photos_limit"):
        files = files[: int(cfg.photos_limit)]
    mean = torch.tensor(list(cfg.dataset.mean)).view(1, 3, 1, 1)
    std = torch.tensor(list(cfg.dataset.std)).view(1, 3, 1, 1)
    settings = InferenceSettings.from_config(cfg.dataset.get("test"))
    sync = _sync_fn(device)

    def load(p):
        with Image.open(p) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        return ((torch.from_numpy(arr).permute(2, 0, 1)[None] - mean) / std).to(device)

    def predict(x):
        with autocast(precision, device):
            return predict_labels(model, x, settings)

    sizes = {p: Image.open(p).size for p in files}
    predict(load(min(files, key=lambda p: sizes[p][0] * sizes[p][1])))
    rows = []
    for p in files:
        x = load(p)
        with peak_memory(device) as mem:
            sync()
            t0 = time.perf_counter()
            predict(x)
            sync()
            seconds = time.perf_counter() - t0
        rows.append((p.name, sizes[p], seconds, mem.mib))
        del x
    b = cfg.budget
    max_s, max_mib = float(b.seconds), float(b.memory_gib) * 1024
    violations = [f"{n} ({w}x{h}): {s:.2f} s > {max_s:g} s" for n, (w, h), s, _ in rows if s > max_s]
    violations += [f"{n} ({w}x{h}): {m:.0f} MiB > {b.memory_gib:g} GiB" for n, (w, h), _, m in rows if m > max_mib]
    return {
        "checked_on": "photos",
        "folder": str(folder),
        "images": len(rows),
        "seconds": max_s,
        "memory_gib": float(b.memory_gib),
        "max_seconds": max(r[2] for r in rows),
        "median_seconds": float(np.median([r[2] for r in rows])),
        "max_memory_mib": max(r[3] for r in rows),
        "worst_time_image": max(rows, key=lambda r: r[2])[0],
        "worst_memory_image": max(rows, key=lambda r: r[3])[0],
        "per_image": [{"image": n, "width": w, "height": h, "seconds": s, "memory_mib": m} for n, (w, h), s, m in rows],
        "violations": violations,
        "ok": not violations,
    }


def _timed_budget(rec: BenchmarkRecord, cfg: DictConfig) -> dict:
    b = cfg.budget
    sec = (rec.latency_ms_p50 or 0) / 1000 / max(rec.batch_size, 1)
    v = []
    if sec > float(b.seconds):
        v.append(f"timed input {rec.resolution}: {sec:.2f} s/img > {float(b.seconds):g} s")
    if rec.memory_mib is not None and rec.memory_mib > float(b.memory_gib) * 1024:
        v.append(f"timed input {rec.resolution}: {rec.memory_mib:.0f} MiB > {float(b.memory_gib):g} GiB")
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
            rec.budget = photo_budget(BackendModule(runner, model), cfg, device, "fp32")

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
    rec.memory_mib, rec.memory_kind = mem.mib, mem.kind
    if not rec.budget:
        rec.budget = _timed_budget(rec, cfg)


def backend_options(cfg: DictConfig, rec: BenchmarkRecord) -> BackendOptions:
    """Options of exported backends: threads, and for int8 the ``calibration.images`` images of
    ``calibration.split`` (``config/benchmark.yaml``) through the dataset's test pipeline."""
    from benchmarking.parity import split_images

    c = cfg.get("calibration") or {}
    n, split = int(c.get("images", 0) or 0), str(c.get("split") or "train")
    if rec.precision == "int8":
        rec.calibration = f"{split} ({n} images, nncf.quantize)"
    return BackendOptions(
        threads=int(cfg.threads) if cfg.get("threads") else None, calibration=lambda: split_images(cfg, split, n)
    )


def measure_parity(rec: BenchmarkRecord, cfg: DictConfig, model, runner, device: torch.device, fallback) -> None:
    """Fill the ``parity_*`` fields of ``rec``: ``runner`` vs eager fp32 on ``parity.images`` images of the
    evaluation split (``fallback``, the timed input, when the split cannot be read), and with ``evaluate=true``
    the backend's mIoU (through the inference engine) minus eager fp32's; checked against
    ``parity.tolerance[precision]``."""
    from benchmarking.parity import compare, split_images, violations

    p = cfg.get("parity") or {}
    split = str(cfg.get("eval_split") or cfg.dataset.get("val_split", "val"))
    try:
        images, rec.parity_images = split_images(cfg, split, int(p.get("images", 4))), split
    except (OSError, ValueError) as e:
        log.warning(f"parity on the timed input: split {split!r} unreadable ({error_text(e)})")
        images, rec.parity_images = [fallback], "timed input"
    rec.parity_images += f" ({len(images)} images)"
    res = compare(eager(model, fallback, "fp32", device), runner, images)
    rec.parity_reference = "eager fp32"
    rec.parity_max_abs_logit, rec.parity_max_abs_reference = res["max_abs_logit"], res["max_abs_reference"]
    rec.parity_label_agreement = res["label_agreement"]
    if cfg.get("evaluate"):
        ref, _, _ = evaluate_miou(model, cfg, device, "fp32")
        rec.mIoU, rec.eval_split, rec.eval_images = evaluate_miou(BackendModule(runner, model), cfg, device, "fp32")
        rec.parity_delta_mIoU = rec.mIoU - ref
    rec.parity_violations = violations(res, (p.get("tolerance") or {}).get(rec.precision), rec.parity_delta_mIoU)
    rec.parity_ok = not rec.parity_violations


def run_benchmark(
    cfg: DictConfig, output_dir: str | Path, model_choice: str = "", overrides: str = ""
) -> tuple[BenchmarkRecord, Path]:
    """Measure one configuration and write its record; never raises for a failed measurement.

    Args:
        cfg: composed ``config/benchmark.yaml``.
        output_dir: this job's folder (Hydra run dir); the record goes to ``<output_dir>/benchmark/`` unless
            ``cfg.checkpoint`` names a run folder, whose ``benchmark/`` receives it.
        model_choice: name of the ``model`` config group option (``smp``, ``hrnet`` ...).
        overrides: the command-line overrides, kept as the record's ``config``.

    Returns:
        (record, path of the JSON file). ``record.status`` is ``"failed"`` with ``record.error`` on error.
    """
    folder = RunFolder(output_dir).benchmark_dir
    name, method = describe_model(cfg.model, model_choice, cfg.get("display"))
    rec = BenchmarkRecord(
        name=str(cfg.get("name") or name),
        method=str(cfg.get("method") or method),
        model=model_choice,
        config=overrides,
        dataset=str(cfg.dataset.name),
        batch_size=int(cfg.batch_size),
        precision=str(cfg.precision),
        backend=str(cfg.backend),
    )
    try:
        check_precision(rec.backend, rec.precision)  # fail before building anything
        h, w = parse_resolution(cfg.resolution)
        rec.resolution, rec.height, rec.width = f"{w}x{h}", h, w
        if cfg.get("threads"):
            torch.set_num_threads(int(cfg.threads))
        device = resolve_device(cfg.get("device"))
        rec.__dict__.update({k: v for k, v in hardware_info(device).items() if k in rec.__dict__})
        cfg, model_choice, weights, run = resolve_checkpoint(cfg, model_choice)
        if run is not None:
            folder = run.benchmark_dir
            name, method = describe_model(cfg.model, model_choice, cfg.get("display"))
            rec.name, rec.method = str(cfg.get("name") or name), str(cfg.get("method") or method)
            rec.model, rec.dataset = model_choice, str(cfg.dataset.name)
        torch.manual_seed(int(cfg.seed))  # random weights: the same model in every backend/precision of a sweep
        model = build_model(cfg.model, init_weights=weights is None)
        if weights is not None:
            load_weights(model, weights)
            rec.weights = str(weights)
        measure(rec, cfg, model, device)
    except Exception as e:
        rec.status = "failed"
        rec.error = error_text(e)
        log.error(f"benchmark of {rec.name} failed: {rec.error}")
        log.debug(traceback.format_exc())
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
    mem = f"{rec.memory_mib:.0f} MiB" if rec.memory_mib is not None else "n/a"
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
