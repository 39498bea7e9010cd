"""mIoU of the measured model (``evaluate=true``) by validation.py's evaluation."""

from __future__ import annotations

import torch
from omegaconf import DictConfig


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
