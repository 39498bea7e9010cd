"""Loading a trained model for validation.py / predict.py / benchmark.py: :func:`load_for_inference`.

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

import core.hydra  # noqa: F401  (registers the resolvers used by the configs)
import models.pretrained  # noqa: F401  (registers ${pretrained_norm:...})
from core.command_line import Key
from core.run_folder import RunFolder
from inference.temperature import apply_run_temperature
from models.build import build_model
from models.checkpoint import load_weights, read_checkpoint

log = logging.getLogger("segbench")

REPO = Path(__file__).resolve().parents[1]

# Where validation.py and predict.py run.
DEVICE_KEY = Key("device", "cpu | cuda | cuda:1 ... (default: cuda if available)", metavar="cpu|cuda")


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """Merge ``key=value`` overrides (OmegaConf dotlist, values parsed as YAML) into ``cfg``.

    Strict as main.py's Hydra command line: every key must exist in ``cfg``; ``+key=value`` adds a new key.

    Raises:
        ValueError: an override without ``=``, or an unknown key (named, with how to add it on purpose).
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
    """True when the dotted key names an existing entry of ``cfg`` (list indices allowed)."""
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
        core.run_folder.RunFolderError: no run folder / no ``hparams.yaml``.
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


def config_override_keys() -> set[str]:
    """The top-level names a ``key=value`` config override of validation.py / predict.py may start with: the keys of
    ``config/train.yaml`` and the config groups (folders of ``config/``), e.g. ``dataset``, ``environment``, ``lr``."""
    train = OmegaConf.load(REPO / "config" / "train.yaml")
    groups = {p.name for p in (REPO / "config").iterdir() if p.is_dir()}
    return {str(k) for k in train if k != "defaults"} | groups


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


