"""int8 with accuracy control: ``nncf.quantize_with_accuracy_control`` instead of ``nncf.quantize`` for the OpenVINO
int8 backend, chosen by ``calibration.accuracy_control`` of ``config/benchmark.yaml`` (:class:`AccuracyControl`).

NNCF quantises as ``nncf.quantize`` does, then measures mIoU (in points, 0..100, by :func:`validation_fn`: the
project's confusion-matrix metrics on held-out frames) of the float model and of the int8 one, each compiled with
``INFERENCE_PRECISION_HINT=f32``; while the int8 mIoU is more than ``max_drop`` points below (an absolute drop,
``nncf.DropType.ABSOLUTE``), it returns the quantised layers that cost the most to float, one group per iteration,
at most ``max_iters`` times. The held-out frames are ``images`` frames of ``calibration.split`` that are not
calibration frames (:func:`benchmarking.parity.held_out_samples`), never the evaluation split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from benchmarking.backends.padding import pad_to_multiple
from benchmarking.backends.signal_stack import kept_signal_stack
from core.schema import AccuracyControlConfig, checked
from metrics.aggregations import image_mious, per_image_confusion
from metrics.confusion import metrics_from_confusion

KEY = "calibration.accuracy_control"


@dataclass
class AccuracyControl:
    """Options of ``nncf.quantize_with_accuracy_control`` and the frames it validates on.

    Attributes:
        max_drop: largest accepted mIoU drop in points (0..100), float minus int8, on the held-out frames.
        images: held-out frames asked for.
        max_iters: at most this many groups of layers are returned to float (None: until the drop is met).
        split: the split the held-out frames come from (``calibration.split``).
        samples: returns the held-out frames, each (float32[1, 3, H, W] normalised, int64[1, H, W] trainIds with
            ``ignore_index``).
        num_classes: K of the model's logits.
        ignore_index: label value that is not scored.
    """

    max_drop: float
    images: int
    max_iters: int | None = None
    split: str = "train"
    samples: Callable[[], list[tuple[torch.Tensor, torch.Tensor]]] | None = None
    num_classes: int = 0
    ignore_index: int = 255

    @classmethod
    def from_options(cls, options: Mapping | AccuracyControlConfig | None, **kwargs) -> AccuracyControl | None:
        """The ``calibration.accuracy_control`` options (a complete mapping or node, or the checked
        :class:`core.schema.AccuracyControlConfig`) as an :class:`AccuracyControl`, or None when ``enabled`` is
        false. ``kwargs``: ``split``, ``samples``, ``num_classes``, ``ignore_index``.

        Raises:
            ValueError: an unknown or missing key, a value of the wrong type or out of its range, in one line naming
                the key (the values are checked also when disabled).
        """
        if not isinstance(options, AccuracyControlConfig):
            options = checked(options, AccuracyControlConfig, KEY)
        if not options.enabled:
            return None
        return cls(options.max_drop, options.images, options.max_iters, **kwargs)

    def note(self) -> str:
        """The choices in words, for records and export manifests."""
        iters = "" if self.max_iters is None else f", max_iters {self.max_iters}"
        return (
            f"nncf.quantize_with_accuracy_control: max_drop {self.max_drop:g} mIoU points on {self.images} "
            f"held-out {self.split} images{iters}"
        )

    def choices(self) -> dict:
        """The options as a plain dict (``enabled``, ``max_drop``, ``images``, ``max_iters``, ``split``)."""
        return {
            "enabled": True,
            "max_drop": self.max_drop,
            "images": self.images,
            "max_iters": self.max_iters,
            "split": self.split,
        }


def validation_fn(num_classes: int, ignore_index: int = 255) -> Callable:
    """The validation function NNCF calls: ``validate(compiled_model, items) -> (mIoU points, [per-item points])``.

    Args:
        num_classes: K of the logits.
        ignore_index: label value that is not scored.

    Returns:
        ``validate``: ``compiled_model`` is an ``openvino.CompiledModel`` (logits output first). Each item is ``(image float32[1, 3, H', W'] padded, mask int64[1, H, W])`` (numpy); the logits are cropped to
        the mask's H x W (the padding is at the bottom/right; resized bilinearly where the model outputs another
        size), argmaxed and scored with one confusion matrix over all items
        (:func:`metrics.confusion.metrics_from_confusion`, mIoU = nanmean of per-class IoU, times 100); the per-item
        values are per-image mIoUs in points (0 where an image has no labelled pixel), which NNCF uses to rank
        layers.
    """

    def validate(compiled, items) -> tuple[float, list[float]]:
        total = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        per_item = []
        for image, mask in items:
            logits = torch.from_numpy(np.asarray(compiled(image)[0])).float()
            target = torch.from_numpy(np.asarray(mask)).long()
            logits = logits[..., : target.shape[-2], : target.shape[-1]]  # the padding is at the bottom/right
            if tuple(logits.shape[-2:]) != tuple(target.shape[-2:]):
                logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
            conf = per_image_confusion(logits.argmax(1), target, num_classes, ignore_index)
            total += conf.sum(0)
            per_item.append(float(np.nan_to_num(100.0 * float(image_mious(conf)[0]))))
        miou = metrics_from_confusion(total)["mIoU"]
        return float(np.nan_to_num(100.0 * miou)), per_item

    return validate


def quantize_with_accuracy_control(nncf, ov_model, calibration: list, multiple: int, kwargs: dict, ac: AccuracyControl):
    """``nncf.quantize_with_accuracy_control`` of ``ov_model`` and the drop it ends with.

    Args:
        nncf: the imported ``nncf`` module.
        ov_model: ``openvino.Model`` (fp32).
        calibration: calibration inputs, numpy float32[1, 3, H', W'] padded to ``multiple``.
        multiple: H and W of the held-out frames are zero-padded to multiples of it.
        kwargs: the other ``nncf.quantize`` options (preset, ignored_scope, ...).
        ac: the options and the held-out frames.

    Returns:
        (the quantised ``openvino.Model``, :meth:`AccuracyControl.choices` plus ``validation_images`` (the frames
        used), ``fp32_mIoU``, ``int8_mIoU`` and ``drop``: mIoU and drop in points on the held-out frames, fp32
        minus int8, both compiled with ``INFERENCE_PRECISION_HINT=f32``).

    Raises:
        ValueError: no held-out frame.
    """
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    samples = ac.samples() if ac.samples is not None else []
    if not samples:
        raise ValueError(f"{KEY}: no held-out image to validate on")
    items = [(pad_to_multiple(x.detach().float().cpu(), multiple).numpy(), m.cpu().numpy()) for x, m in samples]
    validate = validation_fn(ac.num_classes, ac.ignore_index)
    core, f32 = ov.Core(), {"INFERENCE_PRECISION_HINT": "f32"}
    fp32 = validate(core.compile_model(ov_model, "CPU", f32), items)[0]
    restorer = AdvancedAccuracyRestorerParameters(
        **({} if ac.max_iters is None else {"max_num_iterations": ac.max_iters})
    )
    with kept_signal_stack():  # NNCF leaves this thread an unmapped alternate signal stack otherwise
        quantized = nncf.quantize_with_accuracy_control(
            ov_model,
            nncf.Dataset(calibration),
            nncf.Dataset(items, lambda item: item[0]),
            validate,
            max_drop=ac.max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(calibration),
            advanced_accuracy_restorer_parameters=restorer,
            **kwargs,
        )
    int8 = validate(core.compile_model(quantized, "CPU", f32), items)[0]
    measured = {"validation_images": len(items), "fp32_mIoU": fp32, "int8_mIoU": int8, "drop": fp32 - int8}
    return quantized, ac.choices() | measured
