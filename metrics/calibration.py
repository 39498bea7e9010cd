"""Top-label calibration of per-pixel class probabilities: reliability bins, ECE and MCE.

Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks", ICML 2017 (§2, equations 2-5).

Every labelled pixel ``i`` (target in ``[0, K)``, ``ignore_index`` excluded) with probabilities ``p_i`` (K,) has a
*confidence* ``c_i = max_k p_ik`` and is *correct* when ``argmax_k p_ik = y_i``. The pixels fall into ``B = 15``
equal-width confidence bins, bin ``b = [b/B, (b+1)/B)`` (the last bin also holds ``c = 1``). With ``n_b`` pixels in
bin ``b``, ``N = Σ_b n_b``, ``acc_b`` their fraction correct and ``conf_b`` their mean confidence:

* ``ECE = Σ_b (n_b / N) |acc_b - conf_b|`` (expected calibration error),
* ``MCE = max_b |acc_b - conf_b|`` over the non-empty bins (maximum calibration error),

both fractions in ``[0, 1]`` (``0.05`` = 5 points of accuracy), NaN without labelled pixels. These are torchmetrics'
``MulticlassCalibrationError(n_bins=15, norm="l1" | "max")`` of the flattened labelled pixels, except that
torchmetrics keeps ``c = 1`` exactly in a bin of its own.

The state is three vectors of ``B`` entries: pixel count (int64), sum of confidence (float64), number correct
(int64). They are sums, so :class:`SegmentationCalibration` is a torchmetrics ``Metric`` whose states are summed
across DDP ranks (``dist_reduce_fx="sum"``, as the confusion matrix of :mod:`metrics.confusion`); the counts add
up exactly, the confidence sums up to float64 rounding.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

#: number of equal-width confidence bins
NUM_BINS = 15
#: name -> one-line definition (metrics.json keys, ``benchmark.py compare --metric``); fractions in [0, 1]
CALIBRATION = {
    "ECE": "expected calibration error of the model's probabilities, sum_b (n_b/N) |acc_b - conf_b|, 15 bins",
    "MCE": "maximum calibration error of the model's probabilities, max_b |acc_b - conf_b| over non-empty bins",
    "ECE_scaled": "ECE after temperature scaling (logits / T, T fitted on the val split)",
    "MCE_scaled": "MCE after temperature scaling (logits / T, T fitted on the val split)",
}


def bin_index(confidence: torch.Tensor, num_bins: int = NUM_BINS) -> torch.Tensor:
    """The bin of each confidence: ``b`` with ``b/B <= c < (b+1)/B``, ``c = 1`` in the last bin.

    Args:
        confidence: float tensor of any shape, values in ``[0, 1]``.
        num_bins: ``B``.

    Returns:
        int64 tensor of the same shape, values in ``[0, B)``.
    """
    c = confidence.to(torch.float64)
    edges = torch.linspace(0, 1, num_bins + 1, dtype=torch.float64, device=c.device)
    return (torch.bucketize(c, edges, right=True) - 1).clamp_(0, num_bins - 1)


def calibration_errors(count: torch.Tensor, conf_sum: torch.Tensor, correct: torch.Tensor) -> dict[str, float]:
    """ECE and MCE of reliability bins (module docstring).

    Args:
        count: (B,) labelled pixels per bin (any numeric dtype).
        conf_sum: (B,) their summed confidence.
        correct: (B,) how many of them are correct.

    Returns:
        ``{"ECE": float, "MCE": float}``, fractions in ``[0, 1]``; NaN when every bin is empty.
    """
    n = count.detach().to(torch.float64).cpu()
    total = float(n.sum())
    if total <= 0:
        return {"ECE": math.nan, "MCE": math.nan}
    gap = reliability(count, conf_sum, correct)["gap"]
    full = n > 0
    return {"ECE": float((n[full] / total * gap[full]).sum()), "MCE": float(gap[full].max())}


def reliability(count: torch.Tensor, conf_sum: torch.Tensor, correct: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-bin accuracy, mean confidence and ``|acc - conf|`` of reliability bins (the reliability diagram).

    Args:
        count: (B,) labelled pixels per bin.
        conf_sum: (B,) their summed confidence.
        correct: (B,) how many of them are correct.

    Returns:
        float64 (B,) tensors on the CPU: ``lower``/``upper`` bin edges, ``count``, ``accuracy``, ``confidence``,
        ``gap``; accuracy, confidence and gap are NaN in empty bins.
    """
    n = count.detach().to(torch.float64).cpu()
    b = n.numel()
    nan = torch.full_like(n, math.nan)
    acc = torch.where(n > 0, correct.detach().to(torch.float64).cpu() / n.clamp(min=1), nan)
    conf = torch.where(n > 0, conf_sum.detach().to(torch.float64).cpu() / n.clamp(min=1), nan)
    edges = torch.linspace(0, 1, b + 1, dtype=torch.float64)
    return {
        "lower": edges[:-1],
        "upper": edges[1:],
        "count": n,
        "accuracy": acc,
        "confidence": conf,
        "gap": (acc - conf).abs(),
    }


