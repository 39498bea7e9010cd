"""Tiny stand-in models for benchmark tests (CPU, milliseconds)."""

from __future__ import annotations

from torch import nn


class CountingModel(nn.Module):
    """3x3 conv, stride 2 (logits at half resolution, so the benchmark must resize); counts forward calls.

    ``CountingModel.calls`` is a class-level counter (reset it in the test). Extra config keys are ignored so
    that it can replace ``models.SMPModel`` through ``model._target_=`` overrides.
    """

    calls = 0
    output_names = ("out",)

    def __init__(self, num_classes: int, **_):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 3, stride=2, padding=1)

    def forward(self, x):
        type(self).calls += 1
        return {"out": self.conv(x)}


class TinyConvNet(nn.Module):
    """Three convolutions (3 -> 8 -> 8 -> ``num_classes``, 3x3, ReLU between), full resolution, stride 1: a few
    quantisable layers for exported/int8 backends in milliseconds."""

    output_names = ("out",)

    def __init__(self, num_classes: int = 3, **_):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, num_classes, 3, padding=1),
        )

    def forward(self, x):
        return {"out": self.net(x)}
