"""Hand-computable values of every registered loss (tiny inputs, values derived in the comments)."""

import math

import pytest
import torch

from losses import build_loss
from losses.rmi import CLIP_MIN, LOGDET_EPS, POS_ALPHA

LN2 = math.log(2.0)
S = 1e-5  # nnU-Net smooth


def _two_pixels(k: int = 2):
    """Zero logits (uniform softmax / sigmoid 0.5) on a 1x1x3 image labelled [0, 1, ignore]."""
    return torch.zeros(1, k, 1, 3), torch.tensor([[[0, 1, 255]]])


def test_ce_uniform_logits_is_log_k():
    x, y = _two_pixels(5)
    assert build_loss("CE", num_classes=5)(x, y).item() == pytest.approx(math.log(5), rel=1e-6)


def test_wce_is_weighted_mean_normalised_by_valid_weights():
    # pixel 0: logits [0, ln 3] -> p = [1/4, 3/4], label 0 -> -log p0 = ln 4; pixel 1: logits [0, 0], label 1 -> ln 2
    # weights [2, 1]: (2 ln 4 + 1 ln 2) / (2 + 1) = 5 ln 2 / 3; the ignored pixel is in neither sum.
    x = torch.tensor([[[[0.0, 0.0, 9.0]], [[math.log(3), 0.0, -9.0]]]])
    y = torch.tensor([[[0, 1, 255]]])
    loss = build_loss("wCE", num_classes=2, class_weights=[2.0, 1.0])(x, y)
    assert loss.item() == pytest.approx(5 * LN2 / 3, rel=1e-6)
    assert build_loss("CE", num_classes=2, class_weights=[2.0, 1.0])(x, y).item() == pytest.approx(
        (2 * LN2 + LN2) / 2, rel=1e-6
    )


def test_wce_power_softens_the_weights():
    # same two pixels, weights [4, 1]: power 0.5 -> [2, 1], the value above (5 ln 2 / 3); power 0 -> CE (3 ln 2 / 2)
    x = torch.tensor([[[[0.0, 0.0, 9.0]], [[math.log(3), 0.0, -9.0]]]])
    y = torch.tensor([[[0, 1, 255]]])
    assert build_loss("wCE", num_classes=2, class_weights=[4.0, 1.0], power=0.5)(x, y).item() == pytest.approx(
        5 * LN2 / 3, rel=1e-6
    )
    assert build_loss("wCE", num_classes=2, class_weights=[4.0, 1.0], power=0.0)(x, y).item() == pytest.approx(
        3 * LN2 / 2, rel=1e-6
    )
    with pytest.raises(ValueError, match="power must be a number >= 0, got -1.0"):
        build_loss("wCE", num_classes=2, class_weights=[4.0, 1.0], power=-1.0)
    with pytest.raises(ValueError, match="power must be a number >= 0, got 'half'"):
        build_loss("wCE", num_classes=2, class_weights=[4.0, 1.0], power="half")


