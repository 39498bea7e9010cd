"""Temperature scaling of a trained run: fit ``T`` on the val split, store it in the run folder, apply it on loading.

Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks", ICML 2017, §4.2.

``python validation.py checkpoint=<run> fit_temperature=true`` (:func:`fit_run_temperature`) runs the run's model over
the val split with the dataset's test-time settings, keeps the logits of every view (scales, flips) at a
deterministic random sample of at most ``max_pixels`` labelled pixels (generator seeded with 0; every image gives
the same share), fits ``T`` (:func:`metrics.temperature.fit_temperature`), validates with ``T`` applied and only
then writes ``calibration/temperature.json`` (:attr:`core.run_folder.RunFolder.temperature_file`, atomically):
``temperature``, ``nll_before``/``nll_after`` (nats per sampled pixel), ``ECE_before``/``ECE_after`` and
``MCE_before``/``MCE_after`` (fractions, every labelled pixel of the split), ``split``, ``pixels`` (sampled),
``labelled_pixels``, ``images``, ``inference`` (settings), ``precision``, ``checkpoint`` (path in the run) and its
``checkpoint_sha256``, ``validation`` (the folder of the validation with ``T``), ``git`` commit, ``fitted`` (date).
A failed fit leaves an existing file as it was.

:func:`inference.loading.load_for_inference` then sets the model's temperature (:func:`apply_run_temperature`)
when the checkpoint it loads is the one ``T`` was fitted for (same SHA-256); the engine divides the logits by it
(:func:`inference.windows.forward_logits`). Labels are unchanged for one view (softmax keeps the arg-max); with
several views the per-view probabilities are averaged after scaling, so a few pixels may change.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
from pathlib import Path

import torch
from torch import nn

from core.precision import autocast
from core.records import atomic_write_text
from core.run_folder import RunFolder
from inference.engine import view_logits
from inference.settings import InferenceSettings
from inference.windows import TEMPERATURE_ATTR

log = logging.getLogger("segbench")

#: labelled pixels sampled for the fit at most (V x P x K float32 logits are held)
MAX_PIXELS = 1_000_000


def temperature_of(model: nn.Module) -> float | None:
    """The temperature the engine divides ``model``'s logits by, or None (``T = 1``)."""
    return getattr(model, TEMPERATURE_ATTR, None)


def set_temperature(model: nn.Module, temperature: float | None) -> nn.Module:
    """Make the engine divide ``model``'s logits by ``temperature`` (None: no scaling); returns ``model``.

    Raises:
        ValueError: ``temperature`` is not a finite number > 0.
    """
    if temperature is not None:
        t = float(temperature)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
        temperature = t
    setattr(model, TEMPERATURE_ATTR, temperature)
    return model


@contextlib.contextmanager
def without_temperature(model: nn.Module):
    """Context in which ``model``'s logits are not scaled (the temperature is put back afterwards)."""
    t = temperature_of(model)
    set_temperature(model, None)
    try:
        yield model
    finally:
        set_temperature(model, t)


def read_temperature(path: str | Path) -> dict:
    """The record of a ``temperature.json`` (module docstring).

    Raises:
        ValueError: the file is not JSON, or ``temperature`` is missing or not a finite number > 0 (file and value
            named).
    """
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable temperature record ({type(e).__name__}: {e})") from e
    t = record.get("temperature") if isinstance(record, dict) else None
    if isinstance(t, bool) or not isinstance(t, int | float) or not (math.isfinite(t) and t > 0):
        raise ValueError(f"{path}: key 'temperature' must be a finite number > 0, got {t!r}")
    return record


def apply_run_temperature(model: nn.Module, run: RunFolder, weights: str | Path) -> float | None:
    """Set ``model``'s temperature from the run's ``calibration/temperature.json`` when it was fitted for the
    checkpoint ``weights`` (same SHA-256); otherwise leave it unset (a warning names both files).

    Returns:
        the temperature applied, or None.

    Raises:
        ValueError: the temperature record is unreadable or invalid (:func:`read_temperature`).
    """
    path = run.temperature_file
    if not path.is_file():
        return None
    from models.pretrained import sha256

    record = read_temperature(path)
    if record.get("checkpoint_sha256") != sha256(weights):
        log.warning(
            f"{path} was fitted for {record.get('checkpoint')}, not {weights}: logits not scaled "
            f"(fit again with validation.py checkpoint={weights} fit_temperature=true)"
        )
        return None
    set_temperature(model, record["temperature"])
    return float(record["temperature"])


