"""One inference engine for training-time validation, validation.py, benchmark.py and predict.py."""
from inference.engine import InferenceSettings, infer, predict_labels

__all__ = ["InferenceSettings", "infer", "predict_labels"]
