"""The backend registry: ``register_backend``, the precisions each backend declares, ``build_runner`` and the three torch backends (``eager``, ``channels_last``,
``compile``).

A backend is ``builder(model, example, precision, device, options) -> Runner`` registered under its name; the
exported ones (:data:`EXPORTED`) are in :mod:`benchmarking.backends.onnx_runtime` and
:mod:`benchmarking.backends.openvino_runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from core.precision import PRECISIONS, autocast, canonical_precision

if TYPE_CHECKING:
    from benchmarking.backends.options import BackendOptions

Runner = Callable[[torch.Tensor], torch.Tensor]

BACKENDS: dict[str, Callable[..., Runner]] = {}
#: precisions each backend accepts (``register_backend(precisions=...)``)
BACKEND_PRECISIONS: dict[str, tuple[str, ...]] = {}
#: backends that run an exported graph instead of the module (their records carry parity vs eager 32-true)
EXPORTED: set[str] = set()
TORCH_PRECISIONS = tuple(PRECISIONS)  # the autocast precisions of core.precision


def register_backend(name: str, precisions: tuple[str, ...] = TORCH_PRECISIONS, exported: bool = False):
    """Decorator: register ``builder(model, example, precision, device, options) -> Runner`` under ``name``,
    accepting ``precisions``; ``exported`` backends get parity checks in benchmark records."""

    def deco(fn):
        BACKENDS[name], BACKEND_PRECISIONS[name] = fn, tuple(precisions)
        if exported:
            EXPORTED.add(name)
        return fn

    return deco


def out_logits(y) -> torch.Tensor:
    """The ``"out"`` logits of a model's output (a dict), or the output itself (a tensor)."""
    return y["out"] if isinstance(y, dict) else y


def _torch_runner(model: nn.Module, precision: str, device: torch.device, memory_format=None) -> Runner:
    @torch.no_grad()
    def run(x: torch.Tensor) -> torch.Tensor:
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        with autocast(precision, device):
            return out_logits(model(x))

    return run


@register_backend("eager")
def eager(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options=None) -> Runner:
    """The module as is."""
    return _torch_runner(model.eval(), precision, device)


@register_backend("channels_last")
def channels_last(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options=None):
    """Weights and input in ``torch.channels_last`` (NHWC)."""
    model = model.eval().to(memory_format=torch.channels_last)
    return _torch_runner(model, precision, device, memory_format=torch.channels_last)


@register_backend("compile")
def compiled(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options=None) -> Runner:
    """``torch.compile`` (default mode, Inductor); the first (warm-up) call compiles."""
    return _torch_runner(torch.compile(model.eval()), precision, device)


def check_precision(backend: str, precision) -> str:
    """The canonical name of ``precision`` (:func:`core.precision.canonical_precision`; ``int8`` allowed) when
    ``backend`` declares it.

    Raises:
        ValueError: unknown backend or precision, or one the backend does not declare (valid choices named).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {sorted(BACKENDS)}")
    name = canonical_precision(precision, quantized=True)
    if name not in BACKEND_PRECISIONS[backend]:
        raise ValueError(f"backend={backend} supports precision {list(BACKEND_PRECISIONS[backend])}, got {precision!r}")
    return name


def build_runner(
    model: nn.Module,
    example: torch.Tensor,
    backend: str,
    precision: str,
    device: torch.device,
    options: BackendOptions | None = None,
) -> Runner:
    """Runner for ``backend`` and ``precision``.

    Raises:
        ValueError: unknown backend or precision, or a precision the backend does not support (valid names
            listed).
        ImportError: the backend's optional package is missing (the requirements file named).
    """
    precision = check_precision(backend, precision)
    return BACKENDS[backend](model, example, precision, device, options)
