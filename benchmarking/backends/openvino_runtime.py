"""OpenVINO: the ONNX export converted to OpenVINO IR (int8 quantised by :mod:`benchmarking.backends.int8`), the
CPU device's capabilities (BF16) and the ``openvino`` backend compiled for the CPU (:func:`openvino_runner`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from benchmarking.backends.int8 import quantize_int8
from benchmarking.backends.onnx_runtime import export_onnx
from benchmarking.backends.options import BackendOptions
from benchmarking.backends.padding import padded_runner, size_multiple
from benchmarking.backends.registry import Runner, register_backend, require
from core.precision import canonical_precision

OV_HINTS = {"32-true": "f32", "bf16-mixed": "bf16", "int8": "f32"}  # int8: layers left unquantised run in f32


def openvino_capabilities() -> list[str]:
    """``OPTIMIZATION_CAPABILITIES`` of OpenVINO's CPU device (e.g. ``['FP32', 'INT8', 'BF16', ...]``)."""
    ov = require("openvino")
    return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


def export_openvino(
    model: nn.Module,
    example: torch.Tensor,
    precision: str,
    options: BackendOptions | None = None,
    folder: str | Path | None = None,
) -> Path:
    """ONNX export (:func:`export_onnx`) converted to OpenVINO IR (``openvino.convert_model``), quantised to
    int8 with NNCF when ``precision == "int8"``; saved with fp32 weights (no fp16 compression) to
    ``<folder>/openvino_<fp32|int8>/model.xml`` (+ ``.bin``). bf16 uses the fp32 IR (the precision is a
    compile-time hint). Returns the ``.xml`` path.

    Args:
        model: segbench model.
        example: float32[N, 3, H, W] tracing input.
        precision: ``32-true``, ``bf16-mixed`` or ``int8`` (aliases accepted).
        options: calibration and NNCF options (int8).
        folder: where the files go (default ``options.folder``); a ``model.onnx`` already there is reused.

    Raises:
        ImportError: openvino (or nncf for int8, onnx) not installed (the requirements file named).
        ValueError: int8 without ``options.calibration``; no folder given.
    """
    ov = require("openvino")
    precision = canonical_precision(precision, quantized=True)
    options = options or BackendOptions()
    folder = folder if folder is not None else options.folder
    if folder is None:
        raise ValueError("export_openvino needs a folder (folder= or options.folder)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "model.onnx"
    if not onnx_path.is_file():
        export_onnx(model, example, onnx_path)
    ov_model = ov.convert_model(str(onnx_path))
    kind = "int8" if precision == "int8" else "fp32"
    if kind == "int8":
        if options.calibration is None:
            raise ValueError("precision=int8 needs calibration images (options.calibration)")
        ov_model = quantize_int8(
            ov_model, options.calibration(), size_multiple(model), options.quantize, options.float_first_last
        )
    xml = folder / f"openvino_{kind}" / "model.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(xml), compress_to_fp16=False)
    return xml


@register_backend("openvino", precisions=("32-true", "bf16-mixed", "int8"), exported=True)
def openvino(
    model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options: BackendOptions | None = None
) -> Runner:
    """OpenVINO CPU runtime on the exported IR (:func:`export_openvino`): ``PERFORMANCE_HINT=LATENCY``,
    ``INFERENCE_NUM_THREADS`` = the torch thread count, ``INFERENCE_PRECISION_HINT`` f32 (fp32, int8) or bf16.

    Raises:
        ImportError: openvino/nncf/onnx not installed (names ``requirements-openvino.txt``).
        ValueError: ``device`` is not the CPU; bf16 on a CPU without BF16 (its capabilities listed).
    """
    if device.type != "cpu":
        raise ValueError(f"backend=openvino runs on the CPU only, got device={device}")
    check_openvino_precision(precision)
    options = options or BackendOptions()
    write = lambda d: export_openvino(model, example, precision, options, folder=d)
    with options.exported("openvino", precision, example, write) as xml:
        return openvino_runner(xml, precision, size_multiple(model), options.threads)


def check_openvino_precision(precision: str) -> None:
    """Raise ValueError when ``precision`` is bf16 and OpenVINO's CPU device lacks BF16 (capabilities listed)."""
    if canonical_precision(precision, quantized=True) == "bf16-mixed" and "BF16" not in (
        caps := openvino_capabilities()
    ):
        raise ValueError(f"precision=bf16-mixed with backend=openvino needs a CPU with BF16; this one has {caps}")


def openvino_runner(xml: str | Path, precision: str, multiple: int, threads: int | None = None) -> Runner:
    """Runner of an OpenVINO IR compiled for the CPU (``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS``
    = ``threads`` or the torch thread count, ``INFERENCE_PRECISION_HINT`` from :data:`OV_HINTS`); inputs are
    padded to ``multiple``.

    Raises:
        ImportError: openvino not installed (names ``requirements-openvino.txt``).
    """
    ov = require("openvino")
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
        "INFERENCE_PRECISION_HINT": OV_HINTS[canonical_precision(precision, quantized=True)],
    }
    request = ov.Core().compile_model(str(xml), "CPU", config).create_infer_request()
    return padded_runner(lambda a: request.infer({0: a})[0].copy(), multiple, torch.device("cpu"))