def _reroot(node, old: str, new: str):
    """``node`` with every string that starts with the path ``old`` moved to start with ``new`` instead."""
    if isinstance(node, dict):
        return {k: _reroot(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_reroot(v, old, new) for v in node]
    if isinstance(node, str) and (node == old or node.startswith(old.rstrip("/") + "/")):
        return new + node[len(old) :]
    return node


def config_from_checkpoint(path: str | Path, overrides: Sequence[str] = (), ckpt: object = None) -> DictConfig:
    """The training config stored in a Lightning ``.ckpt`` (``hyper_parameters.cfg``) with ``overrides``.

    The stored config is resolved (paths are final). An override of ``environment.<key>`` therefore also
    moves every path that began with the stored ``environment.<key>`` (``environment.data_root=/other``
    moves ``dataset.root``), as re-resolving ``hydra/config.yaml`` does for a run folder.

    Args:
        path: the ``.ckpt`` file; ``ckpt``: its content when already read (:func:`models.checkpoint.read_checkpoint`).

    Raises:
        ValueError: the file holds no segbench config (not written by main.py; the file is named).
    """
    ckpt = read_checkpoint(path) if ckpt is None else ckpt
    stored = (ckpt.get("hyper_parameters") or {}).get("cfg") if isinstance(ckpt, dict) else None
    if stored is None:
        raise ValueError(
            f"{path} holds no segbench training config (hyper_parameters.cfg); give a run folder, "
            f"or the model and dataset as overrides (model=<name> dataset=<name>)"
        )
    cfg = apply_overrides(OmegaConf.create(stored), overrides)
    OmegaConf.resolve(cfg)
    data = OmegaConf.to_container(cfg)
    for key, old in (stored.get("environment") or {}).items():
        new = (data.get("environment") or {}).get(key)
        if isinstance(old, str) and isinstance(new, str) and new != old:
            data = _reroot(data, old, new)
            data["environment"][key] = new
    return OmegaConf.create(data)


def find_run_folder(path: str | Path) -> RunFolder | None:
    """The run folder of ``path``: ``path`` itself, or the run holding the checkpoint ``<run>/checkpoints/x.ckpt``."""
    path = Path(path)
    if path.is_dir():
        return RunFolder(path)
    if path.parent.name == "checkpoints" and (path.parent.parent / "hparams.yaml").is_file():
        return RunFolder(path.parent.parent)
    return None


def pretrained_folder(cfg: DictConfig, weights: str | Path) -> RunFolder:
    """The folder standing in for a run folder of a checkpoint file outside any run (author weights, a copied
    ``.ckpt``): ``LOGDIR/<dataset>/pretrained/<file stem>/``, holding its ``validation/`` folders and its
    ``calibration/temperature.json``."""
    return RunFolder(Path(str(cfg.LOGDIR)) / str(cfg.dataset.name) / "pretrained" / Path(str(weights)).stem)


def results_folder(cfg: DictConfig) -> RunFolder:
    """Where the results of a model loaded by :func:`load_for_inference` go: its run folder, else its
    :func:`pretrained_folder`."""
    src = cfg.loaded_from
    return RunFolder(src.run_dir) if src.get("run_dir") else pretrained_folder(cfg, src.weights)


def load_for_inference(
    source: str | Path,
    overrides: Sequence[str] = (),
    which: str = "best",
    device: torch.device | str | None = None,
) -> tuple[torch.nn.Module, DictConfig]:
    """The model and config of ``source``: the one loader of validation.py, predict.py and benchmark.py.

    ``source`` is

    * a run folder of main.py: config re-resolved from ``hydra/config.yaml`` with ``overrides``
      (:func:`load_run_config`), weights ``checkpoints/<which>.ckpt``;
    * a ``.ckpt`` inside a run folder (``<run>/checkpoints/*.ckpt``): the same, with that checkpoint;
    * another ``.ckpt`` of main.py: its stored config with ``overrides`` (:func:`config_from_checkpoint`);
    * any other weights file (plain state dict, or an author checkpoint the model's ``load_pretrained``
      reads): the config composed from ``config/train.yaml`` with ``overrides`` as Hydra overrides
      (``model=<m> dataset=<d> ...``).

    The weights are read once by :func:`models.checkpoint.load_weights` (strict). The model is in eval mode
    (on ``device`` when given); ``cfg.loaded_from`` records ``weights`` (path), ``run_dir`` (or null),
    ``loaded_by`` (``state_dict`` | ``load_pretrained``) and ``temperature``: the run's temperature scaling
    (``calibration/temperature.json``, fitted by ``validation.py fit_temperature=true`` for this checkpoint), which the
    inference engine applies to the logits (:func:`inference.temperature.apply_run_temperature`), or null.

    Returns:
        (model, resolved config).

    Raises:
        FileNotFoundError: ``source`` (or the run's checkpoint) does not exist (named).
        ValueError: bad overrides, unreadable file, no stored config, weights that do not fit the model, or an
            invalid ``calibration/temperature.json`` (the file is named).
    """
    src = Path(source).expanduser()
    run = find_run_folder(src)
    ckpt = None
    if run is not None:
        weights = run.checkpoint(which) if src.is_dir() else src
        cfg = load_run_config(run.root, overrides)
    elif not src.is_file():
        raise FileNotFoundError(f"{src} is neither a run folder nor a checkpoint file")
    elif src.suffix == ".ckpt":
        weights, ckpt = src, read_checkpoint(src)
        cfg = config_from_checkpoint(src, overrides, ckpt)
    else:
        weights, cfg = src, compose_config(overrides)
    model = build_model(cfg.model, init_weights=False)
    report = load_weights(model, weights, strict=True)
    folder = run if run is not None else pretrained_folder(cfg, weights)
    temperature = apply_run_temperature(model, folder, weights)
    OmegaConf.set_struct(cfg, False)
    cfg.loaded_from = {
        "weights": str(weights),
        "run_dir": str(run.root) if run is not None else None,
        "loaded_by": report["loaded_by"],
        "temperature": temperature,
    }
    model.eval()
    if device is not None:
        model.to(device)
    return model, cfg


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
