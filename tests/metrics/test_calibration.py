"""Calibration bins, ECE/MCE (closed form, torchmetrics, DDP sum), normalised entropy, temperature fit."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics.classification import MulticlassCalibrationError

from metrics.calibration import SegmentationCalibration, bin_index, normalized_entropy, pixel_bins, reliability
from metrics.temperature import fit_temperature, temperature_nll


def two_class(conf_and_label, shape=(1, 2, 3)):
    """(probs (N, 2, H, W), target (N, H, W)) with p(class 0) = the given value per pixel."""
    p0 = torch.tensor([c for c, _ in conf_and_label], dtype=torch.float64).view(*shape)
    target = torch.tensor([y for _, y in conf_and_label], dtype=torch.int64).view(*shape)
    return torch.stack([p0, 1 - p0], dim=1), target


def test_ece_mce_closed_form_by_hand():
    # confidence, label: bins of width 1/15 -> 0.9 in bin 13, 0.95 in 14, 0.62 in 9, 0.55 in 8; 255 is not scored
    probs, target = two_class([(0.9, 0), (0.9, 1), (0.62, 0), (0.55, 0), (0.95, 0), (0.99, 255)])
    m = SegmentationCalibration()
    m.update(probs, target)
    out = m.compute()
    # bin 13: 2 pixels, acc 1/2, conf 0.9 -> gap 0.4; bin 14: 0.05; bin 9: 0.38; bin 8: 0.45
    assert out["ECE"] == pytest.approx((2 * 0.4 + 0.05 + 0.38 + 0.45) / 5, abs=1e-12)
    assert out["MCE"] == pytest.approx(0.45, abs=1e-12)
    assert out["count"].tolist() == [0] * 8 + [1, 1, 0, 0, 0, 2, 1]
    assert out["correct"].tolist() == [0] * 8 + [1, 1, 0, 0, 0, 1, 1]
    assert out["count"].dtype == out["correct"].dtype == torch.int64 and out["conf_sum"].dtype == torch.float64
    r = reliability(out["count"], out["conf_sum"], out["correct"])
    assert r["accuracy"][13] == 0.5 and r["confidence"][13] == pytest.approx(0.9) and math.isnan(r["accuracy"][0])


def test_bin_edges_and_confidence_one():
    c = torch.tensor([0.0, 1 / 15 - 1e-9, 1 / 15 + 1e-9, 14 / 15 + 1e-9, 1.0])
    assert bin_index(c).tolist() == [0, 0, 1, 14, 14]
    probs, target = two_class([(1.0, 0), (1.0, 1)], shape=(1, 1, 2))
    m = SegmentationCalibration()
    m.update(probs, target)
    assert m.compute()["ECE"] == pytest.approx(0.5) and m.compute()["MCE"] == pytest.approx(0.5)
    empty = SegmentationCalibration()
    empty.update(probs, torch.full_like(target, 255))
    assert math.isnan(empty.compute()["ECE"]) and math.isnan(empty.compute()["MCE"])


def random_batch(seed=0, n=3, k=5, h=17, w=19):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, k, h, w, generator=g, dtype=torch.float64), dim=1)
    target = torch.randint(0, k, (n, h, w), generator=g)
    target[torch.rand(n, h, w, generator=g) < 0.2] = 255
    return probs, target


@pytest.mark.parametrize("norm,key", [("l1", "ECE"), ("max", "MCE")])
def test_equals_torchmetrics_on_flattened_pixels(norm, key):
    probs, target = random_batch()
    probs = probs.float()  # torchmetrics computes in float32
    assert bool((probs.amax(1) < 1).all())  # torchmetrics keeps c = 1 in a bin of its own
    m = SegmentationCalibration()
    m.update(probs, target)
    ref = MulticlassCalibrationError(num_classes=5, n_bins=15, norm=norm, ignore_index=255)
    ref.update(probs.permute(0, 2, 3, 1).reshape(-1, 5), target.reshape(-1))
    assert m.compute()[key] == pytest.approx(float(ref.compute()), abs=1e-6)  # float32 sums of 780 pixels


def test_two_ranks_merged_equal_one_process():
    probs, target = random_batch(seed=1, n=4)
    probs = (probs * 64).round() / 64  # dyadic confidences: float64 sums are exact in any order
    probs[:, 0] = 1 - probs[:, 1:].sum(1)
    one = SegmentationCalibration()
    one.update(probs, target)
    rank0, rank1 = SegmentationCalibration(), SegmentationCalibration()
    rank0.update(probs[:2], target[:2])
    rank1.update(probs[2:], target[2:])
    rank0.merge_state(rank1)  # torchmetrics' reduction of dist_reduce_fx="sum" states, as in a DDP sync
    a, b = one.compute(), rank0.compute()
    for key in ("count", "conf_sum", "correct"):
        assert torch.equal(a[key], b[key]), key
    assert a["ECE"] == b["ECE"] and a["MCE"] == b["MCE"]


def _rank(rank: int, port: int, probs, target, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        m = SegmentationCalibration()
        m.update(probs[2 * rank : 2 * rank + 2], target[2 * rank : 2 * rank + 2])
        res = m.compute()  # all_reduce (sum) of the bins across the two processes
        out[rank] = torch.stack([res["count"].double(), res["conf_sum"], res["correct"].double()])
    finally:
        dist.destroy_process_group()


def test_ddp_all_reduce_of_two_processes_equals_one_process():
    probs, target = random_batch(seed=2, n=4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.get_context("fork").Manager().dict()
    mp.start_processes(_rank, args=(port, probs, target, out), nprocs=2, start_method="fork")
    one = SegmentationCalibration()
    one.update(probs, target)
    ref = one.compute()
    for rank in (0, 1):
        count, conf_sum, correct = out[rank]
        assert torch.equal(count.long(), ref["count"]) and torch.equal(correct.long(), ref["correct"])
        assert torch.allclose(conf_sum, ref["conf_sum"], rtol=1e-14, atol=0)


def test_pixel_bins_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        pixel_bins(torch.rand(2, 3, 4), torch.zeros(2, 4, dtype=torch.int64))


def test_normalized_entropy_closed_form():
    p = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25] * 4, [0.5, 0.5, 0.0, 0.0], [0.5, 0.25, 0.25, 0.0]])
    e = normalized_entropy(p.T.reshape(1, 4, 2, 2))  # pixels in row-major order
    expected = torch.tensor([0.0, 1.0, 0.5, 1.5 * math.log(2) / math.log(4)]).view(1, 2, 2)
    assert torch.allclose(e, expected, atol=1e-7) and e.dtype == torch.float32


@pytest.mark.parametrize("t_true", [0.5, 2.5])
def test_temperature_recovered_from_overconfident_logits(t_true):
    """Labels drawn from softmax(z_true); the model's logits are z_true * T_true, so dividing by T_true recovers
    the calibrated probabilities: the fitted T equals T_true up to sampling error."""
    g = torch.Generator().manual_seed(0)
    z_true = 2 * torch.randn(200_000, 6, generator=g, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(z_true, dim=1), 1, generator=g).squeeze(1)
    fit = fit_temperature(z_true * t_true, labels)
    assert fit.temperature == pytest.approx(t_true, rel=1e-2)
    assert fit.nll_after < fit.nll_before and fit.pixels == 200_000
    assert fit.nll_after == pytest.approx(float(temperature_nll(z_true, labels, 1.0)), rel=1e-3)
    scaled = z_true * t_true / fit.temperature
    assert torch.equal(scaled.argmax(1), (z_true * t_true).argmax(1))  # labels unchanged


def test_multi_view_nll_is_nll_of_the_mean_probability():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 50, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (50,), generator=g)
    p = (torch.softmax(z / 1.7, -1)).mean(0)
    assert float(temperature_nll(z, y, 1.7)) == pytest.approx(float(-p[torch.arange(50), y].log().mean()), rel=1e-12)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        fit_temperature(z, torch.full((50,), 4))
