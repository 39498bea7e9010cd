"""Reading checkpoint files: the one place that opens them and unwraps the containers they come in.

Every reader of weights goes through here: model weight loaders (HRNet ``model.pretrained``, ESPNet/ESPNetv2
author files, MMSeg checkpoints), ``+finetune_from`` (training/finetune.py) and the inference loader of
``validation.py``/``predict.py``/``benchmark.py`` (inference/loading.py).

Known containers (unwrapped in this order, repeatedly): a Lightning checkpoint (``{"state_dict": ...}``,
model tensors under ``model.`` because segbench models are the ``model`` child of the LightningModule),
``{"model": ...}`` (torchvision references, DeiT/ConvNeXt), ``{"model_state_dict": ...}`` and
``{"state_dict": ...}`` (MMSeg, NVIDIA semantic-segmentation); keys written from ``DataParallel`` /
``DistributedDataParallel`` carry ``module.``, which is stripped.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger("segbench")

#: dict keys under which checkpoints nest their state dict (first match wins, applied repeatedly)
CONTAINER_KEYS = ("state_dict", "model_state_dict", "model")
#: key prefixes of wrapped modules, stripped when every tensor key has one
WRAPPER_PREFIXES = ("module.", "model.")


def read_checkpoint(path: str | os.PathLike) -> object:
    """The object stored in ``path``, loaded on the CPU with ``torch.load(weights_only=True)``.

    Files that hold more than tensors and plain containers (e.g. numpy scalars in NVIDIA or MMSeg ``meta``)
    are loaded with ``weights_only=False`` after a warning naming the file (only load files you trust).

    Raises:
        FileNotFoundError: ``path`` does not exist (named).
        ValueError: the file is not a torch checkpoint (named, with the reader's message).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        log.warning(f"{path}: not loadable with weights_only=True; loading the full pickle (trust this file)")
    except (RuntimeError, EOFError, OSError) as e:  # truncated file, not a zip/pickle
        raise ValueError(f"checkpoint {path} cannot be read: {str(e).splitlines()[0]}") from e
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"checkpoint {path} cannot be read: {str(e).splitlines()[0]}") from e


def unwrap_state_dict(obj: object, path: str | os.PathLike = "<object>") -> dict[str, torch.Tensor]:
    """The model tensors of a loaded checkpoint ``obj`` (see the module docstring for the containers).

    Returns:
        ``{key: tensor}`` with container keys and ``module.``/``model.`` prefixes removed.

    Raises:
        ValueError: no tensors found (``path`` named, with the top-level keys seen).
    """
    top = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    while isinstance(obj, dict):
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, dict) else {}
    if not state:
        raise ValueError(f"{path}: no tensors found (top-level keys {top}; expected a state dict or a container)")
    for prefix in WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
        elif prefix == "model." and any(k.startswith(prefix) for k in state):
            # a Lightning checkpoint whose module also holds buffers outside the model (loss class weights)
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load the checkpoint ``path`` on the CPU and return its model tensors (:func:`unwrap_state_dict`).

    Raises:
        FileNotFoundError: ``path`` does not exist. ValueError: unreadable file or no tensors (named).
    """
    return unwrap_state_dict(read_checkpoint(path), path)


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> dict[str, list[str]]:
    """Load the weights of ``path`` into ``model``; the one weight loader of every entry point.

    * a Lightning checkpoint (main.py), or a file whose tensors fit the model exactly (names and shapes), is
      loaded as a state dict;
    * otherwise, when ``model`` defines ``load_pretrained(path)`` (authors' checkpoints with their own key
      layout: ESPNet, ESPNetv2, HRNet, MMSeg), that method reads it;
    * otherwise the state dict is loaded (``strict`` decides what a difference means).

    Args:
        model: the module to fill (any device; tensors are copied to it).
        path: ``.ckpt``/``.pth``/``.pt`` file.
        strict: True: every key must match (missing/unexpected keys or shape differences are errors);
            False (fine-tuning): tensors whose name and shape fit are loaded, the rest keeps its initialisation.

    Returns:
        ``{"loaded", "missing", "unexpected", "shape_mismatch"}`` key lists (``loaded_by``: ``state_dict`` or
        ``load_pretrained``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable file, no tensors, key or shape mismatch (strict), or no tensor fitting the
            model (not strict); the message names the file and the first differing keys.
    """
    obj = read_checkpoint(path)
    state = unwrap_state_dict(obj, path)
    target = model.state_dict()
    exact = set(state) == set(target) and all(tuple(v.shape) == tuple(target[k].shape) for k, v in state.items())
    lightning = isinstance(obj, dict) and "pytorch-lightning_version" in obj
    if not (exact or lightning) and callable(getattr(model, "load_pretrained", None)):
        model.load_pretrained(str(path))
        keys = list(model.state_dict())
        return {"loaded": keys, "missing": [], "unexpected": [], "shape_mismatch": [], "loaded_by": "load_pretrained"}
    mismatch = sorted(k for k, v in state.items() if k in target and tuple(v.shape) != tuple(target[k].shape))
    report = {
        "loaded": sorted(k for k in state if k in target and k not in mismatch),
        "missing": sorted(k for k in target if k not in state),
        "unexpected": sorted(k for k in state if k not in target),
        "shape_mismatch": mismatch,
        "loaded_by": "state_dict",
    }
    if strict and (report["missing"] or report["unexpected"] or mismatch):
        shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}" for k in mismatch[:3]]
        raise ValueError(
            f"{path} does not fit {type(model).__name__}: {len(report['missing'])} missing keys "
            f"{report['missing'][:3]}, {len(report['unexpected'])} unexpected {report['unexpected'][:3]}, "
            f"{len(mismatch)} shape mismatches {shapes}"
        )
    if not report["loaded"]:
        raise ValueError(
            f"no tensor of {path} fits {type(model).__name__} (first file keys {list(state)[:3]}, "
            f"first model keys {list(target)[:3]})"
        )
    model.load_state_dict({k: state[k] for k in report["loaded"]}, strict=strict)
    return report
