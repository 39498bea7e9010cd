"""Input normalisation carried by a model: :class:`InputConvention` maps the pipeline's input to the one its weights expect.

The segbench pipeline normalises every image with the *dataset's* ``mean``/``std`` (RGB, 0..1 scale). Weights
trained with another preprocessing (author checkpoints: ESPNet's BGR 0..255 statistics; ImageNet encoders of
TensorFlow origin: mean 0.5, std 0.5) get a fixed per-channel affine map (plus a channel permutation) as the
model's first operation, so training, validation.py, predict.py and benchmark.py feed the same tensors and
cannot disagree: the normalisation travels with the model (as timm's ``pretrained_cfg``), configured in
``config/model/<name>.yaml`` (``input_conventions`` of ESPNet, ``input_norm`` of smp models).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

CHANNEL_ORDERS = ("RGB", "BGR")


class InputConvention(nn.Module):
    """Map dataset-normalised RGB input to an author checkpoint's input convention.

    The segbench pipeline feeds ``x = (rgb / 255 - dataset_mean) / dataset_std`` (RGB, float32[N,3,H,W]).
    The checkpoint expects ``y = (v - mean) / std / divisor`` with ``v = rgb / 255 * value_range`` reordered
    to ``channel_order``, ``mean``/``std`` given in that channel order on the ``value_range`` scale.
    Examples: ESPNet (Mehta et al. 2018, sacmehta/ESPNet ``VisualizeResults.py``): BGR, mean/std on 0..255,
    ``value_range=255``, ``divisor=255``; ESPNetv2 (EdgeNets): RGB ImageNet mean/std, ``value_range=1``.
    Both are the per-channel affine ``y_c = a_c * x_{perm(c)} + b_c`` computed once here.

    Args:
        dataset_mean: 3 floats, the dataset config's ``mean`` (RGB, 0..1 scale).
        dataset_std: 3 floats, the dataset config's ``std`` (RGB, 0..1 scale).
        mean: 3 floats, the checkpoint's means in ``channel_order`` on the ``value_range`` scale.
        std: 3 floats, the checkpoint's standard deviations in ``channel_order`` on the ``value_range`` scale.
        channel_order: ``"RGB"`` or ``"BGR"``.
        value_range: full-scale value of the pixels the statistics refer to (255 or 1).
        divisor: extra division after normalising (ESPNet: 255).

    Raises:
        ValueError: an unknown ``channel_order`` or a statistic that is not 3 numbers (std must be > 0).
    """

    def __init__(
        self,
        dataset_mean: Sequence[float],
        dataset_std: Sequence[float],
        mean: Sequence[float],
        std: Sequence[float],
        channel_order: str = "RGB",
        value_range: float = 1.0,
        divisor: float = 1.0,
    ):
        super().__init__()
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"input convention channel_order={channel_order!r}; valid: {list(CHANNEL_ORDERS)}")
        for name, v in (("dataset mean", dataset_mean), ("dataset std", dataset_std), ("mean", mean), ("std", std)):
            if len(list(v)) != 3:
                raise ValueError(f"input convention {name} must have 3 values, got {list(v)}")
        if min(list(std) + list(dataset_std)) <= 0:
            raise ValueError(
                f"input convention std values must be > 0, got std={list(std)} dataset std={list(dataset_std)}"
            )
        perm = [2, 1, 0] if channel_order == "BGR" else [0, 1, 2]
        dm = torch.tensor(dataset_mean, dtype=torch.float64)[perm]
        ds = torch.tensor(dataset_std, dtype=torch.float64)[perm]
        m, s = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
        scale = ds * value_range / (s * divisor)
        shift = (dm * value_range - m) / (s * divisor)
        self.channel_order = channel_order
        self.register_buffer("perm", torch.tensor(perm), persistent=False)
        self.register_buffer("scale", scale.float().view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.float().view(1, 3, 1, 1), persistent=False)
        self.identity = bool(
            perm == [0, 1, 2]
            and torch.allclose(scale, torch.ones_like(scale), atol=1e-6)
            and torch.allclose(shift, torch.zeros_like(shift), atol=1e-6)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float[N,3,H,W] dataset-normalised RGB -> float[N,3,H,W] in the checkpoint's convention."""
        if self.identity:
            return x
        if self.channel_order == "BGR":
            x = x.flip(1)
        return torch.addcmul(self.shift.to(x.dtype), x, self.scale.to(x.dtype))

    def extra_repr(self) -> str:
        return f"channel_order={self.channel_order}, identity={self.identity}"


def build_input_convention(conventions: Mapping | None, data_norm: Mapping | None) -> InputConvention | None:
    """Pick the convention for ``data_norm["name"]`` (else the ``"*"`` entry) from a model config table.

    Args:
        conventions: ``{dataset name or "*": {channel_order, mean, std, value_range, divisor}}`` or None.
        data_norm: ``{"name", "mean", "std"}`` of the dataset config feeding the model, or None.

    Returns:
        The module, or None when no entry applies (the dataset normalisation is used as is).
    """
    if not conventions or not data_norm:
        return None
    spec = conventions.get(data_norm.get("name")) or conventions.get("*")
    if spec is None:
        return None
    return InputConvention(data_norm["mean"], data_norm["std"], **dict(spec))
