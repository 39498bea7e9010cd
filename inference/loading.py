"""Configs and weights for validation.py / predict.py: a run folder, a Lightning ``.ckpt``, or a plain file.

Re-resolving a run's config (the clean way to change paths after training):
``hparams.yaml`` is the *resolved* config of the run; ``hydra/config.yaml`` the same config with its
interpolations intact (``dataset.root: ${environment.data_root}/camvid``). :func:`load_run_config` takes
the latter, pins ``environment`` to the values the run resolved (so a different ``SEGBENCH_DATA`` in the
shell does not silently change the data), applies the ``key=value`` overrides (OmegaConf dotlist) and
resolves. ``environment.data_root=/other/place`` therefore moves ``dataset.root`` as well. Runs without
``hydra/config.yaml`` (or whose raw config cannot be re-resolved outside Hydra) fall back to
``hparams.yaml`` + overrides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import utils.hydra  # noqa: F401  (registers the resolvers used by the configs)
from models.checkpoint import model_state, read_state_dict
from utils.run_folder import RunFolder

log = logging.getLogger("segbench")

REPO = Path(__file__).resolve().parents[1]


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """Merge ``key=value`` overrides (OmegaConf dotlist, values parsed as YAML) into ``cfg``.

    Strict as main.py's Hydra command line: every key must exist in ``cfg``; ``+key=value`` adds a new key.

    Raises:
        ValueError: an override without ``=``, or an unknown key (the key and the nearest existing parent named).
    """
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ValueError(f"overrides must be key=value, got {bad}")
    for o in overrides:
        key = o.split("=", 1)[0]
        if not key.startswith("+") and not _has_key(cfg, key):
            raise ValueError(f"unknown override key {key!r} (not in the run's config); to add a key use +{o}")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.lstrip("+") for o in overrides]))


def _has_key(cfg: DictConfig, dotted: str) -> bool:
    """True when the dotted ``key`` names an existing entry of ``cfg`` (list indices allowed)."""
    node = cfg
    for part in dotted.split("."):
        if isinstance(node, DictConfig) and part in node:
            node = node._get_node(part)
        elif isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            node = node._get_node(int(part))
        else:
            return False
    return True


def load_run_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The config of the run in ``run_dir`` with ``overrides``, fully resolved (see the module docstring).

    Raises:
        utils.run_folder.RunFolderError: no run folder / no ``hparams.yaml``.
    """
    run = RunFolder(run_dir)
    resolved = run.load_config()
    raw_path = run.hydra_dir / "config.yaml"
    if raw_path.is_file():
        raw = OmegaConf.load(raw_path)
        if "environment" in resolved:
            raw.environment = resolved.environment
        try:
            cfg = apply_overrides(raw, overrides)
            OmegaConf.resolve(cfg)
            return cfg
        except OmegaConfBaseException as e:
            log.warning(f"{raw_path} cannot be re-resolved ({type(e).__name__}: {e}); using {run.hparams}")
    cfg = apply_overrides(resolved, overrides)
    OmegaConf.resolve(cfg)
    return cfg


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """``config/train.yaml`` composed with Hydra ``overrides`` (``model=espnet dataset=camvid ...``), resolved."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "config"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    GlobalHydra.instance().clear()
    OmegaConf.set_struct(cfg, False)
    OmegaConf.resolve(cfg)
    return cfg


def config_from_checkpoint(path: str | Path) -> DictConfig:
    """The resolved training config stored in a Lightning ``.ckpt`` (``hyper_parameters.cfg``).

    Raises:
        ValueError: the file cannot be read, or holds no segbench config (not written by main.py); file named.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip / pickle errors name no file
        raise ValueError(f"cannot read checkpoint {path} (truncated or not a checkpoint): {str(e).splitlines()[0]}") from e
    cfg = (ckpt.get("hyper_parameters") or {}).get("cfg") if isinstance(ckpt, dict) else None
    if cfg is None:
        raise ValueError(
            f"{path} holds no segbench training config (hyper_parameters.cfg); give a run folder, "
            f"or the model and dataset as overrides (model=<name> dataset=<name>)"
        )
    return OmegaConf.create(cfg)


def load_weights(model: torch.nn.Module, path: str | Path) -> str:
    """Load weights into ``model`` from ``path``; returns how (``lightning``, ``load_pretrained``, ``state_dict``).

    * ``.ckpt``: a Lightning checkpoint of main.py: ``state_dict`` entries ``model.<key>``, loaded strictly;
    * otherwise, if the model defines ``load_pretrained(path)`` (author checkpoints), that is called;
    * otherwise a plain state dict (optionally under ``state_dict``/``model``; a ``model.`` prefix is
      stripped) is loaded strictly.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RuntimeError: missing/unexpected keys (from ``load_state_dict``, names the keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".ckpt":
        model.load_state_dict(model_state(read_state_dict(path)))
        return "lightning"
    if callable(getattr(model, "load_pretrained", None)):
        model.load_pretrained(str(path))
        return "load_pretrained"
    state = model_state(read_state_dict(path))
    model.load_state_dict(state)
    return "state_dict"


def resolve_split(dataset_cfg: DictConfig, split: str, need_labels: bool = True) -> str:
    """Map ``val``/``test`` to the dataset's ``val_split``/``test_split`` and check it is labelled.

    Raises:
        ValueError: ``need_labels`` and the dataset class's ``has_labels`` lacks the split (labelled
            splits listed).
    """
    name = {"val": dataset_cfg.get("val_split", "val"), "test": dataset_cfg.get("test_split", "test")}.get(split, split)
    labelled = tuple(getattr(get_class(dataset_cfg._target_), "has_labels", ()))
    if need_labels and name not in labelled:
        raise ValueError(
            f"dataset {dataset_cfg.get('name')!r} has no labels for split {name!r} (labelled splits: "
            f"{list(labelled)}); use predict.py for unlabelled images"
        )
    return name


def pick_device(name: str | None = None) -> torch.device:
    """``name`` or ``cuda`` when available, else ``cpu``."""
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
