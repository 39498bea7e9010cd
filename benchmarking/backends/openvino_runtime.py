"""OpenVINO: the ONNX export converted to OpenVINO IR (int8 quantised by :mod:`benchmarking.backends.int8`), the
CPU device's capabilities (BF16) and the ``openvino`` backend compiled for the CPU (:func:`openvino_runner`).

Compile settings, each checked on the compiled model (:func:`compiled_properties`, kept in the benchmark record as
``runtime_properties``): ``PERFORMANCE_HINT=LATENCY`` (one synchronous request, one stream: the benchmark's
batch-1 loop), ``INFERENCE_NUM_THREADS`` = the benchmark's threads, ``INFERENCE_PRECISION_HINT`` f32 for fp32 and
int8 (layers left unquantised) and bf16 for bf16. f32 is set explicitly because on CPUs with BF16 OpenVINO
otherwise runs float layers in bf16 (its default there). The timed input shape is compiled static (the IR reshaped
to it); other shapes (parity frames, evaluation, predict.py) go to the dynamic-shape IR compiled on first use.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from benchmarking.backends.int8 import quantize_int8
from benchmarking.backends.onnx_runtime import export_onnx
from benchmarking.backends.options import BackendOptions
from benchmarking.backends.padding import pad_to_multiple, padded_runner, size_multiple
from benchmarking.backends.registry import Runner, register_backend
from benchmarking.backends.signal_stack import kept_signal_stack
from core.extras import require
from core.precision import canonical_precision

#: beside an int8 IR quantised with accuracy control: its choices and the measured drop (read back on reuse)
ACCURACY_CONTROL_FILE = "accuracy_control.json"
OV_HINTS = {"32-true": "f32", "bf16-mixed": "bf16", "int8": "f32"}  # int8: layers left unquantised run in f32
#: properties of the compiled model kept in benchmark records (those the device supports)
OV_PROPERTIES = (
    "PERFORMANCE_HINT",
    "INFERENCE_PRECISION_HINT",
    "INFERENCE_NUM_THREADS",
    "NUM_STREAMS",
    "EXECUTION_MODE_HINT",
    "ENABLE_CPU_PINNING",
    "ENABLE_HYPER_THREADING",
    "SCHEDULING_CORE_TYPE",
)


@kept_signal_stack()
def openvino_capabilities() -> list[str]:
    """``OPTIMIZATION_CAPABILITIES`` of OpenVINO's CPU device (e.g. ``['FP32', 'INT8', 'BF16', ...]``)."""
    ov = require("openvino")
    return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


