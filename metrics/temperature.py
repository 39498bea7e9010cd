"""Temperature scaling: one scalar ``T > 0`` dividing the logits, fitted by minimising the NLL (Guo et al. 2017, §4.2).

Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks", ICML 2017.

The scaled probabilities are ``softmax(z / T)``; ``T > 1`` softens over-confident predictions, ``T < 1`` sharpens
them, and the arg-max (hence every label and the mIoU) is the same for every ``T``. When the inference merges
several views (scales, flips) the probability of a pixel is the mean over its ``V`` views,
``p = (1/V) Σ_v softmax(z_v / T)``, and the NLL fitted is ``-log p_y`` of that mean, so ``T`` is fitted for the
probabilities the inference actually produces. ``log T`` is optimised (``T`` stays positive) with
``torch.optim.LBFGS`` (strong Wolfe line search) from ``T = 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TemperatureFit:
    """Result of :func:`fit_temperature`: ``temperature`` T, mean NLL (nats per pixel) at ``T = 1``
    (``nll_before``) and at ``T`` (``nll_after``), number of pixels, LBFGS function evaluations."""

    temperature: float
    nll_before: float
    nll_after: float
    pixels: int
    evaluations: int


def temperature_nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Mean NLL of the labels under the view-averaged probabilities ``(1/V) Σ_v softmax(z_v / T)``.

    Args:
        logits: float (V, P, K) logits of ``V`` views of ``P`` pixels (or (P, K) for one view).
        labels: int64 (P,) classes in ``[0, K)``.
        temperature: ``T > 0`` (float or 0-d tensor; a tensor keeps the gradient).

    Returns:
        0-d tensor (nats per pixel), in the dtype of ``logits``.
    """
    z = logits if logits.ndim == 3 else logits.unsqueeze(0)
    logp = torch.log_softmax(z / temperature, dim=-1)  # (V, P, K)
    picked = logp.gather(-1, labels.view(1, -1, 1).expand(z.shape[0], -1, 1)).squeeze(-1)  # (V, P)
    return -(torch.logsumexp(picked, dim=0) - math.log(z.shape[0])).mean()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> TemperatureFit:
    """Fit the temperature ``T`` minimising :func:`temperature_nll` (module docstring).

    Args:
        logits: float (V, P, K) or (P, K) logits of labelled pixels (float64 for the most precise ``T``).
        labels: int64 (P,) classes in ``[0, K)``.
        max_iter: LBFGS iterations at most.

    Returns:
        :class:`TemperatureFit`.

    Raises:
        ValueError: no pixels, shapes that do not match, labels outside ``[0, K)``, or a fit that ends with a
            non-finite NLL or ``T`` outside ``[1e-3, 1e3]`` (the values named).
    """
    z = logits.detach() if logits.ndim == 3 else logits.detach().unsqueeze(0)
    if z.ndim != 3 or labels.shape != (z.shape[1],) or z.shape[1] == 0:
        raise ValueError(
            f"logits (V, P, K) and labels (P,) with P > 0 expected, got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    if int(labels.min()) < 0 or int(labels.max()) >= z.shape[-1]:
        raise ValueError(f"labels must lie in [0, {z.shape[-1]}), got [{int(labels.min())}, {int(labels.max())}]")
    log_t = torch.zeros((), dtype=torch.float64, device=z.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [log_t], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-14, line_search_fn="strong_wolfe"
    )
    evaluations = 0

    def closure():
        nonlocal evaluations
        evaluations += 1
        opt.zero_grad()
        loss = temperature_nll(z, labels, log_t.exp().to(z.dtype))
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(log_t.detach().exp())
    with torch.no_grad():
        before, after = float(temperature_nll(z, labels, 1.0)), float(temperature_nll(z, labels, t))
    if not (math.isfinite(after) and 1e-3 <= t <= 1e3):
        raise ValueError(f"temperature fit failed: T={t:.6g}, NLL {before:.6g} -> {after:.6g}")
    return TemperatureFit(t, before, after, int(z.shape[1]), evaluations)
