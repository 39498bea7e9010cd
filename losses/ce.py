"""Cross-entropy losses: ``CE`` and class-weighted ``wCE``.

Both are ``torch.nn.functional.cross_entropy`` with ``ignore_index`` (255), as in
HRNet-Semantic-Segmentation (``CrossEntropy``) and MIC-DKFZ/semantic_segmentation (``CE``, ``wCE``).
``wCE`` uses the dataset's class weights (``dataset.class_weights``, e.g. the 19 Cityscapes weights of
HRNet-Semantic-Segmentation / MIC-DKFZ) and, as PyTorch does, normalises the weighted sum by the sum of
the weights of the valid pixels:

    CE  = sum_i -log p_i[y_i] / |V|            wCE = sum_i w[y_i] * (-log p_i[y_i]) / sum_i w[y_i]

over the valid pixels V = {i : y_i != ignore_index}, p = softmax(logits). Computed in float32 under
autocast. A batch without valid pixels gives NaN (0/0), as ``F.cross_entropy`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losses.common import SegLoss
from losses.registry import register_loss


class CrossEntropy(SegLoss):
    """Pixel-wise cross-entropy on logits float[N,K,H,W] and labels int64[N,H,W]; returns a float32 scalar.

    ``class_weights`` float32[K] (a buffer, moved with the module) or None. Source: PyTorch
    ``F.cross_entropy(weight=..., ignore_index=...)`` with ``reduction="mean"``.
    """

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, weight=self.class_weight(logits.dtype), ignore_index=self.ignore_index)


@register_loss("CE")
def ce(num_classes: int, ignore_index: int = 255, class_weights=None):
    """Unweighted cross-entropy (``class_weights`` of the dataset are not used)."""
    return CrossEntropy(num_classes, ignore_index, None)


@register_loss("wCE")
def wce(num_classes: int, ignore_index: int = 255, class_weights=None, power: float = 1.0):
    """Class-weighted cross-entropy with the dataset's ``class_weights`` raised to ``power``.

    ``power=1`` uses the weights as given (e.g. SegNet's median-frequency balancing); ``power=0.5`` softens
    them to their square root (the thin classes still count more, the large ones lose less), ``power=0`` is CE.
    Set it with ``+loss_params.wCE.power=0.5``.

    Raises:
        ValueError: the dataset config has no ``class_weights``, or ``power`` is not a number >= 0.
    """
    if class_weights is None:
        raise ValueError("wCE needs class weights: set dataset.class_weights (a list of num_classes floats)")
    if isinstance(power, bool) or not isinstance(power, (int, float)) or power < 0:
        raise ValueError(f"loss_params.wCE.power must be a number >= 0, got {power!r}")
    return CrossEntropy(num_classes, ignore_index, torch.as_tensor(class_weights, dtype=torch.float32) ** power)
