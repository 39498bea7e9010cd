"""Segmentation metrics computed from one confusion matrix (MMSeg conventions)."""

from metrics.confusion import SegmentationMetrics, metrics_from_confusion

__all__ = ["SegmentationMetrics", "metrics_from_confusion"]
