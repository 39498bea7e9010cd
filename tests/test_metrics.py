"""Metrics on hand-made confusion matrices (rows = ground truth, cols = prediction)."""

import math

import pytest
import torch

from metrics import SegmentationMetrics, metrics_from_confusion


def test_hand_made_confusion_matrix():
    # class 0: tp 3, fn 1 (->1), fp 2 (from 1) ; class 1: tp 4, fn 2, fp 1 ; class 2 absent everywhere
    cm = torch.tensor([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    m = metrics_from_confusion(cm)
    assert m["IoU"][0] == pytest.approx(3 / (3 + 1 + 2))
    assert m["IoU"][1] == pytest.approx(4 / (4 + 2 + 1))
    assert math.isnan(m["IoU"][2])  # absent from label and prediction: excluded from the mean
    assert m["mIoU"] == pytest.approx((3 / 6 + 4 / 7) / 2)
    assert m["aAcc"] == pytest.approx(7 / 10)
    assert m["mAcc"] == pytest.approx((3 / 4 + 4 / 6) / 2)


def test_class_predicted_but_absent_from_label_counts_as_zero_iou():
    cm = torch.tensor([[5, 0, 1], [0, 4, 0], [0, 0, 0]])  # class 2 predicted once, never in label
    m = metrics_from_confusion(cm)
    assert m["IoU"][2] == 0.0
    assert m["mIoU"] == pytest.approx((5 / 6 + 1 + 0) / 3)
    assert math.isnan(m["Acc"][2])
    assert m["mAcc"] == pytest.approx((5 / 6 + 1) / 2)


def test_metric_update_drops_ignore_and_accepts_logits():
    metric = SegmentationMetrics(num_classes=3, ignore_index=255)
    target = torch.tensor([[[0, 1], [2, 255]]])
    pred = torch.tensor([[[0, 1], [1, 2]]])
    metric.update(pred, target)
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    metric.update(logits, target)
    cm = metric.confusion()
    assert cm.tolist() == [[2, 0, 0], [0, 2, 0], [0, 2, 0]]
    assert metric.metrics()["aAcc"] == pytest.approx(4 / 6)


def test_non_square_matrix_is_rejected():
    with pytest.raises(ValueError, match="square"):
        metrics_from_confusion(torch.zeros(2, 3))
