"""Shared plumbing of every segbench loss: input checks, resizing, full-precision computation.

:class:`SegLoss` is the base class of the losses in this package. Its ``forward(logits, target)``

1. checks the shapes (logits float[N, K, h, w] with K = ``num_classes``, target int[N, H, W]),
2. leaves autocast and casts half/bfloat16 logits to float32 (float64 stays float64, for gradcheck),
3. resizes logits smaller (or larger) than the label to (H, W) (bilinear, ``align_corners=False``, as
   :func:`losses.registry.resize_to`),
4. calls :meth:`SegLoss.compute` with ``target`` as int64; the caller's tensor is never written to.

Subclasses implement ``compute(logits: float32|float64[N, K, H, W], target: int64[N, H, W]) -> scalar``.
"""

from __future__ import annotations

import torch
from torch import nn

from losses.registry import resize_to


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for half/bfloat16/float32 inputs, float64 for float64 (losses never run in 16 bit)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


class SegLoss(nn.Module):
    """Base class: ``forward(logits float[N,K,h,w], target int64[N,H,W]) -> scalar`` (float32; float64 for
    float64 logits).

    Args:
        num_classes: K, the number of logit channels.
        ignore_index: label value of pixels that carry no label (255).
        class_weights: optional float32[K], stored as a non-persistent buffer ``weight`` (moves with
            ``.to(device)``; not written into checkpoints, the dataset config is its source).

    Raises (from ``forward``):
        ValueError: logits not 4-D, K != num_classes, target not 3-D, batch sizes differ, or a label that
            is neither in 0..K-1 nor ``ignore_index`` (unless ``out_of_range_labels_ignored``: RMI treats
            every label >= K as ignored, as its reference does).
    """

    out_of_range_labels_ignored: bool = False

    def __init__(self, num_classes: int, ignore_index: int = 255, class_weights: torch.Tensor | None = None):
        super().__init__()
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        weight = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        if logits.dim() != 4:
            raise ValueError(f"{name}: logits must be float[N,K,H,W], got shape {tuple(logits.shape)}")
        if logits.shape[1] != self.num_classes:
            raise ValueError(
                f"{name}: logits have {logits.shape[1]} channels, the loss was built for num_classes={self.num_classes}"
            )
        if target.dim() != 3:
            raise ValueError(f"{name}: target must be int64[N,H,W], got shape {tuple(target.shape)}")
        if target.shape[0] != logits.shape[0]:
            raise ValueError(f"{name}: batch sizes differ: logits {logits.shape[0]}, target {target.shape[0]}")
        if not self.out_of_range_labels_ignored:
            bad = (target != self.ignore_index) & ((target < 0) | (target >= self.num_classes))
            if bool(bad.any()):
                raise ValueError(
                    f"{name}: target contains label {int(target[bad][0])}, outside "
                    f"0..{self.num_classes - 1} and not ignore_index={self.ignore_index}"
                )
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits = resize_to(logits.to(compute_dtype(logits)), target.shape[-2:])
            return self.compute(logits, target.long())

    def class_weight(self, dtype: torch.dtype) -> torch.Tensor | None:
        """The class weights as ``dtype`` (buffers may have been cast by ``module.to(dtype)``), or None."""
        return None if self.weight is None else self.weight.to(dtype)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss on full-precision logits float[N,K,H,W] and int64 labels [N,H,W] of the same size."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, ignore_index={self.ignore_index}"
