"""Reading checkpoint files: the one place that unwraps the containers checkpoints come in.

Used by model weight loaders (HRNet ``model.pretrained``), ``+finetune_from`` (training/finetune.py) and
``validation.py``/``predict.py``/``benchmark.py`` (inference/loading.py).
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import torch

log = logging.getLogger("segbench")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a checkpoint file on the CPU and unwrap ``state_dict`` / ``model`` containers (tensors only).

    Raises:
        FileNotFoundError: ``path`` does not exist. ValueError: the file cannot be read (truncated, not a
        checkpoint) or holds no tensors (file named).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # e.g. NVIDIA checkpoints also pickle numpy scalars (mean_iu)
            log.warning(f"{path}: not loadable with weights_only=True; loading the full pickle (trust this file)")
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as e:  # truncated/not a checkpoint
        raise ValueError(f"cannot read checkpoint {path} (truncated or not a checkpoint): {str(e).splitlines()[0]}") from e
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, dict) else {}
    if not state:
        raise ValueError(f"{path}: no tensors found (expected a state dict or a dict with 'state_dict')")
    return state


def model_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's own keys of a segbench Lightning checkpoint (``model.<key>`` -> ``<key>``); other dicts unchanged.

    segbench models are the ``model`` child of the LightningModule, so every model tensor of a ``.ckpt`` is
    ``model.``-prefixed; when no key has that prefix the dict is returned as it is.
    """
    inner = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    return inner or state
