"""One inference engine for training-time validation, validation.py, benchmark.py and predict.py."""

from inference.engine import infer, predict_labels, predict_labels_streaming
from inference.settings import InferenceSettings

__all__ = ["InferenceSettings", "infer", "predict_labels", "predict_labels_streaming"]
