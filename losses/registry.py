"""Loss registry: the command line names losses (``lossfunction=[wRMI,wCE]``), this maps names to builders.

A builder is called as ``builder(num_classes=K, ignore_index=255, class_weights=Tensor[K] | None, **params)``
and returns an ``nn.Module`` with ``forward(logits: float[N,K,H,W], target: int64[N,H,W]) -> scalar``.
Register a new loss with ``@register_loss("NAME")`` in a module imported by ``losses/__init__.py``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

LOSSES: dict[str, Callable[..., nn.Module]] = {}


def register_loss(name: str):
    """Decorator registering a loss builder (class or function) under ``name``.

    Raises:
        KeyError: if ``name`` is already registered.
    """

    def deco(builder):
        if name in LOSSES:
            raise KeyError(f"loss {name!r} is already registered")
        LOSSES[name] = builder
        return builder

    return deco


def build_loss(name: str, *, num_classes: int, ignore_index: int = 255,
               class_weights: torch.Tensor | list[float] | None = None, **params) -> nn.Module:
    """Build the loss registered as ``name``.

    Raises:
        KeyError: unknown name (the message lists the registered ones).
        ValueError: a weighted loss without class weights, or weights of the wrong length.
    """
    if name not in LOSSES:
        raise KeyError(f"unknown lossfunction {name!r}; registered: {sorted(LOSSES)}")
    if class_weights is not None:
        class_weights = torch.as_tensor(list(class_weights), dtype=torch.float32)
        if class_weights.numel() != num_classes:
            raise ValueError(f"class_weights has {class_weights.numel()} entries, dataset has {num_classes} classes")
    return LOSSES[name](num_classes=num_classes, ignore_index=ignore_index, class_weights=class_weights, **params)


class MultiOutputLoss(nn.Module):
    """Weighted sum of one loss per model output (the ``lossfunction`` / ``lossweight`` contract).

    ``forward(outputs: dict[str, float[N,K,h,w]], target: int64[N,H,W])`` resizes each output to the
    label size (bilinear, ``align_corners=False``) when it differs, applies its loss and returns
    ``(total, {output_name: loss})`` with ``total = sum_i lossweight[i] * loss_i(output_i, target)``.

    Raises:
        ValueError: ``lossfunction`` / ``lossweight`` / ``output_names`` lengths differ (all are named).
    """

    def __init__(self, output_names, lossfunction, lossweight, *, num_classes: int, ignore_index: int = 255,
                 class_weights=None, params: dict | None = None):
        super().__init__()
        output_names = list(output_names)
        lossfunction = [lossfunction] if isinstance(lossfunction, str) else list(lossfunction)
        lossweight = [float(w) for w in ([lossweight] if isinstance(lossweight, (int, float)) else lossweight)]
        if len(lossfunction) != len(output_names):
            raise ValueError(
                f"lossfunction has {len(lossfunction)} entries {lossfunction} but the model has "
                f"{len(output_names)} outputs {output_names}; give one loss per output")
        if len(lossweight) != len(output_names):
            raise ValueError(
                f"lossweight has {len(lossweight)} entries {lossweight} but the model has "
                f"{len(output_names)} outputs {output_names}; give one weight per output")
        params = dict(params or {})
        self.output_names = output_names
        self.names = lossfunction
        self.weights = lossweight
        self.losses = nn.ModuleList(
            build_loss(n, num_classes=num_classes, ignore_index=ignore_index, class_weights=class_weights,
                       **dict(params.get(n, {}) or {}))
            for n in lossfunction)

    def forward(self, outputs: dict[str, torch.Tensor], target: torch.Tensor):
        total = 0.0
        parts: dict[str, torch.Tensor] = {}
        for name, w, loss in zip(self.output_names, self.weights, self.losses):
            logits = resize_to(outputs[name], target.shape[-2:])
            value = loss(logits, target)
            parts[name] = value.detach()
            total = total + w * value
        return total, parts


def resize_to(logits: torch.Tensor, size) -> torch.Tensor:
    """Bilinearly resize float[N,K,h,w] logits to ``size`` = (H, W) (``align_corners=False``); no-op if equal."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return nn.functional.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
