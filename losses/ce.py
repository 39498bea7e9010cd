"""Cross-entropy losses: ``CE`` and class-weighted ``wCE``.

Both are ``torch.nn.functional.cross_entropy`` with ``ignore_index`` (255). ``wCE`` uses the dataset's
class weights (``dataset.class_weights``, e.g. the 19 Cityscapes weights of HRNet-Semantic-Segmentation /
MIC-DKFZ) and, as PyTorch does, normalises the weighted sum by the sum of the weights of the valid pixels:
``wCE = sum_i w[y_i] * ce_i / sum_i w[y_i]`` over pixels with ``y_i != ignore_index``.
Computed in float32 under autocast.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losses.registry import register_loss


class CrossEntropy(nn.Module):
    """Pixel-wise cross-entropy on logits float[N,K,H,W] and labels int64[N,H,W]; returns a float32 scalar.

    ``class_weights`` float32[K] (a registered buffer, moved with the module) or None.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, class_weights: torch.Tensor | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.register_buffer("weight", None if class_weights is None else class_weights.float())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.cross_entropy(logits.float(), target.long(), weight=self.weight, ignore_index=self.ignore_index)


@register_loss("CE")
def ce(num_classes: int, ignore_index: int = 255, class_weights=None, **_):
    """Unweighted cross-entropy (``class_weights`` of the dataset are not used)."""
    return CrossEntropy(num_classes, ignore_index, None)


@register_loss("wCE")
def wce(num_classes: int, ignore_index: int = 255, class_weights=None, **_):
    """Class-weighted cross-entropy with the dataset's ``class_weights``.

    Raises:
        ValueError: the dataset config has no ``class_weights``.
    """
    if class_weights is None:
        raise ValueError("wCE needs class weights: set dataset.class_weights (a list of num_classes floats)")
    return CrossEntropy(num_classes, ignore_index, class_weights)
