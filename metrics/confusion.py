"""Confusion-matrix based segmentation metrics.

One confusion matrix is accumulated on the device (``torchmetrics.classification.MulticlassConfusionMatrix``,
which sums its state across DDP ranks); every metric is derived from it:

* per-class IoU  = TP / (TP + FP + FN), NaN for a class absent from both label and prediction,
* mIoU           = nanmean of per-class IoU (the MMSegmentation convention: classes present in
                   label or prediction only),
* aAcc           = sum(TP) / number of labelled pixels,
* per-class Acc  = TP / (TP + FN), NaN for classes absent from the label,
* mAcc           = nanmean of per-class Acc.

Rows are ground truth, columns are predictions; pixels equal to ``ignore_index`` are dropped.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.classification import MulticlassConfusionMatrix


def metrics_from_confusion(confmat: torch.Tensor) -> dict[str, float | list[float]]:
    """Derive mIoU, aAcc, mAcc and per-class IoU/Acc from a confusion matrix.

    Args:
        confmat: int64/float tensor of shape (K, K), rows = ground truth, columns = prediction.

    Returns:
        dict with floats in [0, 1] ``mIoU``, ``aAcc``, ``mAcc`` and lists of length K ``IoU``, ``Acc``
        (NaN where a class is absent as defined in the module docstring). With an empty matrix every
        value is NaN.

    Raises:
        ValueError: if ``confmat`` is not a square 2-D tensor.
    """
    if confmat.ndim != 2 or confmat.shape[0] != confmat.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {tuple(confmat.shape)}")
    cm = confmat.detach().to(torch.float64).cpu()
    tp = cm.diag()
    gt = cm.sum(dim=1)
    pred = cm.sum(dim=0)
    union = gt + pred - tp
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    iou = torch.where(union > 0, tp / union.clamp(min=1), nan)
    acc = torch.where(gt > 0, tp / gt.clamp(min=1), nan)
    total = cm.sum()
    return {
        "mIoU": float(torch.nanmean(iou)) if not torch.isnan(iou).all() else math.nan,
        "aAcc": float(tp.sum() / total) if total > 0 else math.nan,
        "mAcc": float(torch.nanmean(acc)) if not torch.isnan(acc).all() else math.nan,
        "IoU": iou.tolist(),
        "Acc": acc.tolist(),
    }


class SegmentationMetrics(MulticlassConfusionMatrix):
    """Device-side confusion matrix with segmentation metrics, DDP-summed by torchmetrics.

    ``update(preds, target)`` takes predicted labels int64 (N, H, W) (or logits (N, K, H, W), which
    are arg-maxed) and ground truth int64 (N, H, W) with ``ignore_index`` pixels. ``confusion()`` returns the
    (K, K) int64 matrix summed over all updates and ranks: it is torchmetrics' public ``compute()`` of the
    confusion matrix, which syncs the state across processes. ``metrics()`` returns
    :func:`metrics_from_confusion` of that matrix.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, **kwargs):
        super().__init__(
            num_classes=num_classes, ignore_index=ignore_index, normalize=None, validate_args=False, **kwargs
        )
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        # torchmetrics drops ignore_index pixels; make sure nothing else falls outside [0, K).
        super().update(preds.reshape(-1), target.reshape(-1))

    def confusion(self) -> torch.Tensor:
        """The (K, K) int64 confusion matrix summed over all updates (and ranks); rows = ground truth."""
        return self.compute().long()

    def metrics(self) -> dict[str, float | list[float]]:
        """mIoU, aAcc, mAcc, per-class IoU/Acc of :meth:`confusion` (see :func:`metrics_from_confusion`)."""
        return metrics_from_confusion(self.confusion())