def pixel_bins(
    probs: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, num_bins: int = NUM_BINS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reliability bins of one batch of probabilities.

    Args:
        probs: float (N, K, H, W) class probabilities (each pixel sums to 1).
        target: int64 (N, H, W) ground truth; ``ignore_index`` and values outside ``[0, K)`` are not counted.
        ignore_index: label value that is not scored.
        num_bins: ``B``.

    Returns:
        ``(count int64 (B,), conf_sum float64 (B,), correct int64 (B,))`` on the device of ``probs``.

    Raises:
        ValueError: ``probs`` is not (N, K, H, W) or ``target`` is not (N, H, W) of the same N, H, W.
    """
    if probs.ndim != 4 or target.shape != (probs.shape[0], *probs.shape[2:]):
        raise ValueError(
            f"probs must be (N, K, H, W) and target (N, H, W), got {tuple(probs.shape)} and {tuple(target.shape)}"
        )
    target = target.to(probs.device)
    conf, pred = probs.detach().max(dim=1)
    keep = (target != ignore_index) & (target >= 0) & (target < probs.shape[1])
    conf, hit = conf[keep].clamp(0, 1), (pred[keep] == target[keep])
    idx = bin_index(conf, num_bins)
    count = torch.bincount(idx, minlength=num_bins)
    conf_sum = torch.zeros(num_bins, dtype=torch.float64, device=probs.device).index_add_(0, idx, conf.double())
    correct = torch.bincount(idx[hit], minlength=num_bins)
    return count, conf_sum, correct


class SegmentationCalibration(Metric):
    """Running reliability bins of per-pixel probabilities, summed across DDP ranks by torchmetrics.

    ``update(probs, target)``: float (N, K, H, W) probabilities and int64 (N, H, W) ground truth (see
    :func:`pixel_bins`); a band of rows of a larger image is fine. States: ``count`` int64 (B,), ``conf_sum``
    float64 (B,), ``correct`` int64 (B,), all ``dist_reduce_fx="sum"``. ``compute()`` returns ``{"ECE", "MCE"}``
    (float fractions, :func:`calibration_errors`) and the summed bins ``count``, ``conf_sum``, ``correct``.

    Args:
        ignore_index: label value that is not scored.
        num_bins: number of equal-width confidence bins (15 as in Guo et al. 2017).
    """

    full_state_update = False

    def __init__(self, ignore_index: int = 255, num_bins: int = NUM_BINS, **kwargs):
        super().__init__(**kwargs)
        self.ignore_index, self.num_bins = int(ignore_index), int(num_bins)
        self.add_state("count", default=torch.zeros(num_bins, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("conf_sum", default=torch.zeros(num_bins, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("correct", default=torch.zeros(num_bins, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        count, conf_sum, correct = pixel_bins(probs, target, self.ignore_index, self.num_bins)
        dev = self.count.device
        self.count += count.to(dev)
        self.conf_sum += conf_sum.to(dev)
        self.correct += correct.to(dev)

    def compute(self) -> dict:
        bins = {"count": self.count.clone(), "conf_sum": self.conf_sum.clone(), "correct": self.correct.clone()}
        return calibration_errors(self.count, self.conf_sum, self.correct) | bins


def normalized_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Per-pixel entropy of the class probabilities divided by its maximum ``log K``.

    ``H(p) / log K = -Σ_k p_k log p_k / log K`` (``0 log 0 = 0``): 0 for a one-hot pixel, 1 for the uniform
    distribution.

    Args:
        probs: float (N, K, H, W) probabilities (each pixel sums to 1).

    Returns:
        float32 (N, H, W) in ``[0, 1]`` (zeros when K = 1).
    """
    k = probs.shape[1]
    if k < 2:
        return torch.zeros((probs.shape[0], *probs.shape[2:]), dtype=torch.float32, device=probs.device)
    p = probs.detach().float()
    return (-torch.special.xlogy(p, p).sum(dim=1) / math.log(k)).clamp_(0, 1)
