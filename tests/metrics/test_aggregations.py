"""mIoU aggregations on hand-made confusion matrices equal their closed forms (rows = ground truth)."""

import math

import pytest
import torch

from metrics import SegmentationMetrics, metrics_from_confusion
from metrics.aggregations import (
    PerImageMIoU,
    aggregations,
    class_iou,
    frequency_weighted_iou,
    image_mious,
    micro_iou,
    per_image_confusion,
    per_image_miou,
)

# class 0: TP 3, FN 2, FP 2; class 1: TP 4, FN 2, FP 1; class 2: absent from the label, predicted once (FP 1)
CM = torch.tensor([[3, 1, 1], [2, 4, 0], [0, 0, 0]])


def test_class_iou_and_frequency_weighted_iou_closed_form():
    iou = class_iou(CM)
    assert iou.tolist() == pytest.approx([3 / (3 + 2 + 2), 4 / (4 + 2 + 1), 0.0])
    # n_0 = 5, n_1 = 6, n_2 = 0 labelled pixels, N = 11
    assert frequency_weighted_iou(CM) == pytest.approx(5 / 11 * 3 / 7 + 6 / 11 * 4 / 7)


def test_micro_iou_closed_form_and_relation_to_aacc():
    tp, n = 7, 11
    assert micro_iou(CM) == pytest.approx(tp / (2 * n - tp))  # sum TP / sum (TP + FP + FN)
    aacc = metrics_from_confusion(CM)["aAcc"]
    assert micro_iou(CM) == pytest.approx(aacc / (2 - aacc))


def test_empty_matrix_gives_nan():
    z = torch.zeros(3, 3, dtype=torch.long)
    assert math.isnan(frequency_weighted_iou(z)) and math.isnan(micro_iou(z))
    assert math.isnan(per_image_miou(z[None]))


def test_per_image_miou_closed_form_differs_from_dataset_miou():
    a = torch.tensor([[4, 0], [0, 0]])  # image 1: only class 0, all right -> mIoU 1
    b = torch.tensor([[0, 1], [0, 3]])  # image 2: class 0 IoU 0/1, class 1 IoU 3/4 -> mIoU 3/8
    empty = torch.zeros(2, 2, dtype=torch.long)  # no labelled pixel: not counted
    cms = torch.stack([a, b, empty])
    assert image_mious(cms)[:2].tolist() == pytest.approx([1.0, 3 / 8])
    assert per_image_miou(cms) == pytest.approx((1 + 3 / 8) / 2)
    # dataset level on the summed matrix [[4,1],[0,3]]: (4/5 + 3/4) / 2
    assert metrics_from_confusion(cms.sum(0))["mIoU"] == pytest.approx((4 / 5 + 3 / 4) / 2)


def test_per_image_confusion_and_running_metric_match_hand_counts():
    target = torch.tensor([[[0, 0], [0, 0]], [[0, 1], [1, 255]]])
    preds = torch.tensor([[[0, 0], [0, 0]], [[1, 1], [1, 0]]])
    cms = per_image_confusion(preds, target, num_classes=2, ignore_index=255)
    assert cms.tolist() == [[[4, 0], [0, 0]], [[0, 1], [0, 2]]]
    metric = PerImageMIoU(num_classes=2, ignore_index=255)
    metric.update(preds[:1], target[:1])
    logits = torch.nn.functional.one_hot(preds[1:], 2).permute(0, 3, 1, 2).float()
    metric.update(logits, target[1:])  # logits are arg-maxed
    assert float(metric.compute()) == pytest.approx((1.0 + (0 + 2 / 3) / 2) / 2)
    # the same pixels through the dataset-level metric: one matrix, the sum of both
    seg = SegmentationMetrics(2, 255)
    seg.update(preds, target)
    assert torch.equal(seg.confusion(), cms.sum(0))


def test_aggregations_dict():
    out = aggregations(CM, 0.5)
    assert out == {"fwIoU": frequency_weighted_iou(CM), "IoU_micro": micro_iou(CM), "mIoU_image": 0.5}
    assert "mIoU_image" not in aggregations(CM)


def test_non_square_rejected_and_shape_mismatch_named():
    with pytest.raises(ValueError, match="must be"):
        class_iou(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\(1, 2\) and target \(1, 3\)"):
        per_image_confusion(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long), 2)
