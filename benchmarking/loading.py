"""What a benchmark measures: the model (a trained run, ``.ckpt`` or weights file through the loader of
validation.py and predict.py, or ``cfg.model`` with random weights; :func:`load_model`) and the size of the timed
input (:func:`parse_resolution`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from core.run_folder import RunFolder
from models.build import build_model

#: config roots of a training run that a benchmark override may change when ``checkpoint=`` names a run
RUN_CONFIG_ROOTS = ("environment", "dataset", "model", "augmentation")


def parse_resolution(value) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``"1024x512"``, width first as in "Cityscapes at 1024x512") or an int (square).

    Returns:
        (H, W) in pixels.

    Raises:
        ValueError: anything else (the value is named).
    """
    if isinstance(value, int) and value > 0:
        return value, value
    parts = str(value).lower().split("x")
    if len(parts) == 2 and all(p.strip().isdigit() and int(p) > 0 for p in parts):
        return int(parts[1]), int(parts[0])
    raise ValueError(f"resolution={value!r}: expected WIDTHxHEIGHT such as 1024x512 (or one int for a square)")


def run_overrides(overrides: Sequence[str], group_choices: bool) -> list[str]:
    """The overrides of a benchmark command that concern the training config (:data:`RUN_CONFIG_ROOTS`).

    ``group_choices``: keep ``model=<name>``/``dataset=<name>`` (composing ``config/train.yaml`` for a plain
    weights file); a run folder or ``.ckpt`` brings its own choices, so only dotted keys are kept then.
    """
    out = []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.split(".", 1)[0] in RUN_CONFIG_ROOTS and ("." in key or group_choices):
            out.append(o)
    return out


def load_model(cfg: DictConfig, model_choice: str, overrides: Sequence[str]):
    """(model, config, model choice, weights path, run folder) for the benchmark config ``cfg``.

    With ``cfg.checkpoint`` the model and the training config come from
    :func:`inference.loading.load_for_inference` (the benchmark's keys are kept, ``model``, ``dataset``,
    ``augmentation``, ``val_batch_size``, ``num_workers`` and ``environment`` are the run's); otherwise
    ``cfg.model`` with random weights.

    Raises:
        FileNotFoundError: the checkpoint (or the run's best/last checkpoint) is missing.
    """
    ckpt = cfg.get("checkpoint")
    if not ckpt:
        torch.manual_seed(int(cfg.seed))  # random weights: the same model in every backend/precision of a sweep
        return build_model(cfg.model, init_weights=True), cfg, model_choice, None, None
    from inference.loading import find_run_folder, load_for_inference

    src = Path(str(ckpt)).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"checkpoint={ckpt}: no such file or run folder")
    own_config = find_run_folder(src) is not None or src.suffix == ".ckpt"
    model, run_cfg = load_for_inference(
        src, run_overrides(overrides, group_choices=not own_config), which=str(cfg.get("checkpoint_which") or "best")
    )
    merged = cfg.copy()
    OmegaConf.set_struct(merged, False)
    for key in (*RUN_CONFIG_ROOTS, "val_batch_size", "num_workers", "loaded_from"):
        if key in run_cfg:
            merged[key] = run_cfg[key]
    run_dir = run_cfg.loaded_from.run_dir
    run = RunFolder(run_dir) if run_dir else None
    if run is not None:
        model_choice = run.root.parents[1].name
    return model, merged, model_choice, Path(run_cfg.loaded_from.weights), run
