"""``build_model``: the one way every entry point turns a ``config/model/*.yaml`` node into a model."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

#: Model-config keys that load initial weights at build time (HRNet/ESPNet ``pretrained``, smp
#: ``encoder_weights``, MMSeg ``checkpoint``). Cleared when a full checkpoint is loaded right after.
INIT_WEIGHT_KEYS = ("pretrained", "encoder_weights", "checkpoint")


def build_model(model_cfg: DictConfig, *, init_weights: bool = True) -> torch.nn.Module:
    """Instantiate a model config (Hydra ``_target_``) and check the model contract.

    Args:
        model_cfg: the ``model`` node of a composed config.
        init_weights: False when a trained checkpoint is loaded afterwards (validation.py, predict.py,
            benchmark.py): the keys in :data:`INIT_WEIGHT_KEYS` are set to null so initial weights are
            neither loaded twice nor required on the evaluating machine.

    Raises:
        ValueError: the model declares no ``output_names`` containing ``"out"``.
    """
    if not init_weights:
        model_cfg = OmegaConf.merge(model_cfg, {k: None for k in INIT_WEIGHT_KEYS if k in model_cfg})
    model = instantiate(model_cfg, _convert_="all")
    names = tuple(getattr(model, "output_names", ()))
    if "out" not in names:
        raise ValueError(f"{type(model).__name__} must declare output_names containing 'out', got {names}")
    return model
