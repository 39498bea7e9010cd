"""Test-time settings of the inference engine (``dataset.test`` in the configs): :class:`InferenceSettings`
(mode, slide window and stride, scales, flip, window batch, accumulator device, test scale) and the keep-ratio size
of the test scale (:func:`keep_ratio_size`, MMCV ``rescale_size``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

MODES = ("whole", "slide")


def _pair(value, name: str) -> tuple[int, int] | None:
    """``None`` | int | (H, W) -> (H, W) of positive ints; ValueError naming ``name`` otherwise."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"inference {name} must be an int or [H, W], got {value!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"inference {name} must be positive, got {[h, w]}")
    return h, w


@dataclass
class InferenceSettings:
    """Test-time settings (``dataset.test`` in the configs).

    Attributes:
        mode: ``whole`` (one forward per view) or ``slide`` (windows of ``crop_size`` every ``stride``).
        crop_size: (H, W) of slide windows in pixels (an int means square); required for ``slide``.
        stride: (H, W) step of slide windows in pixels; required for ``slide``.
        scales: image scale factors, e.g. ``[0.5, 1.0, 2.0]`` (all > 0).
        flip: also run the left-right flipped image (doubles the views).
        window_batch: slide windows per forward pass (>= 1); per image, so a batch of N images runs
            ``N * window_batch`` windows per forward.
        accumulate_on: device of the full-size accumulator (``None`` = the device of the images, ``"cpu"``).
        resize: test scale ``[long_max, short_max]`` in pixels (order free, MMSeg's ``scale``; see
            :func:`keep_ratio_size`), or ``None`` for the image's own size.

    Raises:
        ValueError: unknown mode (valid names listed), slide without crop_size/stride, a stride larger than
            crop_size, non-positive sizes, scales or window_batch.
    """

    mode: str = "whole"
    crop_size: Sequence[int] | None = None
    stride: Sequence[int] | None = None
    scales: Sequence[float] = field(default_factory=lambda: [1.0])
    flip: bool = False
    window_batch: int = 4
    accumulate_on: str | None = None
    resize: Sequence[int] | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"inference mode must be one of {list(MODES)}, got {self.mode!r}")
        self.crop_size = _pair(self.crop_size, "crop_size")
        self.stride = _pair(self.stride, "stride")
        if self.mode == "slide" and (self.crop_size is None or self.stride is None):
            raise ValueError(
                f"slide inference needs crop_size and stride (H, W), got crop_size={self.crop_size} "
                f"stride={self.stride}"
            )
        if self.mode == "slide" and any(st > c for st, c in zip(self.stride, self.crop_size)):
            raise ValueError(
                f"slide stride {list(self.stride)} must not exceed crop_size {list(self.crop_size)} "
                f"(pixels between windows would get no prediction)"
            )
        if isinstance(self.scales, (int, float)):
            self.scales = [self.scales]
        self.scales = [float(s) for s in self.scales]
        if not self.scales or any(s <= 0 for s in self.scales):
            raise ValueError(f"inference scales must be a non-empty list of positive factors, got {self.scales}")
        self.flip = bool(self.flip)
        if int(self.window_batch) < 1:
            raise ValueError(f"inference window_batch must be >= 1, got {self.window_batch}")
        self.window_batch = int(self.window_batch)
        self.resize = _pair(self.resize, "resize")

    @classmethod
    def from_config(cls, cfg=None, **overrides) -> InferenceSettings:
        """Build from a mapping (e.g. ``cfg.dataset.test``), then ``overrides``; unknown keys are ignored,
        None values keep the defaults."""
        names = set(cls.__dataclass_fields__)
        kw = {}
        for source in (dict(cfg or {}), overrides):
            for k, v in source.items():
                if k in names and v is not None:
                    kw[k] = list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
        return cls(**kw)

    def to_dict(self) -> dict:
        """Plain dict (lists, not tuples) for JSON/YAML records."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def keep_ratio_size(h: int, w: int, scale: Sequence[int]) -> tuple[int, int]:
    """(H', W') of an H x W image resized to the test ``scale`` with its aspect ratio kept (MMCV ``rescale_size``).

    ``s = min(max(scale) / max(H, W), min(scale) / min(H, W))``; ``H' = int(H*s + 0.5)``, ``W' = int(W*s + 0.5)``
    (MMCV ``_scale_size`` rounds half up). E.g. ADE20K ``scale=(2048, 512)``: 683x512 (W x H) stays 683x512,
    a 5312x2988 photo becomes 910x512.
    """
    long_max, short_max = max(scale), min(scale)
    s = min(long_max / max(h, w), short_max / min(h, w))
    return max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))
