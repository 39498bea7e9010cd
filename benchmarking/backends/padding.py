"""Padding for exported graphs: they take any N, H, W that is a multiple of the model's ``stride`` attribute
(:func:`size_multiple`); inputs are zero-padded at the bottom/right after normalisation (:func:`pad_to_multiple`,
as smp/ESPNet do inside ``forward``) and the logits cropped back (:func:`padded_runner`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchmarking.backends.registry import Runner


def size_multiple(model: nn.Module) -> int:
    """The multiple of H and W an exported graph of ``model`` needs: the model's ``stride`` (int) or 1."""
    s = getattr(model, "stride", 1)
    return int(s) if isinstance(s, int) and s > 0 else 1


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad float[N, C, H, W] at the bottom/right to multiples of ``multiple`` (as smp/ESPNet do inside)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph)) if (ph or pw) else x


def padded_runner(call: Callable, multiple: int, device: torch.device) -> Runner:
    """Runner around ``call(numpy float32[N,3,H',W']) -> numpy logits``: pads to ``multiple``, crops back."""

    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        xp = pad_to_multiple(x.detach().float().cpu(), multiple).contiguous()
        y = torch.from_numpy(call(xp.numpy()))
        return y[..., : y.shape[-2] * h // xp.shape[-2], : y.shape[-1] * w // xp.shape[-1]].to(device)

    return run