@kept_signal_stack()
def export_openvino(
    model: nn.Module,
    example: torch.Tensor,
    precision: str,
    options: BackendOptions | None = None,
    folder: str | Path | None = None,
) -> Path:
    """ONNX export (:func:`export_onnx`) converted to OpenVINO IR (``openvino.convert_model``), quantised to
    int8 with NNCF when ``precision == "int8"``; saved with fp32 weights (no fp16 compression) to
    ``<folder>/openvino_<fp32|int8>/model.xml`` (+ ``.bin``; int8 with accuracy control adds
    :data:`ACCURACY_CONTROL_FILE`). bf16 uses the fp32 IR (the precision is a compile-time hint). Returns the
    ``.xml`` path.

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
            ov_model,
            options.calibration(),
            size_multiple(model),
            options.quantize,
            options.float_first_last,
            options.accuracy_control,
            options.report,
        )
    xml = folder / f"openvino_{kind}" / "model.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(xml), compress_to_fp16=False)
    if kind == "int8" and options.accuracy_control is not None:
        (xml.parent / ACCURACY_CONTROL_FILE).write_text(json.dumps(options.report["accuracy_control"], indent=2) + "\n")
    return xml


@register_backend("openvino", precisions=("32-true", "bf16-mixed", "int8"), exported=True)
@kept_signal_stack()
def openvino(
    model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options: BackendOptions | None = None
) -> Runner:
    """OpenVINO CPU runtime on the exported IR (:func:`export_openvino`): ``PERFORMANCE_HINT=LATENCY``,
    ``INFERENCE_NUM_THREADS`` = ``options.threads`` or the torch thread count, ``INFERENCE_PRECISION_HINT`` f32
    (fp32, int8) or bf16, the shape of ``example`` (padded to the model's multiple) compiled static; the compiled
    model's properties go to ``options.report["runtime_properties"]`` (:func:`compiled_properties`).

    Raises:
        ImportError: openvino/nncf/onnx not installed (names ``requirements-openvino.txt``).
        ValueError: ``device`` is not the CPU; bf16 on a CPU without BF16 (its capabilities listed).
    """
    if device.type != "cpu":
        raise ValueError(f"backend=openvino runs on the CPU only, got device={device}")
    check_openvino_precision(precision)
    options = options or BackendOptions()
    multiple = size_multiple(model)
    static = tuple(pad_to_multiple(example, multiple).shape)
    write = lambda d: export_openvino(model, example, precision, options, folder=d)
    with options.exported("openvino", precision, example, write) as xml:
        done = Path(xml).parent / ACCURACY_CONTROL_FILE  # also when the export is reused
        if precision == "int8" and options.accuracy_control is not None and done.is_file():
            options.report["accuracy_control"] = json.loads(done.read_text())
        return openvino_runner(xml, precision, multiple, options.threads, static_shape=static, report=options.report)


def check_openvino_precision(precision: str) -> None:
    """Raise ValueError when ``precision`` is bf16 and OpenVINO's CPU device lacks BF16 (capabilities listed)."""
    if canonical_precision(precision, quantized=True) == "bf16-mixed" and "BF16" not in (
        caps := openvino_capabilities()
    ):
        raise ValueError(f"precision=bf16-mixed with backend=openvino needs a CPU with BF16; this one has {caps}")


def compiled_properties(compiled) -> dict:
    """What a compiled model reports about how it runs.

    Args:
        compiled: an ``openvino.CompiledModel``.

    Returns:
        :data:`OV_PROPERTIES` the device supports (precisions as OpenVINO's short names ``f32``/``bf16``, numbers and
        booleans as such, the rest as text) and ``input_shape`` (e.g. ``"[1,3,512,512]"``, ``?`` for a dynamic
        dimension).
    """
    supported = {str(p) for p in compiled.get_property("SUPPORTED_PROPERTIES")}
    out: dict = {}
    for name in OV_PROPERTIES:
        if name in supported:
            v = compiled.get_property(name)
            out[name] = v.get_type_name() if hasattr(v, "get_type_name") else v if isinstance(v, int) else str(v)
    out["input_shape"] = str(compiled.input(0).get_partial_shape())
    return out


def count_quantizers(ov_model) -> int:
    """FakeQuantize nodes of an ``openvino.Model``: 0 in a float IR; NNCF's accuracy control that returned layers to
    float leaves fewer than plain ``nncf.quantize`` with the same options (equal counts: it returned none, and the two
    IRs are the same model)."""
    return sum(op.get_type_name() == "FakeQuantize" for op in ov_model.get_ops())


@kept_signal_stack()
def openvino_runner(
    xml: str | Path,
    precision: str,
    multiple: int,
    threads: int | None = None,
    static_shape: tuple[int, ...] | None = None,
    report: dict | None = None,
) -> Runner:
    """Runner of an OpenVINO IR compiled for the CPU (``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS``
    = ``threads`` or the torch thread count, ``INFERENCE_PRECISION_HINT`` from :data:`OV_HINTS`); inputs are
    padded to ``multiple``.

    Args:
        xml: the IR (``model.xml``) with dynamic N, H, W.
        precision: ``32-true``, ``bf16-mixed`` or ``int8`` (aliases accepted).
        multiple: H and W are zero-padded to multiples of it.
        threads: ``INFERENCE_NUM_THREADS``.
        static_shape: a padded input shape ``(N, 3, H, W)`` compiled static (the IR reshaped to it); inputs of
            other shapes run on the dynamic IR, compiled on first use. None: the dynamic IR only.
        report: when given, ``report["runtime_properties"]`` receives :func:`compiled_properties` of the static
            model (else of the dynamic one) and ``report["quantizers"]`` the number of FakeQuantize nodes of the IR
            (:func:`count_quantizers`).

    Raises:
        ImportError: openvino not installed (names ``requirements-openvino.txt``).
    """
    ov = require("openvino")
    core = ov.Core()
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
        "INFERENCE_PRECISION_HINT": OV_HINTS[canonical_precision(precision, quantized=True)],
    }
    ir = core.read_model(str(xml))
    if report is not None:
        report["quantizers"] = count_quantizers(ir)
    compiled = {}
    if static_shape is not None:
        fixed = ir.clone()
        fixed.reshape({0: [int(d) for d in static_shape]})
        compiled[tuple(static_shape)] = core.compile_model(fixed, "CPU", config)
    else:
        compiled[None] = core.compile_model(ir, "CPU", config)
    if report is not None:
        report["runtime_properties"] = compiled_properties(next(iter(compiled.values())))
    requests = {key: c.create_infer_request() for key, c in compiled.items()}

    def infer(a):
        with kept_signal_stack(collect=False):
            request = requests.get(tuple(a.shape)) or requests.get(None)
            if request is None:
                request = requests[None] = core.compile_model(ir, "CPU", config).create_infer_request()
            return request.infer({0: a})[0].copy()

    return padded_runner(infer, multiple, torch.device("cpu"))