@torch.no_grad()
def sample_view_logits(
    model: nn.Module,
    loader,
    settings: InferenceSettings,
    num_classes: int,
    ignore_index: int,
    num_images: int,
    max_pixels: int = MAX_PIXELS,
    device: torch.device | str = "cpu",
    precision: str = "32-true",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The logits of every view at a deterministic random sample of labelled pixels of ``loader``.

    Image ``j`` (in loader order) gives at most ``max_pixels // num_images`` of its labelled pixels (one more for
    the first ``max_pixels % num_images`` images), drawn without replacement by a generator seeded with ``seed``;
    flipped views are read at the mirrored column.

    Args:
        model: segbench model (its temperature is ignored: the raw logits are sampled).
        loader: batches of ``{"image": float[N,3,H,W], "mask": int64[N,H,W]}``.
        settings: the inference settings whose views are merged.
        num_classes: K; labels outside ``[0, K)`` are not sampled (nor is ``ignore_index``).
        ignore_index: label value that is not sampled.
        num_images: images in ``loader`` (sets the per-image share).
        max_pixels: pixels sampled at most.
        device: device the model runs on; precision: Lightning precision name (autocast).
        seed: seed of the pixel sample.

    Returns:
        ``(logits float32 (V, P, K), labels int64 (P,), labelled pixels of the split)``, on the CPU.
    """
    g = torch.Generator().manual_seed(seed)
    share, extra = divmod(int(max_pixels), max(1, int(num_images)))
    device = torch.device(device)
    chunks, labels, labelled, seen = [], [], 0, 0
    with without_temperature(model):
        for batch in loader:
            images, target = batch["image"].to(device), batch["mask"]
            n, h, w = target.shape
            picks = []
            for i in range(n):
                flat = target[i].reshape(-1)
                ok = (flat != ignore_index) & (flat >= 0) & (flat < num_classes)
                idx = torch.nonzero(ok, as_tuple=True)[0]
                labelled += idx.numel()
                picks.append(idx[torch.randperm(idx.numel(), generator=g)[: share + (seen < extra)]])
                seen += 1
            views = []
            with autocast(precision, device):
                for flip, logits in view_logits(model, images, settings, out_size=(h, w)):
                    per = []
                    for i, idx in enumerate(picks):
                        y, x = idx // w, idx % w  # a flipped view holds column x at w - 1 - x
                        at = (y * w + (w - 1 - x if flip else x)).to(logits.device)
                        per.append(logits[i].reshape(logits.shape[1], -1)[:, at].T.float().cpu())
                    views.append(torch.cat(per))
            chunks.append(torch.stack(views))
            labels.append(torch.cat([target[i].reshape(-1)[idx] for i, idx in enumerate(picks)]))
    return torch.cat(chunks, dim=1), torch.cat(labels), labelled


def _in_run(path, run: RunFolder) -> str:
    """``path`` relative to the run folder when inside it, else absolute."""
    p = Path(path).absolute()  # a linked checkpoint keeps its name in the run
    return str(p.relative_to(run.root)) if p.is_relative_to(run.root) else str(p)


def fit_run_temperature(
    cfg, model: nn.Module, out_dir: str | Path, device, max_pixels: int = MAX_PIXELS, num_vis: int | None = None
) -> dict:
    """Fit the temperature of a run on its val split, validate with it and store ``calibration/temperature.json``.

    Args:
        cfg: the config from :func:`inference.loading.load_for_inference`; ``T`` goes to its run folder, or for a
            checkpoint file outside any run to :func:`inference.loading.pretrained_folder`.
        model: its model.
        out_dir: the validation folder written with ``T`` applied (:func:`inference.validate.run_validation`).
        device: device the model runs on.
        max_pixels: labelled pixels sampled for the fit at most.
        num_vis: colourised predictions the validation saves (default ``cfg.num_vis``).

    Returns:
        the ``metrics.json`` record of the validation with ``T`` plus ``temperature_record`` (the file's content).

    Raises:
        ValueError: no labelled pixel, or a failed fit (nothing written then).
    """
    from core.versions import git_info
    from inference.loading import results_folder
    from inference.validate import eval_loader, run_validation
    from metrics.temperature import fit_temperature
    from models.pretrained import sha256

    src = cfg.get("loaded_from") or {}
    run = results_folder(cfg)
    loader, split = eval_loader(cfg, "val")
    settings = InferenceSettings.from_config(cfg.dataset.get("test"))
    precision = cfg.get("precision", "32-true")
    model = model.eval().to(device)
    logits, labels, labelled = sample_view_logits(
        model,
        loader,
        settings,
        int(cfg.dataset.num_classes),
        int(cfg.dataset.ignore_index),
        len(loader.dataset),
        max_pixels,
        device,
        precision,
    )
    if labels.numel() == 0:
        raise ValueError(f"no labelled pixel in split {split!r} of {cfg.dataset.name}: nothing to fit")
    fit = fit_temperature(logits, labels)
    del logits
    log.info(
        f"temperature T={fit.temperature:.4f} on {fit.pixels} pixels: NLL {fit.nll_before:.4f} -> {fit.nll_after:.4f}"
    )
    set_temperature(model, fit.temperature)
    record = run_validation(cfg, model, "val", out_dir, device, num_vis)
    stored = {
        "temperature": fit.temperature,
        "nll_before": fit.nll_before,
        "nll_after": fit.nll_after,
        "ECE_before": record["ECE"],
        "ECE_after": record["ECE_scaled"],
        "MCE_before": record["MCE"],
        "MCE_after": record["MCE_scaled"],
        "split": split,
        "pixels": fit.pixels,
        "labelled_pixels": labelled,
        "images": record["num_images"],
        "inference": settings.to_dict(),
        "precision": record["precision"],
        "checkpoint": _in_run(src["weights"], run),
        "checkpoint_sha256": sha256(src["weights"]),
        "validation": _in_run(out_dir, run),
        "git": git_info(),
        "fitted": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    atomic_write_text(run.temperature_file, json.dumps(stored, indent=2) + "\n")
    print(
        f"temperature T = {fit.temperature:.4f} ({fit.pixels} of {labelled} labelled {split} pixels): "
        f"NLL {fit.nll_before:.4f} -> {fit.nll_after:.4f}, ECE {100 * stored['ECE_before']:.2f} % -> "
        f"{100 * stored['ECE_after']:.2f} % -> {run.temperature_file}"
    )
    return record | {"temperature_record": stored}
