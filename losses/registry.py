"""Loss registry: the command line names losses (``lossfunction=[wRMI,wCE]``), this maps names to builders.

A builder is called as ``builder(num_classes=K, ignore_index=255, class_weights=Tensor[K] | None, **params)``
and returns an ``nn.Module`` with ``forward(logits: float[N,K,H,W], target: int64[N,H,W]) -> scalar``.
Register a new loss with ``@register_loss("NAME")`` in a module imported by ``losses/__init__.py``; its
keyword options (beyond those three) are what ``loss_params.NAME`` may set, anything else is an error.
Subclass :class:`losses.common.SegLoss` to get shape checks, resizing and float32 under autocast.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

LOSSES: dict[str, Callable[..., nn.Module]] = {}
ALIASES: dict[str, str] = {}  # alternative spelling -> registered name (e.g. DC_CE -> DC+CE)


def register_loss(name: str, aliases: tuple[str, ...] = ()):
    """Decorator registering a loss builder (class or function) under ``name`` (and optional ``aliases``).

    Aliases exist for names that the Hydra command line cannot use as keys: ``loss_params.DC+CE.smooth=0``
    is not valid override syntax, ``+loss_params.DC_CE.smooth=0`` is.

    Raises:
        KeyError: if ``name`` or an alias is already registered.
    """

    def deco(builder):
        for n in (name, *aliases):
            if n in LOSSES or n in ALIASES:
                raise KeyError(f"loss {n!r} is already registered")
        LOSSES[name] = builder
        ALIASES.update({a: name for a in aliases})
        return builder

    return deco


def canonical_name(name: str) -> str:
    """The registered name for ``name`` or one of its aliases.

    Raises:
        KeyError: unknown name (the message lists the registered ones and the aliases).
    """
    if name in LOSSES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise KeyError(f"unknown lossfunction {name!r}; registered: {sorted(LOSSES)} (aliases: {ALIASES})")


def build_loss(
    name: str,
    *,
    num_classes: int,
    ignore_index: int = 255,
    class_weights: torch.Tensor | list[float] | None = None,
    **params,
) -> nn.Module:
    """Build the loss registered as ``name`` (or an alias); ``params`` are the loss's options.

    Raises:
        KeyError: unknown name (the message lists the registered ones).
        TypeError: an option the loss does not have (the message names the loss and its options).
        ValueError: a weighted loss without class weights, or weights of the wrong length.
    """
    builder = LOSSES[canonical_name(name)]
    if class_weights is not None:
        class_weights = torch.as_tensor(list(class_weights), dtype=torch.float32)
        if class_weights.numel() != num_classes:
            raise ValueError(f"class_weights has {class_weights.numel()} entries, dataset has {num_classes} classes")
    options = _options(builder)
    unknown = sorted(set(params) - set(options)) if options is not None else []
    if unknown:
        raise TypeError(f"loss {name!r} has no option(s) {unknown}; its options (loss_params.{name}): {options}")
    return builder(num_classes=num_classes, ignore_index=ignore_index, class_weights=class_weights, **params)


def _options(builder) -> list[str] | None:
    """Keyword options of a builder beyond num_classes/ignore_index/class_weights (None: accepts any).

    A builder whose signature carries options it does not use (a shared base class) names its own in an
    ``OPTIONS`` tuple.
    """
    if hasattr(builder, "OPTIONS"):
        return list(builder.OPTIONS)
    sig = inspect.signature(builder)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return [n for n in sig.parameters if n not in ("num_classes", "ignore_index", "class_weights")]


def loss_params_for(name: str, params: dict | None) -> dict:
    """Options for loss ``name`` from the top-level ``loss_params`` mapping, looked up under the name and
    its aliases (``loss_params.DC_CE`` serves ``DC+CE``); later spellings override earlier ones."""
    params = dict(params or {})
    canon = canonical_name(name)
    out: dict = {}
    for key in sorted(params, key=lambda k: (k == name, k)):
        if (key in LOSSES or key in ALIASES) and canonical_name(key) == canon:
            out.update(dict(params[key] or {}))
    return out


class MultiOutputLoss(nn.Module):
    """Weighted sum of one loss per model output (the ``lossfunction`` / ``lossweight`` contract).

    ``forward(outputs: dict[str, float[N,K,h,w]], target: int64[N,H,W])`` resizes each output to the
    label size (bilinear, ``align_corners=False``) when it differs, applies its loss and returns
    ``(total, {output_name: loss})`` with ``total = sum_i lossweight[i] * loss_i(output_i, target)``.

    ``params`` is the top-level ``loss_params`` mapping ``{loss name or alias: {option: value}}``.

    Raises:
        ValueError: ``lossfunction`` / ``lossweight`` / ``output_names`` lengths differ (all are named).
        KeyError: an unknown loss name in ``lossfunction`` or in ``params``.
    """

    def __init__(
        self,
        output_names,
        lossfunction,
        lossweight,
        *,
        num_classes: int,
        ignore_index: int = 255,
        class_weights=None,
        params: dict | None = None,
    ):
        super().__init__()
        output_names = list(output_names)
        lossfunction = [lossfunction] if isinstance(lossfunction, str) else list(lossfunction)
        lossweight = [float(w) for w in ([lossweight] if isinstance(lossweight, (int, float)) else lossweight)]
        if len(lossfunction) != len(output_names):
            raise ValueError(
                f"lossfunction has {len(lossfunction)} entries {lossfunction} but the model has "
                f"{len(output_names)} outputs {output_names}; give one loss per output"
            )
        if len(lossweight) != len(output_names):
            raise ValueError(
                f"lossweight has {len(lossweight)} entries {lossweight} but the model has "
                f"{len(output_names)} outputs {output_names}; give one weight per output"
            )
        params = dict(params or {})
        for key in params:
            canonical_name(key)  # a misspelt loss_params entry is an error, not silently unused
        self.output_names = output_names
        self.names = lossfunction
        self.weights = lossweight
        self.losses = nn.ModuleList(
            build_loss(
                n,
                num_classes=num_classes,
                ignore_index=ignore_index,
                class_weights=class_weights,
                **loss_params_for(n, params),
            )
            for n in lossfunction
        )

    def forward(self, outputs: dict[str, torch.Tensor], target: torch.Tensor):
        total = 0.0
        parts: dict[str, torch.Tensor] = {}
        for name, w, loss in zip(self.output_names, self.weights, self.losses):
            if name not in outputs:
                raise KeyError(
                    f"the model returned outputs {list(outputs)}, the loss expects {name!r} "
                    f"(output_names {self.output_names})"
                )
            logits = outputs[name]
            if logits.dtype in (torch.float16, torch.bfloat16):
                logits = logits.float()  # resize and loss in float32 (autocast outputs are 16 bit)
            logits = resize_to(logits, target.shape[-2:])
            value = loss(logits, target)
            parts[name] = value.detach()
            total = total + w * value
        return total, parts


def resize_to(logits: torch.Tensor, size) -> torch.Tensor:
    """Bilinearly resize float[N,K,h,w] logits to ``size`` = (H, W) (``align_corners=False``); no-op if equal."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return nn.functional.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
