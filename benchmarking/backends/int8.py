"""int8 by NNCF post-training quantisation of an OpenVINO model (:func:`quantize_int8`): the ``calibration.nncf``
options of ``config/benchmark.yaml`` (:func:`nncf_options`), on request the first and last convolution kept in
float (:func:`first_and_last_convolution`), and with ``calibration.accuracy_control`` NNCF's accuracy control
(:mod:`benchmarking.backends.accuracy_control`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch

from benchmarking.backends.accuracy_control import AccuracyControl, quantize_with_accuracy_control
from benchmarking.backends.padding import pad_to_multiple
from benchmarking.backends.signal_stack import kept_signal_stack
from core.extras import require

#: ``calibration.nncf`` keys -> how the config value becomes the ``nncf.quantize`` argument (None: as is)
NNCF_OPTIONS: dict[str, Callable | None] = {
    "preset": lambda nncf, v: nncf.QuantizationPreset(str(v).lower()),  # performance | mixed
    "target_device": lambda nncf, v: nncf.TargetDevice[str(v).upper()],  # ANY | CPU | CPU_SPR | GPU | NPU
    "model_type": lambda nncf, v: nncf.ModelType(str(v).lower()),  # transformer
    "ignored_scope": lambda nncf, v: nncf.IgnoredScope(**dict(v)),  # {names, patterns, types}: kept in float
    "fast_bias_correction": None,  # false: the full bias correction (slower, often closer to fp32)
}


def nncf_options(options: Mapping, nncf=None) -> dict:
    """``calibration.nncf`` (plain values) as ``nncf.quantize`` keyword arguments (enums, ``IgnoredScope``);
    ``nncf`` None only validates the keys.

    Raises:
        ValueError: an unknown key (the valid ones listed).
    """
    bad = sorted(set(options) - set(NNCF_OPTIONS))
    if bad:
        raise ValueError(f"calibration.nncf: unknown option(s) {bad}; valid: {sorted(NNCF_OPTIONS)}")
    if nncf is None:
        return dict(options)
    return {k: (v if NNCF_OPTIONS[k] is None else NNCF_OPTIONS[k](nncf, v)) for k, v in options.items()}


def first_and_last_convolution(ov_model) -> list[str]:
    """Friendly names of the first and the last (Group)Convolution of an ``openvino.Model`` in topological order:
    the stem that sees the image and the classifier that writes the logits."""
    convs = [o.get_friendly_name() for o in ov_model.get_ordered_ops() if o.get_type_name().endswith("Convolution")]
    return sorted({convs[0], convs[-1]}) if convs else []


@kept_signal_stack()
def quantize_int8(
    ov_model,
    images: Iterable[torch.Tensor],
    multiple: int = 1,
    options: Mapping | None = None,
    float_first_last: bool = False,
    accuracy_control: AccuracyControl | None = None,
    report: dict | None = None,
):
    """NNCF post-training quantisation (``nncf.quantize``, its default preset unless ``options`` say) of an
    OpenVINO model.

    ``float_first_last`` keeps the first and last convolution (:func:`first_and_last_convolution`) in float, added
    to any ``ignored_scope``: the usual mixed-precision rule for CNNs (DoReFa-Net, Zhou et al. 2016, and XNOR-Net,
    Rastegari et al. 2016, leave the first and last layer unquantised), as the stem sees the image's full range and
    the classifier decides each label.

    Args:
        ov_model: ``openvino.Model`` (fp32).
        images: calibration images, each float32[1, 3, H, W] normalised as the model's input; all are used
            (``subset_size`` = their number); padded to ``multiple``.
        options: ``calibration.nncf`` (:data:`NNCF_OPTIONS`), e.g. ``{"preset": "mixed",
            "ignored_scope": {"types": ["Softmax"]}}``.
        float_first_last: keep the first and last (Group)Convolution in float.
        accuracy_control: quantise with ``nncf.quantize_with_accuracy_control`` on its held-out frames instead
            (:func:`benchmarking.backends.accuracy_control.quantize_with_accuracy_control`); None: ``nncf.quantize``.
        report: with accuracy control, ``report["accuracy_control"]`` receives its choices and the measured drop.

    Returns:
        the quantised ``openvino.Model`` (int8 weights and activations where NNCF places quantisers).

    Raises:
        ImportError: nncf is not installed (names ``requirements-openvino.txt``).
        ValueError: no calibration image (or no held-out image); an unknown option.
    """
    nncf = require("nncf")
    kwargs = nncf_options(options or {}, nncf)
    if float_first_last:
        scope = kwargs.get("ignored_scope") or nncf.IgnoredScope()
        kwargs["ignored_scope"] = nncf.IgnoredScope(
            names=[*scope.names, *first_and_last_convolution(ov_model)],
            patterns=list(scope.patterns),
            types=list(scope.types),
            subgraphs=list(scope.subgraphs),
            validate=scope.validate,
        )
    data = [pad_to_multiple(x.detach().float().cpu(), multiple).numpy() for x in images]
    if not data:
        raise ValueError("precision=int8: no calibration image (calibration.images must be >= 1)")
    if accuracy_control is not None:
        quantized, result = quantize_with_accuracy_control(nncf, ov_model, data, multiple, kwargs, accuracy_control)
        if report is not None:
            report["accuracy_control"] = result
        return quantized
    return nncf.quantize(ov_model, nncf.Dataset(data), subset_size=len(data), **kwargs)
