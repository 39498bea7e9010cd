"""Execution backends and precisions for the timed forward, each behind a small registry.

``backend=`` picks how the model runs:

* ``eager``          the module as is (``model.eval()``),
* ``channels_last``  NHWC memory format for weights and input (oneDNN/cuDNN fast paths),
* ``compile``        ``torch.compile(model)`` (Inductor; compilation happens during the warm-up calls),
* ``onnxruntime``    ONNX export (:func:`export_onnx`) run by an ONNX Runtime session (``32-true``),
* ``openvino``       the same ONNX graph converted to OpenVINO IR and compiled for the CPU: ``32-true``,
  ``bf16-mixed``
  (``INFERENCE_PRECISION_HINT=bf16``, only on CPUs that list ``BF16`` in ``OPTIMIZATION_CAPABILITIES``) or
  ``int8`` (NNCF post-training quantisation on calibration images, :func:`quantize_int8`).

The last two are *exported* backends (:data:`EXPORTED`): their optional packages import lazily and a missing
one fails in one line naming the requirements file (:func:`core.extras.require`). Where their files go
(:meth:`BackendOptions.exported`): an explicit ``folder``; for a trained run (``cfg.loaded_from.run_dir``) its
``<run>/export/<backend>_<precision>_<WxH>/`` (:meth:`core.run_folder.RunFolder.backend_export_dir`), written
under a temporary name, renamed when complete and reused while its ``manifest.json`` (weights file, model config,
backend, precision, traced size, calibration, versions) matches; otherwise (random weights, a weights file outside
a run folder) a temporary folder removed as soon as the runtime has loaded the files.

Exported graphs take any N, H, W that is a multiple of the model's ``stride`` attribute (smp/ESPNet pad to it
inside ``forward``; the runner pads and crops outside the graph the same way, with zeros after normalisation), so
one file serves every image size.

``precision=`` uses Lightning's names (:mod:`core.precision`): for the torch backends ``32-true`` (no
autocast), ``bf16-mixed``, ``16-mixed`` (``torch.autocast`` on the model's device; ``fp32``/``bf16``/``fp16``
are aliases); the quantised ``int8`` (:data:`core.precision.QUANTIZED`) exists for ``openvino`` only. Each
backend declares its precisions (:data:`BACKEND_PRECISIONS`). A backend returns
``run(x: float32[N,3,H,W]) -> float[N,K,h,w]`` logits (the model's ``"out"``).

One module per job; every name below is importable from ``benchmarking.backends``, and importing the package
registers every backend:

* :mod:`benchmarking.backends.registry`          ``register_backend``, ``check_precision``, ``build_runner``;
  the torch backends ``eager``, ``channels_last``, ``compile``
* :mod:`benchmarking.backends.options`           :class:`BackendOptions` and ``BackendOptions.from_config``
* :mod:`benchmarking.backends.cache`             a run's export folders and their manifests
* :mod:`benchmarking.backends.padding`           padding to the model's ``stride`` around an exported graph
* :mod:`benchmarking.backends.onnx_runtime`      ONNX export and the ``onnxruntime`` backend
* :mod:`benchmarking.backends.openvino_runtime`  OpenVINO IR, the CPU's capabilities and the ``openvino`` backend
* :mod:`benchmarking.backends.int8`              NNCF int8 quantisation and its ``calibration.nncf`` options
* :mod:`benchmarking.backends.accuracy_control`  int8 by ``nncf.quantize_with_accuracy_control``
  (``calibration.accuracy_control``: mIoU drop bound on held-out frames)
* :mod:`benchmarking.backends.module`            a backend as a segbench model (predict.py ``backend=``)
"""

from benchmarking.backends.accuracy_control import (
    AccuracyControl,
    quantize_with_accuracy_control,
    validation_fn,
)
from benchmarking.backends.cache import EXPORT_FORMAT, MANIFEST, ONNX_OPSET, cached_export
from benchmarking.backends.int8 import NNCF_OPTIONS, first_and_last_convolution, nncf_options, quantize_int8
from benchmarking.backends.module import BackendModule, backend_module
from benchmarking.backends.onnx_runtime import export_onnx, onnxruntime, onnxruntime_runner
from benchmarking.backends.openvino_runtime import (
    ACCURACY_CONTROL_FILE,
    OV_HINTS,
    OV_PROPERTIES,
    check_openvino_precision,
    compiled_properties,
    count_quantizers,
    export_openvino,
    openvino,
    openvino_capabilities,
    openvino_runner,
)
from benchmarking.backends.options import BackendOptions
from benchmarking.backends.padding import pad_to_multiple, padded_runner, size_multiple
from benchmarking.backends.registry import (
    BACKEND_PRECISIONS,
    BACKENDS,
    EXPORTED,
    TORCH_PRECISIONS,
    Runner,
    build_runner,
    channels_last,
    check_precision,
    compiled,
    eager,
    register_backend,
)

__all__ = [
    "ACCURACY_CONTROL_FILE",
    "BACKENDS",
    "BACKEND_PRECISIONS",
    "EXPORTED",
    "EXPORT_FORMAT",
    "MANIFEST",
    "NNCF_OPTIONS",
    "ONNX_OPSET",
    "OV_HINTS",
    "OV_PROPERTIES",
    "TORCH_PRECISIONS",
    "AccuracyControl",
    "BackendModule",
    "BackendOptions",
    "Runner",
    "backend_module",
    "build_runner",
    "cached_export",
    "channels_last",
    "check_openvino_precision",
    "check_precision",
    "compiled",
    "compiled_properties",
    "count_quantizers",
    "eager",
    "export_onnx",
    "export_openvino",
    "first_and_last_convolution",
    "nncf_options",
    "onnxruntime",
    "onnxruntime_runner",
    "openvino",
    "openvino_capabilities",
    "openvino_runner",
    "pad_to_multiple",
    "padded_runner",
    "quantize_int8",
    "quantize_with_accuracy_control",
    "register_backend",
    "size_multiple",
    "validation_fn",
]
