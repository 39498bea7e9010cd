"""Structured configs: the types of the ``ema``, ``class_uniform``, ``dataset.test`` (inference engine) and
``calibration`` (int8) config nodes.

The dataclasses are stored in Hydra's ConfigStore as the group ``schema`` (:func:`register_schemas`, run on import;
:mod:`core.hydra` imports this module) and sit in the defaults lists of ``config/train.yaml`` and
``config/benchmark.yaml`` (``- /schema/ema@ema`` before ``_self_``): a value of the wrong type or an unknown key in
a config file or on the command line fails at compose time with Hydra's error naming the key. The YAML files under
``config/`` hold every default value; the fields here are ``MISSING`` (the YAML must set them), except keys that no
YAML file has and that are added with ``+key=value`` (``dataset.test.accumulate_on``, the ``calibration.nncf``
options), which are None: absent.

Ranges that types cannot express (``0 < ema.decay < 1``, ...) are checked by each dataclass's ``__post_init__``,
which runs when a consumer builds the typed object with :func:`checked` (``OmegaConf.to_object``). :func:`checked`
also merges a node that did not go through composition (a run's saved config, a hand-built mapping) onto the
schema, so it gets the same checks. The engine's value checks (mode, slide window and stride, scales) belong to
``inference.settings.InferenceSettings``, built from the checked node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

# OmegaConf 2.3 reads the field types at run time and knows ``Optional[X]``, not ``X | None``.
# ruff: noqa: UP045


@dataclass
class EmaConfig:
    """``ema`` of ``config/train.yaml``: exponential moving average of the weights (``training/ema.py``).

    Attributes:
        decay: weight of the old average per update, in (0, 1) exclusive; None switches EMA off.
        update_every_n_steps: optimizer steps between updates, >= 1.
        update_starting_at_step: first optimizer step that updates, >= 0; None: from the start.

    Raises:
        ValueError: a value out of its range (key and value named).
    """

    decay: Optional[float] = MISSING
    update_every_n_steps: int = MISSING
    update_starting_at_step: Optional[int] = MISSING

    def __post_init__(self):
        if self.decay is not None and not 0.0 < self.decay < 1.0:
            raise ValueError(
                f"ema.decay={self.decay}: expected a float in (0, 1), e.g. 0.999, or null to switch EMA off"
            )
        if self.update_every_n_steps < 1:
            raise ValueError(f"ema.update_every_n_steps={self.update_every_n_steps}: expected an int >= 1")
        if self.update_starting_at_step is not None and self.update_starting_at_step < 0:
            raise ValueError(
                f"ema.update_starting_at_step={self.update_starting_at_step}: expected an int >= 0 or null"
            )


@dataclass
class ClassUniformConfig:
    """``class_uniform`` of ``config/train.yaml``: class-uniform sampling (``datasets/class_uniform.py``).

    Attributes:
        pct: fraction in [0, 1] of each epoch's crops centred on a pixel of a uniformly drawn class; 0 = off.
        points_per_class: pixels kept per (image, class) in the cached index, >= 1.

    Raises:
        ValueError: a value out of its range (key and value named).
    """

    pct: float = MISSING
    points_per_class: int = MISSING

    def __post_init__(self):
        if not 0.0 <= self.pct <= 1.0:
            raise ValueError(f"class_uniform.pct={self.pct}: expected a fraction in [0, 1] (NVIDIA's recipe uses 0.5)")
        if self.points_per_class < 1:
            raise ValueError(f"class_uniform.points_per_class={self.points_per_class}: expected an int >= 1")


@dataclass
class EngineConfig:
    """``dataset.test`` of the dataset configs (and the presets of ``config/inference/``): the inference engine's
    test-time settings; their meaning and value checks are ``inference.settings.InferenceSettings``.

    Attributes:
        mode: ``whole`` or ``slide``.
        crop_size: slide window [H, W] in pixels, or None.
        stride: slide step [H, W] in pixels, or None.
        scales: image scale factors.
        flip: also run the left-right flipped image.
        window_batch: slide windows per forward pass (per image).
        resize: test scale [long, short] in pixels (keep ratio), or None: the image's own size.
        accumulate_on: device of the full-size accumulator (``cpu``); in no YAML file: None (the images' device),
            set with ``+dataset.test.accumulate_on=cpu``.
    """

    mode: str = MISSING
    crop_size: Optional[list[int]] = MISSING
    stride: Optional[list[int]] = MISSING
    scales: list[float] = MISSING
    flip: bool = MISSING
    window_batch: int = MISSING
    resize: Optional[list[int]] = MISSING
    accumulate_on: Optional[str] = None


@dataclass
class NncfConfig:
    """``calibration.nncf``: options of ``nncf.quantize``; the YAML sets none (``{}``), so every field is None
    (not passed) until set with ``+calibration.nncf.<key>=...``.

    Attributes:
        preset: ``performance`` | ``mixed``.
        target_device: ``ANY`` | ``CPU`` | ``CPU_SPR`` | ``GPU`` | ``NPU``.
        model_type: ``transformer``.
        ignored_scope: layers kept in float: ``{names, patterns, types}`` (``nncf.IgnoredScope`` checks the keys).
        fast_bias_correction: false: the full bias correction.
    """

    preset: Optional[str] = None
    target_device: Optional[str] = None
    model_type: Optional[str] = None
    ignored_scope: Optional[dict[str, Any]] = None
    fast_bias_correction: Optional[bool] = None

    def given(self) -> dict:
        """The options set (None dropped), as plain values: the keyword arguments before NNCF's enums."""
        return {k: v for k, v in OmegaConf.to_container(OmegaConf.structured(self)).items() if v is not None}


@dataclass
class AccuracyControlConfig:
    """``calibration.accuracy_control``: ``nncf.quantize_with_accuracy_control`` instead of ``nncf.quantize``.

    Attributes:
        enabled: use accuracy control.
        max_drop: largest accepted mIoU drop in points, in [0, 100].
        images: held-out frames, >= 1.
        max_iters: at most this many groups of layers back to float, >= 1; None: no limit.

    Raises:
        ValueError: a value out of its range (key and value named).
    """

    enabled: bool = MISSING
    max_drop: float = MISSING
    images: int = MISSING
    max_iters: Optional[int] = MISSING

    def __post_init__(self):
        key = "calibration.accuracy_control"
        if not 0 <= self.max_drop <= 100:
            raise ValueError(f"{key}.max_drop must be a number of mIoU points in [0, 100], got {self.max_drop!r}")
        if self.images < 1:
            raise ValueError(f"{key}.images must be an integer >= 1, got {self.images!r}")
        if self.max_iters is not None and self.max_iters < 1:
            raise ValueError(f"{key}.max_iters must be an integer >= 1 or null, got {self.max_iters!r}")


@dataclass
class CalibrationConfig:
    """``calibration`` of ``config/benchmark.yaml``: int8 post-training quantisation by NNCF.

    Attributes:
        split: split whose images calibrate.
        images: calibration images, >= 1.
        float_first_last: the first and last convolution stay in float.
        nncf: options of ``nncf.quantize``.
        accuracy_control: options of ``nncf.quantize_with_accuracy_control``.

    Raises:
        ValueError: a value out of its range (key and value named).
    """

    split: str = MISSING
    images: int = MISSING
    float_first_last: bool = MISSING
    nncf: NncfConfig = MISSING
    accuracy_control: AccuracyControlConfig = MISSING

    def __post_init__(self):
        if self.images < 1:
            raise ValueError(f"calibration.images must be an integer >= 1, got {self.images!r}")


#: name in the ConfigStore group ``schema`` -> dataclass
SCHEMAS: dict[str, type] = {
    "ema": EmaConfig,
    "class_uniform": ClassUniformConfig,
    "engine": EngineConfig,
    "calibration": CalibrationConfig,
}


def register_schemas() -> None:
    """Store :data:`SCHEMAS` in Hydra's ConfigStore as ``schema/<name>`` (idempotent)."""
    cs = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        cs.store(group="schema", name=name, node=node)


def checked(node: Any, schema: type, key: str) -> Any:
    """``node`` as an instance of ``schema``: merged onto it (types, unknown keys) and built (``__post_init__``
    ranges). A node composed with the schema passes the first step unchanged.

    Args:
        node: a config node or mapping (None: an empty one, so every ``MISSING`` field fails).
        schema: one of the dataclasses of this module.
        key: the node's place in the config (``ema``, ``calibration``), named in errors.

    Returns:
        the ``schema`` instance.

    Raises:
        ValueError: one line naming the key: a wrong type, an unknown or missing key, or a value out of range.
    """
    if OmegaConf.is_config(node):  # plain values: a key that Hydra's `+key=` added to a typed node is then unknown
        node = OmegaConf.to_container(node, resolve=True)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node if node is not None else {}))
    except OmegaConfBaseException as e:
        where = f"{key}.{e.full_key}" if getattr(e, "full_key", None) else key
        msg = str(getattr(e, "msg", None) or e).splitlines()[0]
        raise ValueError(f"{where}: {msg}") from None


def checked_keys(node: Any, schema: type, key: str) -> dict:
    """The keys that ``node`` sets, typed by ``schema`` (a partial node, e.g. an inference preset): types and
    unknown keys are checked, ranges and absent keys are not.

    Args:
        node: a config node or mapping.
        schema: one of the dataclasses of this module.
        key: what ``node`` is (a file name, a config key), named in errors.

    Returns:
        ``{key: plain value}`` for every key of ``node``, converted to the field's type (``"2"`` -> 2 for an int).

    Raises:
        ValueError: one line naming the key: a wrong type or an unknown key.
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as e:
        raise ValueError(f"{key}: {e.full_key}: {str(e.msg).splitlines()[0]}") from None
    return {k: OmegaConf.to_container(merged, resolve=True)[k] for k in node}


register_schemas()
