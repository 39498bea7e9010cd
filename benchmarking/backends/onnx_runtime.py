"""ONNX: the export of a model's ``"out"`` logits (:func:`export_onnx`, dynamic N, H, W) and the ``onnxruntime``
backend that runs it in an ONNX Runtime session (:func:`onnxruntime_runner`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from benchmarking.backends.cache import ONNX_OPSET
from benchmarking.backends.options import BackendOptions
from benchmarking.backends.padding import pad_to_multiple, padded_runner, size_multiple
from benchmarking.backends.registry import Runner, out_logits, register_backend
from core.extras import require


class _OutOnly(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return out_logits(self.model(x))


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model``'s ``"out"`` logits to ONNX (opset 17, input ``x``, output ``out``, dynamic N, H, W).

    The TorchScript exporter (``torch.onnx.export(dynamo=False)``) is used: on torch 2.14 it exports smp
    models and HRNetV2 with symbolic H, W; the dynamo exporter needs the extra ``onnxscript`` package.
    The example is padded to :func:`size_multiple`, so the traced graph holds no padding; inputs must be
    padded the same way (:func:`pad_to_multiple`). The model is left in eval mode.

    Args:
        model: segbench model (its ``forward`` returns a dict with ``"out"`` or a tensor).
        example: float32[N, 3, H, W] input used for tracing (values irrelevant).
        path: the ``.onnx`` file to write (parent created).

    Raises:
        ImportError: ``onnx`` is not installed (names ``requirements-onnx.txt``).
    """
    require("onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _OutOnly(model).eval()  # export restores the wrapper's mode on exit: eval keeps the model in eval
    dims = {0: "N", 2: "H", 3: "W"}
    x = pad_to_multiple(example.detach().float().cpu(), size_multiple(model))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape arithmetic traced on aligned sizes
        torch.onnx.export(
            wrapper.cpu(),
            (x,),
            str(path),
            input_names=["x"],
            output_names=["out"],
            dynamic_axes={"x": dims, "out": dims},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return path


@register_backend("onnxruntime", precisions=("32-true",), exported=True)
def onnxruntime(
    model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options: BackendOptions | None = None
) -> Runner:
    """Export to ONNX (:func:`export_onnx`) and run with ONNX Runtime (CPU or CUDA execution provider).

    The timed call includes the tensor -> numpy -> tensor copies and the padding to ``stride``.

    Raises:
        ImportError: onnxruntime/onnx not installed (names ``requirements-onnx.txt``).
    """
    options = options or BackendOptions()
    with options.exported(
        "onnxruntime", precision, example, lambda d: export_onnx(model, example, d / "model.onnx")
    ) as path:
        return onnxruntime_runner(path, size_multiple(model), device, options.threads)


def onnxruntime_runner(path: str | Path, multiple: int, device: torch.device, threads: int | None = None) -> Runner:
    """Runner of an exported ``.onnx`` file (:func:`export_onnx`) in an ONNX Runtime session with ``threads``
    intra-op threads (default ``torch.get_num_threads()``); inputs are padded to ``multiple``.

    Raises:
        ImportError: onnxruntime not installed (names ``requirements-onnx.txt``).
    """
    ort = require("onnxruntime")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    session = ort.InferenceSession(str(path), opts, providers=providers)
    return padded_runner(lambda a: session.run(["out"], {"x": a})[0], multiple, device)
