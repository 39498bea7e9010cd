"""Execution backends and precisions for the timed forward, each behind a small registry.

``backend=`` picks how the model runs:

* ``eager``          the module as is (``model.eval()``),
* ``channels_last``  NHWC memory format for weights and input (oneDNN/cuDNN fast paths),
* ``compile``        ``torch.compile(model)`` (Inductor; compilation happens during the warm-up calls),
* ``onnxruntime``    export with ``torch.onnx.export`` and run an ONNX Runtime session (optional extra:
  ``pip install -r requirements-onnx.txt``; fp32 only).

``precision=`` picks the autocast dtype with Lightning's names (:mod:`utils.precision`): ``32-true`` (none),
``bf16-mixed``, ``16-mixed`` (``torch.autocast`` on the model's device; ``fp32``/``bf16``/``fp16`` are aliases).
A backend returns ``run(x: float[N,3,H,W]) -> float[N,K,h,w]`` logits (the model's ``"out"``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from utils.precision import autocast, canonical_precision

Runner = Callable[[torch.Tensor], torch.Tensor]

BACKENDS: dict[str, Callable[..., Runner]] = {}


def register_backend(name: str):
    """Decorator: register ``builder(model, example, precision, device) -> Runner`` under ``name``."""

    def deco(fn):
        BACKENDS[name] = fn
        return fn

    return deco


def _out(y) -> torch.Tensor:
    return y["out"] if isinstance(y, dict) else y


def _torch_runner(model: nn.Module, precision: str, device: torch.device, memory_format=None) -> Runner:
    @torch.no_grad()
    def run(x: torch.Tensor) -> torch.Tensor:
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        with autocast(precision, device):
            return _out(model(x))

    return run


@register_backend("eager")
def eager(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device) -> Runner:
    """The module as is."""
    return _torch_runner(model.eval(), precision, device)


@register_backend("channels_last")
def channels_last(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device) -> Runner:
    """Weights and input in ``torch.channels_last`` (NHWC)."""
    model = model.eval().to(memory_format=torch.channels_last)
    return _torch_runner(model, precision, device, memory_format=torch.channels_last)


@register_backend("compile")
def compiled(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device) -> Runner:
    """``torch.compile`` (default mode, Inductor); the first (warm-up) call compiles."""
    return _torch_runner(torch.compile(model.eval()), precision, device)


class _OutOnly(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return _out(self.model(x))


@register_backend("onnxruntime")
def onnxruntime(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device) -> Runner:
    """Export to ONNX (opset 17) and run with ONNX Runtime (CPU or CUDA execution provider).

    The timed call includes the tensor -> numpy -> tensor copies.

    Raises:
        ImportError: onnxruntime/onnx not installed (names ``requirements-onnx.txt``).
        ValueError: precision other than 32-true.
    """
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError(
            "backend=onnxruntime needs the optional extra: pip install -r requirements-onnx.txt (onnxruntime, onnx)"
        ) from e
    if canonical_precision(precision) != "32-true":
        raise ValueError(f"backend=onnxruntime supports precision=32-true only, got {precision!r}")
    path = Path(tempfile.mkdtemp(prefix="segbench_onnx_")) / "model.onnx"
    torch.onnx.export(
        _OutOnly(model.eval()),
        (example,),
        str(path),
        input_names=["x"],
        output_names=["out"],
        opset_version=17,
        dynamo=False,
    )
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), opts, providers=providers)

    def run(x: torch.Tensor) -> torch.Tensor:
        (y,) = session.run(["out"], {"x": x.detach().cpu().numpy()})
        return torch.from_numpy(y).to(device)

    return run


def build_runner(model: nn.Module, example: torch.Tensor, backend: str, precision: str, device: torch.device) -> Runner:
    """Runner for ``backend`` and ``precision``.

    Raises:
        ValueError: unknown backend or precision (valid names listed).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {sorted(BACKENDS)}")
    return BACKENDS[backend](model, example, canonical_precision(precision), device)
