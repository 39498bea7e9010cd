"""nnU-Net v2 compound losses: ``DC+CE`` (alias ``DC_CE``), ``TOPK``, ``DC+TOPK`` (alias ``DC_TOPK``).

Isensee et al., "nnU-Net", Nature Methods 2021; reference code MIC-DKFZ/nnUNet v2
``nnunetv2/training/loss/{dice.py::SoftDiceLoss, compound_losses.py::DC_and_CE_loss, DC_and_topk_loss,
robust_ce_loss.py::TopKLoss}`` with the nnUNetTrainer settings ``batch_dice=True, do_bg=False,
smooth=1e-5``. Written anew here; the semantics follow the reference:

* soft Dice on softmax probabilities ``p``, one-hot labels ``Y`` and the valid mask ``m`` (ignore pixels
  are masked out of all sums): ``tp_c = sum m p_c Y_c``, ``fp_c = sum m p_c (1 - Y_c)``,
  ``fn_c = sum m (1 - p_c) Y_c``, summed over (N, H, W) with ``batch_dice`` (else per image),
  ``dice_c = (2 tp_c + smooth) / max(2 tp_c + fp_c + fn_c + smooth, 1e-8)``; ``dice`` = mean over classes
  (without class 0 when ``do_bg=False``; and over images without ``batch_dice``);
* ``DC+CE = weight_ce * CE - weight_dice * dice`` (CE as ``F.cross_entropy`` with ``ignore_index``; 0 when
  the batch has no valid pixel);
* ``TOPK``: per-pixel CE with ``reduction="none"`` (ignored pixels contribute CE = 0 but are counted),
  mean of the ``int(N*H*W * k / 100)`` largest values (k = 10 percent);
* ``DC+TOPK = weight_ce * TOPK - weight_dice * dice``; TOPK sees the ignore label (its pixels count 0),
  the caller's label tensor is never modified (an older copy in MIC-DKFZ/semantic_segmentation wrote 0
  into the ignored pixels of the caller's tensor, so its TOPK part trained them as class 0).

Not reproduced: nnU-Net's all-gather of the Dice statistics across DDP ranks (``ddp=True``); segbench's
batch Dice is over the local batch of each rank.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losses.common import SegLoss
from losses.registry import register_loss


def soft_dice(
    probs: torch.Tensor,
    onehot: torch.Tensor,
    mask: torch.Tensor,
    *,
    batch_dice: bool = True,
    do_bg: bool = False,
    smooth: float = 1e-5,
) -> torch.Tensor:
    """Mean soft Dice coefficient (nnU-Net v2 ``SoftDiceLoss`` without its minus sign).

    Args:
        probs: float[N,K,H,W] probabilities; onehot: float[N,K,H,W] one-hot labels;
        mask: float[N,1,H,W], 1 for valid pixels, 0 for ignored ones.
        batch_dice: sum tp/fp/fn over the batch (one Dice per class) instead of per image.
        do_bg: include class 0; smooth: added to numerator and denominator.

    Returns:
        scalar tensor (dtype of ``probs``), the mean Dice in [0, 1].
    """
    axes = (0, 2, 3) if batch_dice else (2, 3)
    tp = (probs * onehot * mask).sum(axes)
    fp = (probs * (1 - onehot) * mask).sum(axes)
    fn = ((1 - probs) * onehot * mask).sum(axes)
    dc = (2 * tp + smooth) / torch.clamp(2 * tp + fp + fn + smooth, min=1e-8)
    if not do_bg:
        dc = dc[..., 1:]
    return dc.mean()


def topk_ce(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, k: float) -> torch.Tensor:
    """Mean of the ``int(N*H*W * k / 100)`` (at least 1) largest per-pixel CE values (nnU-Net ``TopKLoss``).

    ``logits`` float[N,K,H,W], ``target`` int64[N,H,W]; ignored pixels have CE 0 and are counted in N*H*W.
    """
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none").flatten()
    n = max(int(ce.numel() * k / 100), 1)
    return ce.topk(n, sorted=False).values.mean()


class _DiceBase(SegLoss):
    """Shared options of the nnU-Net losses (see the module docstring).

    ``OPTIONS`` names the keyword options a subclass accepts from ``loss_params``; the registry rejects any
    other key. ``class_weights`` are accepted and not used (the nnU-Net losses are unweighted).

    Raises:
        ValueError: ``k`` outside (0, 100].
    """

    OPTIONS: tuple[str, ...] = ("batch_dice", "do_bg", "smooth", "weight_ce", "weight_dice")

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        class_weights=None,
        *,
        batch_dice: bool = True,
        do_bg: bool = False,
        smooth: float = 1e-5,
        weight_ce: float = 1.0,
        weight_dice: float = 1.0,
        k: float = 10.0,
    ):
        super().__init__(num_classes, ignore_index, None)
        if not 0 < float(k) <= 100:
            raise ValueError(f"{type(self).__name__}: k={k} must be a percentage in (0, 100]")
        self.batch_dice, self.do_bg, self.smooth = bool(batch_dice), bool(do_bg), float(smooth)
        self.weight_ce, self.weight_dice, self.k = float(weight_ce), float(weight_dice), float(k)

    def dice(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean soft Dice, number of valid pixels) for logits float[N,K,H,W] and labels int64[N,H,W]."""
        valid = target != self.ignore_index
        mask = valid.unsqueeze(1).to(logits.dtype)
        onehot = F.one_hot(torch.where(valid, target, 0), self.num_classes).permute(0, 3, 1, 2).to(logits.dtype)
        dc = soft_dice(
            logits.softmax(1), onehot, mask, batch_dice=self.batch_dice, do_bg=self.do_bg, smooth=self.smooth
        )
        return dc, valid.sum()

    def extra_repr(self) -> str:
        head = f"num_classes={self.num_classes}, ignore_index={self.ignore_index}"
        return ", ".join([head, *(f"{o}={getattr(self, o)}" for o in self.OPTIONS)])


@register_loss("DC+CE", aliases=("DC_CE",))
class DiceCE(_DiceBase):
    """nnU-Net v2 ``DC_and_CE_loss``: ``weight_ce * CE - weight_dice * dice`` -> scalar (can be negative)."""

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dc, num_valid = self.dice(logits, target)
        ce = F.cross_entropy(logits, target, ignore_index=self.ignore_index) if num_valid > 0 else logits.sum() * 0
        return self.weight_ce * ce - self.weight_dice * dc


@register_loss("TOPK")
class TopK(_DiceBase):
    """nnU-Net v2 ``TopKLoss``: mean of the k % largest per-pixel CE values over all N*H*W pixels."""

    OPTIONS = ("k",)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return topk_ce(logits, target, self.ignore_index, self.k)


@register_loss("DC+TOPK", aliases=("DC_TOPK",))
class DiceTopK(_DiceBase):
    """nnU-Net v2 ``DC_and_topk_loss``: ``weight_ce * TOPK - weight_dice * dice`` -> scalar."""

    OPTIONS = (*_DiceBase.OPTIONS, "k")

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dc, num_valid = self.dice(logits, target)
        topk = topk_ce(logits, target, self.ignore_index, self.k) if num_valid > 0 else logits.sum() * 0
        return self.weight_ce * topk - self.weight_dice * dc
