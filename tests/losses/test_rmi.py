"""RMI / wRMI against an independent NumPy evaluation of the paper's formula with explicit loops
(Zhao et al., NeurIPS 2019; reference semantics of ZJULearning/RMI ``RMILoss.forward_sigmoid``)."""

import math

import numpy as np
import pytest
import torch

from losses import build_loss

ALPHA = 5e-4


def _pool(a: np.ndarray, size: int, stride: int, way: str) -> np.ndarray:
    """Max/avg pooling of a [H, W] map with padding size//2 (max pads -inf, avg pads zeros that count)."""
    pad = size // 2
    h, w = a.shape
    fill = -np.inf if way == "max" else 0.0
    ap = np.full((h + 2 * pad, w + 2 * pad), fill)
    ap[pad : pad + h, pad : pad + w] = a
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    out = np.empty((oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = ap[i * stride : i * stride + size, j * stride : j * stride + size]
            out[i, j] = win.max() if way == "max" else win.sum() / size**2
    return out


def rmi_numpy(logits, labels, k, weights=None, radius=3, way="max", size=3, stride=3):
    """0.5 * BCE + 0.5 * sum_c w_c mean_n 0.5 logdet(Cov(y|p) + a I) / d, with loops and slogdet."""
    x = logits.astype(np.float64)
    n = x.shape[0]
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=np.float64)
    valid = labels < k
    onehot = np.stack([(labels == c) & valid for c in range(k)], 1).astype(np.float64)
    sig = 1 / (1 + np.exp(-x))
    bce = -(w[None, :, None, None] * onehot * np.log(sig) + (1 - onehot) * np.log(1 - sig))
    bce = (bce * valid[:, None]).sum() / (valid.sum() + 1)
    probs = sig * valid[:, None] + 1e-6
    d = radius * radius
    rmi = 0.0
    for c in range(k):
        per_image = []
        for i in range(n):
            ya, pa = _pool(onehot[i, c], size, stride, way), _pool(probs[i, c], size, stride, way)
            h, wd = ya.shape
            yv, pv = [], []
            for r in range(h - radius + 1):
                for s in range(wd - radius + 1):
                    yv.append(ya[r : r + radius, s : s + radius].ravel())
                    pv.append(pa[r : r + radius, s : s + radius].ravel())
            yv, pv = np.array(yv).T, np.array(pv).T  # [d, M]
            yv = yv - yv.mean(1, keepdims=True)
            pv = pv - pv.mean(1, keepdims=True)
            var = yv @ yv.T - (yv @ pv.T) @ np.linalg.inv(pv @ pv.T + ALPHA * np.eye(d)) @ (yv @ pv.T).T
            sign, logdet = np.linalg.slogdet(var + ALPHA * np.eye(d))
            assert sign > 0
            per_image.append(0.5 * logdet / d)
        rmi += w[c] * np.mean(per_image)
    return 0.5 * bce + 0.5 * rmi


@pytest.mark.parametrize("way,size,weighted", [("max", 3, False), ("max", 3, True), ("avg", 4, True)])
def test_rmi_matches_loop_reference(way, size, weighted):
    g = torch.Generator().manual_seed(3)
    k = 3
    x = torch.randn(2, k, 20, 23, generator=g) * 2
    y = torch.randint(0, k, (2, 20, 23), generator=g)
    y[0, 5:9, 3:12] = 255
    y[1, :, :4] = k  # labels >= K are ignored too
    weights = [0.6, 2.5, 1.2] if weighted else None
    ours = build_loss(
        "wRMI" if weighted else "RMI",
        num_classes=k,
        class_weights=weights,
        pool_way=way,
        pool_size=size,
        pool_stride=size,
    )(x, y)
    ref = rmi_numpy(x.numpy(), y.numpy(), k, weights, way=way, size=size, stride=size)
    # the only formula difference: log(diag(chol) + 1e-8) in the reference vs exact logdet here
    assert ours.item() == pytest.approx(ref, rel=1e-4, abs=1e-4)


def test_rmi_perfect_prediction_beats_uniform():
    # RMI rewards predictions whose local structure matches the label's
    y = torch.zeros(1, 24, 24, dtype=torch.long)
    y[0, :, 12:] = 1
    y[0, 6:10, 3:8] = 1
    good = torch.nn.functional.one_hot(y, 2).permute(0, 3, 1, 2).float() * 8 - 4
    loss = build_loss("RMI", num_classes=2)
    assert loss(good, y) < loss(torch.zeros_like(good), y)


def test_rmi_options_and_errors():
    loss = build_loss("RMI", num_classes=2, pool_way="avg", pool_size=4, pool_stride=4, radius=2, weight_lambda=0.3)
    assert (loss.pool_way, loss.pool_size, loss.pool_stride, loss.radius, loss.weight_lambda) == ("avg", 4, 4, 2, 0.3)
    with pytest.raises(ValueError, match=r"pool_way='mean'.*valid: \['max', 'avg', 'interp'\]"):
        build_loss("RMI", num_classes=2, pool_way="mean")
    with pytest.raises(ValueError, match="wRMI needs class weights"):
        build_loss("wRMI", num_classes=2)
    with pytest.raises(ValueError, match=r"2x2 after down-sampling.*smaller than radius=3"):
        build_loss("RMI", num_classes=2)(torch.zeros(1, 2, 6, 6), torch.zeros(1, 6, 6, dtype=torch.long))
    # stride 1: no down-sampling at all
    x = torch.randn(1, 2, 8, 8)
    y = (torch.rand(1, 8, 8) > 0.5).long()
    a = build_loss("RMI", num_classes=2, pool_stride=1, pool_size=1)(x, y)
    assert a.item() == pytest.approx(rmi_numpy(x.numpy(), y.numpy(), 2, size=1, stride=1), rel=1e-4, abs=1e-4)
    assert math.isfinite(a.item())
