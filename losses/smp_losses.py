"""segmentation-models-pytorch losses by name: ``DC``, ``Lovasz``, ``Focal``, ``Jaccard``.

Each is the smp 0.6 class itself in ``mode="multiclass"`` with ``ignore_index`` (255), behind the segbench
loss interface (shape checks, logits resized to the label, float32 under autocast):

* ``DC`` = ``smp.losses.DiceLoss(mode="multiclass", from_logits=True, ignore_index=255)`` (the ``DC`` of
  MIC-DKFZ/semantic_segmentation): ``p = softmax``; ignored pixels are zeroed in ``p`` and ``Y``;
  per class over the whole batch ``dice_c = (2 sum p_c Y_c + smooth) / max(sum p_c + sum Y_c + smooth, eps)``;
  ``loss = mean_c [(1 - dice_c) * (sum Y_c > 0)]`` over all K classes (classes absent from the label
  contribute 0 but are counted in the mean); smooth = 0, eps = 1e-7.
* ``Jaccard`` = ``smp.losses.JaccardLoss(mode="multiclass", from_logits=True, ignore_index=255)``: as DC
  with ``iou_c = (I + smooth) / max(sum p_c + sum Y_c - I + smooth, eps)``, ``I = sum p_c Y_c``.
* ``Focal`` = ``smp.losses.FocalLoss(mode="multiclass", ignore_index=255)``: per class the binary focal
  loss (Lin et al. 2017) of ``sigmoid(x_c)`` vs ``[y == c]`` averaged over valid pixels,
  ``(1 - p_t)^gamma * BCE`` with gamma = 2, alpha = None; then the mean over classes.
* ``Lovasz`` = ``smp.losses.LovaszLoss(mode="multiclass", ignore_index=255)``: Lovasz-softmax
  (Berman et al., CVPR 2018) over the batch, classes present in the label; always float32 (smp's
  implementation fails on float64 inputs).
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch

from losses.common import SegLoss
from losses.registry import register_loss


class SMPLoss(SegLoss):
    """A segmentation-models-pytorch loss ``fn(logits float[N,K,H,W], target int64[N,H,W]) -> scalar``."""

    def __init__(self, fn: torch.nn.Module, num_classes: int, ignore_index: int = 255, float32_only: bool = False):
        super().__init__(num_classes, ignore_index, None)
        self.fn = fn
        self.float32_only = float32_only  # smp's Lovasz mixes float64 errors with a float32 gradient: no float64

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(logits.float() if self.float32_only else logits, target)


def _overlap_loss(smp_class: type[torch.nn.Module], measure: str):
    """Registry builder of the smp overlap loss ``smp_class`` (``DiceLoss`` or ``JaccardLoss``), ``1 - measure``."""

    def build(
        num_classes: int,
        ignore_index: int = 255,
        class_weights=None,
        smooth: float = 0.0,
        eps: float = 1e-7,
        log_loss: bool = False,
    ) -> SMPLoss:
        fn = smp_class(
            mode="multiclass", from_logits=True, ignore_index=ignore_index, smooth=smooth, eps=eps, log_loss=log_loss
        )
        return SMPLoss(fn, num_classes, ignore_index)

    build.__doc__ = (
        f'1 - {measure} of smp ``{smp_class.__name__}(mode="multiclass", from_logits=True, ignore_index)`` '
        "(unweighted)."
    )
    return build


dc = register_loss("DC")(_overlap_loss(smp.losses.DiceLoss, "soft Dice"))
jaccard = register_loss("Jaccard")(_overlap_loss(smp.losses.JaccardLoss, "soft IoU"))


@register_loss("Focal")
def focal(
    num_classes: int,
    ignore_index: int = 255,
    class_weights=None,
    gamma: float = 2.0,
    alpha: float | None = None,
    normalized: bool = False,
):
    """smp ``FocalLoss(mode="multiclass", ignore_index)``: mean over classes of the binary focal loss."""
    fn = smp.losses.FocalLoss(
        mode="multiclass", ignore_index=ignore_index, gamma=gamma, alpha=alpha, normalized=normalized
    )
    return SMPLoss(fn, num_classes, ignore_index)


@register_loss("Lovasz")
def lovasz(num_classes: int, ignore_index: int = 255, class_weights=None, per_image: bool = False):
    """smp ``LovaszLoss(mode="multiclass", ignore_index)``: Lovasz-softmax over the batch (or per image)."""
    fn = smp.losses.LovaszLoss(mode="multiclass", ignore_index=ignore_index, per_image=per_image)
    return SMPLoss(fn, num_classes, ignore_index, float32_only=True)