def test_cityscapes_19_class_weights_accepted():
    # HRNet-Semantic-Segmentation / MIC-DKFZ Cityscapes weights (19 trainIds)
    w = [
        0.8373,
        0.918,
        0.866,
        1.0345,
        1.0166,
        0.9969,
        0.9754,
        1.0489,
        0.8786,
        1.0023,
        0.9539,
        0.9843,
        1.1116,
        0.9037,
        1.0865,
        1.0955,
        1.0865,
        1.1529,
        1.0507,
    ]
    x = torch.zeros(1, 19, 4, 4)
    y = torch.arange(16).view(1, 4, 4)
    # uniform logits: every pixel's CE is ln 19 whatever its weight
    assert build_loss("wCE", num_classes=19, class_weights=w)(x, y).item() == pytest.approx(math.log(19), rel=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_rmi_constant_maps_closed_form(weighted):
    # Zero logits, every valid pixel class 0: the pooled label and probability maps are constant, so all centred
    # window vectors vanish, V = 0 and logdet(V + a I) = 2 d log(sqrt(a) + 1e-8) -> rmi_c = log(sqrt(a) + 1e-8).
    # BCE: per valid pixel (w0 + K - 1) ln 2 (pos_weight w0 on the positive class 0), divided by (V + 1).
    k, n, h, w = 3, 2, 12, 15
    x = torch.zeros(n, k, h, w)
    y = torch.zeros(n, h, w, dtype=torch.long)
    weights = torch.tensor([2.0, 0.5, 3.0]) if weighted else torch.ones(k)
    v = n * h * w
    bce = (weights[0].item() + k - 1) * LN2 * v / (v + 1)
    rmi = weights.sum().item() * math.log(math.sqrt(POS_ALPHA) + LOGDET_EPS)
    loss = build_loss("wRMI" if weighted else "RMI", num_classes=k, class_weights=weights)(x, y)
    assert loss.item() == pytest.approx(0.5 * bce + 0.5 * rmi, rel=1e-5)
    assert CLIP_MIN == 1e-6 and POS_ALPHA == 5e-4


def test_dc_smp_dice_counts_absent_classes_in_the_mean():
    # K=3, p = 1/3 everywhere; valid labels [0, 1]. class 0: I = 1/3, sum p + sum Y = 2/3 + 1 -> dice 0.4
    # (same for class 1); class 2 is absent -> contributes 0 but counts: loss = (0.6 + 0.6 + 0) / 3 = 0.4.
    x, y = _two_pixels(3)
    assert build_loss("DC", num_classes=3)(x, y).item() == pytest.approx(0.4, rel=1e-6)
    x, y = _two_pixels(2)  # K=2: dice_c = 0.5 / 1 ... = 2*0.5/(1+1) = 0.5 for both -> 0.5
    assert build_loss("DC", num_classes=2)(x, y).item() == pytest.approx(0.5, rel=1e-6)


def test_jaccard_focal_lovasz_two_pixels():
    x, y = _two_pixels(2)
    # Jaccard: I = 0.5, sum p + sum Y - I = 1 + 1 - 0.5 -> IoU 1/3 per class -> loss 2/3
    assert build_loss("Jaccard", num_classes=2)(x, y).item() == pytest.approx(2 / 3, rel=1e-6)
    # Focal: sigmoid(0) = 0.5, p_t = 0.5, (1 - p_t)^2 * ln 2 = ln 2 / 4 for every valid (pixel, class)
    assert build_loss("Focal", num_classes=2)(x, y).item() == pytest.approx(LN2 / 4, rel=1e-6)
    # Lovasz-softmax: errors [0.5, 0.5], one positive of two -> Jaccard gradient sums to 1 -> 0.5 per class
    assert build_loss("Lovasz", num_classes=2)(x, y).item() == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("do_bg", [False, True])
def test_dc_ce_nnunet_closed_form(do_bg):
    # K=3, p = 1/3, valid labels [0, 1]. CE = ln 3. Batch Dice, smooth s:
    # class 0/1: tp = 1/3, fp = 1/3, fn = 2/3 -> (2/3 + s) / (5/3 + s); class 2: tp = 0, fp = 2/3 -> s / (2/3 + s)
    x, y = _two_pixels(3)
    d01 = (2 / 3 + S) / (5 / 3 + S)
    d2 = S / (2 / 3 + S)
    dice = (2 * d01 + d2) / 3 if do_bg else (d01 + d2) / 2
    loss = build_loss("DC+CE", num_classes=3, do_bg=do_bg)(x, y)
    assert loss.item() == pytest.approx(math.log(3) - dice, rel=1e-6)


def test_dc_ce_per_image_dice_and_all_ignored_batch():
    # batch_dice=False: Dice per image then mean. Image 0 labels [1, 1], image 1 labels [0, 0], K=2, p = 1/2:
    # image 0 class 1: tp = 1, fp = 0, fn = 1 -> (2 + s) / (3 + s); image 1 class 1: tp = 0, fp = 1 -> s / (1 + s)
    x = torch.zeros(2, 2, 1, 2)
    y = torch.tensor([[[1, 1]], [[0, 0]]])
    dice = ((2 + S) / (3 + S) + S / (1 + S)) / 2
    assert build_loss("DC+CE", num_classes=2, batch_dice=False)(x, y).item() == pytest.approx(LN2 - dice, rel=1e-6)
    # nothing valid: CE is skipped (not NaN); every class has tp = fp = fn = 0 -> dice = s / s = 1
    empty = torch.full((2, 1, 2), 255)
    assert build_loss("DC+CE", num_classes=2)(x, empty).item() == pytest.approx(-1.0, rel=1e-6)


def _topk_case():
    # 20 pixels, K=2, label 0, logits [0, a_i]: CE_i = log(1 + e^{a_i}); k = 10 % -> the 2 largest.
    a = torch.arange(20, dtype=torch.float32).view(1, 4, 5) / 4  # largest a = 19/4, 18/4
    x = torch.stack([torch.zeros_like(a), a], 1)
    y = torch.zeros(1, 4, 5, dtype=torch.long)
    return a, x, y


def test_topk_mean_of_largest_ten_percent_ignored_count_as_zero():
    _a, x, y = _topk_case()
    expected = (math.log1p(math.exp(19 / 4)) + math.log1p(math.exp(18 / 4))) / 2
    assert build_loss("TOPK", num_classes=2)(x, y).item() == pytest.approx(expected, rel=1e-6)
    # ignore the two hardest pixels: they become CE 0 but still count in N*H*W (so still k = 2 values)
    y2 = y.clone()
    y2[0, 3, 3:] = 255
    expected = (math.log1p(math.exp(17 / 4)) + math.log1p(math.exp(16 / 4))) / 2
    assert build_loss("TOPK", num_classes=2)(x, y2).item() == pytest.approx(expected, rel=1e-6)
    # k = 50 %: the 10 largest of 20
    top10 = sum(math.log1p(math.exp(i / 4)) for i in range(10, 20)) / 10
    assert build_loss("TOPK", num_classes=2, k=50)(x, y).item() == pytest.approx(top10, rel=1e-6)


def test_dc_topk_is_topk_minus_dice_with_ignore_kept():
    a, x, y = _topk_case()
    y = y.clone()
    y[0, 0, :2] = 1
    y[0, 3, 4] = 255  # hardest pixel ignored: TOPK must not train it as class 0
    topk = build_loss("TOPK", num_classes=2)(x, y)
    p1 = torch.sigmoid(a)[0]  # softmax([0, a])[1]
    valid = y[0] != 255
    tp = (p1 * (y[0] == 1)).sum()
    fp = (p1 * ((y[0] == 0) & valid)).sum()
    fn = ((1 - p1) * (y[0] == 1)).sum()
    dice = (2 * tp + S) / (2 * tp + fp + fn + S)
    loss = build_loss("DC+TOPK", num_classes=2)(x, y)
    assert loss.item() == pytest.approx((topk - dice).item(), rel=1e-6)
    expected_topk = (math.log1p(math.exp(18 / 4)) + math.log1p(math.exp(17 / 4))) / 2
    assert topk.item() == pytest.approx(expected_topk, rel=1e-6)
