"""mIoU aggregations side by side: dataset-level, per-image, frequency-weighted and micro (pixel-level).

Tools disagree on what "mIoU" means; segbench reports the dataset-level mIoU (the MMSegmentation default,
:func:`metrics.metrics_from_confusion`) and next to it:

* ``mIoU_image`` (per-image mIoU): ``(1/|I|) Σ_i nanmean_c IoU_{i,c}`` with
  ``IoU_{i,c} = TP_{i,c} / (TP_{i,c} + FP_{i,c} + FN_{i,c})`` from image ``i``'s own confusion matrix,
  classes absent from both label and prediction of that image excluded, images without any labelled pixel
  excluded (``|I|`` counts the others). Small objects and rare classes weigh as much as in the images where
  they occur (the convention of e.g. per-image Jaccard in medical segmentation).
* ``fwIoU`` (frequency-weighted IoU, Long et al. 2015, FCN §5): ``Σ_c (n_c / N) IoU_c`` with ``n_c`` the
  labelled pixels of class ``c`` and ``N = Σ_c n_c``; dominated by large classes (road, sky).
* ``IoU_micro`` (pixel-level, torchmetrics/torchgeo ``JaccardIndex(average="micro")``):
  ``Σ_c TP_c / Σ_c (TP_c + FP_c + FN_c)``; with every labelled pixel predicted as some class
  ``Σ FP = Σ FN = N - Σ TP``, so ``IoU_micro = aAcc / (2 - aAcc)``.

Confusion matrices are (K, K) with rows = ground truth, columns = prediction, ignore pixels dropped.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

#: name -> one-line formula (shown by ``benchmark.py compare --help`` and the docs)
AGGREGATIONS = {
    "mIoU": "dataset-level: nanmean_c TP_c / (TP_c + FP_c + FN_c) of the summed confusion matrix",
    "mIoU_image": "per-image: mean over images of each image's nanmean_c IoU_{i,c}",
    "fwIoU": "frequency-weighted: sum_c (n_c / N) IoU_c",
    "IoU_micro": "micro (pixel-level): sum_c TP_c / sum_c (TP_c + FP_c + FN_c)",
}


def class_iou(confmat: torch.Tensor) -> torch.Tensor:
    """Per-class IoU of one or many confusion matrices.

    Args:
        confmat: int/float tensor (..., K, K), rows = ground truth, columns = prediction.

    Returns:
        float64 (..., K): ``TP / (TP + FP + FN)``, NaN where the class is absent from label and prediction.

    Raises:
        ValueError: the last two dimensions are not square.
    """
    if confmat.ndim < 2 or confmat.shape[-1] != confmat.shape[-2]:
        raise ValueError(f"confusion matrix must be (..., K, K), got shape {tuple(confmat.shape)}")
    cm = confmat.detach().to(torch.float64)
    tp = cm.diagonal(dim1=-2, dim2=-1)
    union = cm.sum(-1) + cm.sum(-2) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))


def frequency_weighted_iou(confmat: torch.Tensor) -> float:
    """fwIoU = Σ_c (n_c / N) IoU_c of a (K, K) confusion matrix (module docstring); NaN when it is empty."""
    iou = class_iou(confmat).cpu()
    gt = confmat.detach().to(torch.float64).cpu().sum(1)
    total = gt.sum()
    if total <= 0:
        return math.nan
    return float((gt / total * torch.nan_to_num(iou, nan=0.0)).sum())


def micro_iou(confmat: torch.Tensor) -> float:
    """IoU_micro = Σ TP / Σ (TP + FP + FN) of a (K, K) confusion matrix (module docstring); NaN when empty."""
    cm = confmat.detach().to(torch.float64).cpu()
    tp = cm.diagonal().sum()
    union = cm.sum(1).sum() + cm.sum(0).sum() - tp
    return float(tp / union) if union > 0 else math.nan


def image_mious(confmats: torch.Tensor) -> torch.Tensor:
    """Each image's mIoU: nanmean over classes of its own per-class IoU.

    Args:
        confmats: (N, K, K) per-image confusion matrices.

    Returns:
        float64 (N,), NaN for an image without labelled pixels (and no prediction on them).
    """
    iou = class_iou(confmats)
    present = ~torch.isnan(iou)
    count = present.sum(-1)
    total = torch.nan_to_num(iou, nan=0.0).sum(-1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, math.nan))


def per_image_miou(confmats: torch.Tensor) -> float:
    """mIoU_image = mean over images of :func:`image_mious` (images without labelled pixels excluded); NaN if
    no image counts. ``confmats``: (N, K, K)."""
    m = image_mious(confmats)
    m = m[~torch.isnan(m)]
    return float(m.mean()) if m.numel() else math.nan


def per_image_confusion(preds: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255):
    """One confusion matrix per image.

    Args:
        preds: int64 (N, H, W) predicted labels in [0, K).
        target: int64 (N, H, W) ground truth, ``ignore_index`` pixels dropped (as are labels outside [0, K)).
        num_classes: K.
        ignore_index: label value that is not scored.

    Returns:
        int64 (N, K, K), rows = ground truth, on the device of ``preds``.

    Raises:
        ValueError: ``preds`` and ``target`` shapes differ.
    """
    if preds.shape != target.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} must have the same shape")
    n, k = preds.shape[0], int(num_classes)
    t = target.reshape(n, -1).long()
    p = preds.reshape(n, -1).long()
    keep = (t != ignore_index) & (t >= 0) & (t < k) & (p >= 0) & (p < k)
    img = torch.arange(n, device=preds.device).unsqueeze(1).expand_as(t)
    idx = (img * k * k + t * k + p)[keep]
    return torch.bincount(idx, minlength=n * k * k).reshape(n, k, k)


class PerImageMIoU(Metric):
    """Running per-image mIoU (``mIoU_image``), summed across DDP ranks by torchmetrics.

    ``update(preds, target)``: predicted labels int64 (N, H, W) (or logits (N, K, H, W), arg-maxed) and ground
    truth int64 (N, H, W). States: the sum of the per-image mIoUs and the number of images counted (float64),
    so memory does not grow with the dataset. ``compute()`` returns a float in [0, 1] (NaN before any image).
    """

    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.ignore_index = int(num_classes), int(ignore_index)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        m = image_mious(per_image_confusion(preds, target, self.num_classes, self.ignore_index))
        ok = ~torch.isnan(m)
        self.total += m[ok].sum()
        self.count += ok.sum()

    def compute(self) -> torch.Tensor:
        return self.total / self.count if self.count > 0 else torch.tensor(math.nan, dtype=torch.float64)


def aggregations(confmat: torch.Tensor, image_miou: float | None = None) -> dict[str, float]:
    """The aggregations next to the dataset-level mIoU: ``fwIoU``, ``IoU_micro`` of ``confmat`` (K, K) and,
    when given, ``mIoU_image`` (from :class:`PerImageMIoU`); floats in [0, 1] or NaN."""
    out = {"fwIoU": frequency_weighted_iou(confmat), "IoU_micro": micro_iou(confmat)}
    if image_miou is not None:
        out["mIoU_image"] = float(image_miou)
    return out
