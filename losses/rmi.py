"""Region Mutual Information loss: ``RMI`` and class-weighted ``wRMI``.

Zhao, Wang, Zhu, Cai, He: "Region Mutual Information Loss for Semantic Segmentation", NeurIPS 2019;
reference code ZJULearning/RMI ``losses/rmi/rmi.py::RMILoss.forward_sigmoid`` (also used by
NVIDIA/semantic-segmentation for HRNet-OCR/MS-OCR and by MIC-DKFZ/semantic_segmentation, whose
``weighted_RMILoss`` defines ``wRMI``). Written anew here; the semantics follow the reference:

* probabilities are per-class sigmoids (not a softmax); a pixel is valid when ``0 <= y < K`` (so 255 and
  every other label >= K is invalid); ``m`` = valid mask, ``Y`` = one-hot label (zero at invalid pixels);
* ``BCE = sum_{valid i, classes c} bce(x_ic, Y_ic) / (|valid| + 1)`` (``F.binary_cross_entropy_with_logits``
  with ``reduction="sum"``; wRMI passes the class weights as ``pos_weight``);
* ``P = sigmoid(x) * m + 1e-6`` (invalid pixels get probability 1e-6 but still enter pooling);
* ``Y`` and ``P`` are down-sampled (``pool_way`` max | avg with ``pool_size``, ``pool_stride``, padding
  ``pool_size // 2``; or ``interp``: nearest for Y, bilinear ``align_corners=True`` for P to (H//s, W//s));
  no down-sampling when ``pool_stride == 1``;
* every ``radius x radius`` window gives d = radius^2 dimensional vectors y (labels) and p (probabilities);
  in float64, with centred vectors, ``S_y = Y Y^T``, ``S_p = P P^T``, ``S_yp = Y P^T`` (unnormalised
  covariances over the window positions) and ``V = S_y - S_yp (S_p + a I)^-1 S_yp^T`` with a = 5e-4;
* ``rmi_c = mean_n 0.5 * logdet(V + a I) / d`` (log-determinant by Cholesky, ``2 sum log(diag(L) + 1e-8)``),
  ``RMI = sum_c rmi_c`` (wRMI: ``sum_c w_c rmi_c``);
* ``loss = lambda * BCE + (1 - lambda) * RMI`` with lambda = 0.5.

The RMI term is a (scaled) log-determinant, so the loss can be negative; only its gradient matters.
NVIDIA's HRNet-OCR recipes use ``pool_way=avg, pool_size=4, pool_stride=4``:
``+loss_params.RMI={pool_way:avg,pool_size:4,pool_stride:4}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losses.common import SegLoss
from losses.registry import register_loss

CLIP_MIN = 1e-6  # added to the sigmoid probabilities (reference ``_CLIP_MIN``)
POS_ALPHA = 5e-4  # diagonal added to keep the covariances positive definite (reference ``_POS_ALPHA``)
LOGDET_EPS = 1e-8  # added to the Cholesky diagonal before the log (reference ``log_det_by_cholesky``)
POOL_WAYS = ("max", "avg", "interp")


class RMILoss(SegLoss):
    """RMI (or, with ``class_weights``, wRMI) on logits float[N,K,H,W] and labels int64[N,H,W] -> scalar.

    Args:
        num_classes: K.
        ignore_index: documented for symmetry; every label outside 0..K-1 is invalid (reference behaviour).
        class_weights: float32[K] or None; when given, ``pos_weight`` of the BCE and a factor on each
            class's RMI term (MIC-DKFZ ``weighted_RMILoss``).
        radius: side of the square region (1..10); d = radius^2.
        pool_way: ``max`` (reference default), ``avg`` (NVIDIA) or ``interp``.
        pool_size: pooling kernel; pool_stride: pooling stride (1 = no down-sampling).
        weight_lambda: lambda in ``lambda * BCE + (1 - lambda) * RMI`` (0.5).

    Raises:
        ValueError: a bad option (the message names the valid values); in ``forward``, a down-sampled
            label smaller than ``radius`` in height or width.
    """

    out_of_range_labels_ignored = True

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        class_weights: torch.Tensor | None = None,
        *,
        radius: int = 3,
        pool_way: str = "max",
        pool_size: int = 3,
        pool_stride: int = 3,
        weight_lambda: float = 0.5,
    ):
        super().__init__(num_classes, ignore_index, class_weights)
        if pool_way not in POOL_WAYS:
            raise ValueError(f"RMI pool_way={pool_way!r} is unknown; valid: {list(POOL_WAYS)}")
        if not 1 <= int(radius) <= 10:
            raise ValueError(f"RMI radius={radius} must be in 1..10")
        if int(pool_size) < 1 or int(pool_stride) < 1:
            raise ValueError(f"RMI pool_size={pool_size} and pool_stride={pool_stride} must be >= 1")
        self.radius, self.pool_way = int(radius), pool_way
        self.pool_size, self.pool_stride = int(pool_size), int(pool_stride)
        self.weight_lambda = float(weight_lambda)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = self.num_classes
        valid = (target >= 0) & (target < k)  # [N,H,W]
        mask = valid.unsqueeze(1).to(logits.dtype)  # [N,1,H,W]
        onehot = F.one_hot(torch.where(valid, target, 0), k).permute(0, 3, 1, 2).to(logits.dtype) * mask
        weight = self.class_weight(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(
            logits,
            onehot,
            weight=mask.expand_as(logits),
            reduction="sum",
            pos_weight=None if weight is None else weight.view(k, 1, 1),
        )
        bce = bce / (mask.sum() + 1.0)
        probs = torch.sigmoid(logits) * mask + CLIP_MIN
        rmi = self.rmi_lower_bound(onehot, probs)
        return self.weight_lambda * bce + (1.0 - self.weight_lambda) * rmi

    def downsample(self, labels: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool one-hot labels and probabilities float[N,K,H,W] as configured (identity for stride 1)."""
        p, s = self.pool_size, self.pool_stride
        if s == 1:
            return labels, probs
        if self.pool_way == "max":
            return (F.max_pool2d(labels, p, s, padding=p // 2), F.max_pool2d(probs, p, s, padding=p // 2))
        if self.pool_way == "avg":
            return (F.avg_pool2d(labels, p, s, padding=p // 2), F.avg_pool2d(probs, p, s, padding=p // 2))
        size = (labels.shape[-2] // s, labels.shape[-1] // s)
        return (
            F.interpolate(labels, size=size, mode="nearest"),
            F.interpolate(probs, size=size, mode="bilinear", align_corners=True),
        )

    def rmi_lower_bound(self, labels: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Sum over classes of the (weighted) per-class RMI term; inputs float[N,K,H,W], output a scalar.

        Raises:
            ValueError: the down-sampled maps are smaller than ``radius``.
        """
        labels, probs = self.downsample(labels, probs)
        n, k, h, w = labels.shape
        r = self.radius
        if h < r or w < r:
            raise ValueError(
                f"RMI: the label is {h}x{w} after down-sampling (pool_way={self.pool_way}, "
                f"pool_stride={self.pool_stride}), smaller than radius={r}; use larger crops"
            )
        d = r * r
        # [N*K, d, M]: the d values of every r x r window, row-major inside the window
        y = F.unfold(labels.reshape(n * k, 1, h, w), kernel_size=r).double().view(n, k, d, -1)
        p = F.unfold(probs.reshape(n * k, 1, h, w), kernel_size=r).double().view(n, k, d, -1)
        y = y - y.mean(dim=3, keepdim=True)
        p = p - p.mean(dim=3, keepdim=True)
        eye = torch.eye(d, dtype=torch.float64, device=p.device) * POS_ALPHA
        s_y = y @ y.transpose(2, 3)
        s_p = p @ p.transpose(2, 3)
        s_yp = y @ p.transpose(2, 3)
        var = s_y - s_yp @ torch.linalg.inv(s_p + eye) @ s_yp.transpose(2, 3)
        chol = torch.linalg.cholesky(var + eye)
        logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1) + LOGDET_EPS).sum(-1)  # [N,K]
        per_class = (0.5 * logdet).mean(0).to(probs.dtype) / d  # back to the input dtype
        weight = self.class_weight(per_class.dtype)
        if weight is not None:
            per_class = per_class * weight
        return per_class.sum()

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, radius={self.radius}, pool_way={self.pool_way}, "
            f"pool_size={self.pool_size}, pool_stride={self.pool_stride}, weight_lambda={self.weight_lambda}, "
            f"weighted={self.weight is not None}"
        )


def _rmi_builder(weighted: bool):
    """Registry builder of :class:`RMILoss`: ``RMI`` (``weighted=False``: the dataset's ``class_weights`` are not
    used) or ``wRMI`` (``weighted=True``: they are required)."""

    def build(
        num_classes: int,
        ignore_index: int = 255,
        class_weights=None,
        radius: int = 3,
        pool_way: str = "max",
        pool_size: int = 3,
        pool_stride: int = 3,
        weight_lambda: float = 0.5,
    ) -> RMILoss:
        if not weighted:
            class_weights = None
        elif class_weights is None:
            raise ValueError("wRMI needs class weights: set dataset.class_weights (a list of num_classes floats)")
        return RMILoss(
            num_classes,
            ignore_index,
            class_weights,
            radius=radius,
            pool_way=pool_way,
            pool_size=pool_size,
            pool_stride=pool_stride,
            weight_lambda=weight_lambda,
        )

    return build


rmi = register_loss("RMI")(_rmi_builder(weighted=False))
rmi.__doc__ = "Unweighted RMI (the dataset's ``class_weights`` are not used); options as :class:`RMILoss`."
wrmi = register_loss("wRMI")(_rmi_builder(weighted=True))
wrmi.__doc__ = """RMI with the dataset's ``class_weights`` (BCE ``pos_weight`` and per-class RMI factor).

Raises:
    ValueError: the dataset config has no ``class_weights``.
"""
