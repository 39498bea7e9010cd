"""Encoder weights by name, path or hub tag, never downloaded behind the user's back.

``model.encoder_weights`` of smp models takes

* ``null`` — random initialisation;
* a **name** from the registry ``config/pretrained/<name>.yaml``: the file (``package:<module>/<path>`` inside
  an installed weights package, or a path relative to ``${environment.weights_dir}``), its ``sha256``, the timm
  ``architecture`` its tensors belong to, the ``key_map`` rule (``ordered``: the file's tensors, without
  ``num_batches_tracked``, map one to one in order and shape onto the timm model's; ``timm``: keys already in
  timm layout), the input ``mean``/``std`` the weights expect, ``source`` and ``licence``;
* a **path** to an encoder state dict (keys of ``model.encoder.state_dict()``, or timm layout for ``tu-``
  encoders); its input normalisation is the dataset's unless ``model.input_norm`` says otherwise;
* ``hub`` / ``hub:<weights>`` — timm's (``tu-<name>[.<tag>]``) or smp's (``hub:imagenet``) weights through the
  Hugging Face hub cache; ``HF_HUB_OFFLINE=1`` turns a cache miss into an error instead of a download.

:func:`input_norm` gives the mean/std the weights expect (the ``${pretrained_norm:...}`` resolver fills
``model.input_norm`` with it at compose time, so a run's saved config carries it and every entry point builds
the same :class:`models.normalization.InputConvention`). :func:`load_encoder_weights` loads and checks.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

REGISTRY_DIR = Path(__file__).resolve().parents[1] / "config" / "pretrained"
HUB = "hub"
KEY_MAPS = ("ordered", "timm")
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


@cache
def registry() -> dict[str, dict]:
    """``{name: entry}`` of every ``config/pretrained/<name>.yaml`` (entries as plain dicts)."""
    return {
        p.stem: OmegaConf.to_container(OmegaConf.load(p), resolve=True) for p in sorted(REGISTRY_DIR.glob("*.yaml"))
    }


def timm_name(encoder: str) -> str | None:
    """The timm model behind an smp encoder name (``tu-X[.tag]`` -> ``X``; ``timm-X`` -> ``X``), else None."""
    for prefix in ("tu-", "timm-"):
        if encoder.startswith(prefix):
            return encoder[len(prefix) :].split(".")[0]
    return None


def classify(weights: str | None) -> str:
    """``"none"``, ``"hub"``, ``"name"`` (a registry entry) or ``"path"`` for a ``model.encoder_weights`` value.

    Raises:
        ValueError: a bare word that is neither a registry name nor ``hub[:tag]`` (lists the names).
    """
    if weights is None or str(weights) in ("", "null", "None"):
        return "none"
    w = str(weights)
    if w == HUB or w.startswith(HUB + ":"):
        return "hub"
    if w in registry():
        return "name"
    if "/" in w or w.endswith(WEIGHT_SUFFIXES) or Path(w).exists():
        return "path"
    raise ValueError(
        f"model.encoder_weights={w!r} is no registered weights name ({sorted(registry())}, config/pretrained/), "
        f"no weights file path and not hub[:<weights>]; nothing is downloaded"
    )


def input_norm(weights: str | None, encoder: str) -> dict | None:
    """The input ``{"mean": [3], "std": [3]}`` (RGB, 0..1 scale) that ``weights`` expect, or None (use the dataset's).

    Registry names: the entry's ``mean``/``std``; ``hub``: timm's ``pretrained_cfg`` (``tu-``) or the smp hub
    repository's ``config.json`` (through the hub cache); paths and ``null``: None.
    """
    kind = classify(weights)
    if kind == "name":
        entry = registry()[str(weights)]
        return {"mean": list(entry["mean"]), "std": list(entry["std"])}
    if kind == "hub":
        name = timm_name(encoder) if encoder.startswith("tu-") else None
        if name is not None:
            import timm

            cfg = timm.models.get_pretrained_cfg(encoder[3:]) or timm.models.get_pretrained_cfg(name)
            return {"mean": list(cfg.mean), "std": list(cfg.std)} if cfg is not None else None
        import segmentation_models_pytorch as smp

        settings = smp.encoders.get_preprocessing_params(encoder, _hub_tag(weights))  # config.json via the hub cache
        return {"mean": list(settings["mean"]), "std": list(settings["std"])}
    return None


def _hub_tag(weights: str) -> str:
    return str(weights).partition(":")[2] or "imagenet"


def hub_weights(weights: str | None, encoder: str) -> str | bool | None:
    """The ``encoder_weights`` argument handed to smp: ``True`` (timm encoders) or the smp weights tag for
    ``hub[:tag]`` values, None otherwise (then :func:`load_encoder_weights` loads the file)."""
    if classify(weights) != "hub":
        return None
    return True if encoder.startswith("tu-") else _hub_tag(weights)


def locate(entry: Mapping, name: str, weights_dir: str | Path | None) -> Path:
    """The file of registry entry ``name``: ``package:<module>/<path>`` or a path under ``weights_dir``.

    Raises:
        FileNotFoundError: package not installed or file absent (names the package / expected path).
    """
    spec = str(entry["file"])
    if spec.startswith("package:"):
        module, _, rel = spec[len("package:") :].partition("/")
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(
                f"pretrained weights {name!r}: package {module!r} is not installed "
                f"(pip install {entry.get('package', module)}; pinned in requirements.txt)"
            )
        path = Path(next(iter(found.submodule_search_locations))) / rel
    else:
        path = Path(weights_dir or ".") / spec
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights {name!r}: {path} not found (put it under ${{environment.weights_dir}} = "
            f"{weights_dir}, SEGBENCH_WEIGHTS); nothing is downloaded"
        )
    return path


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``: ``.safetensors``, or a torch file read by :func:`models.checkpoint.read_state_dict`."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    from models.checkpoint import read_state_dict

    return read_state_dict(path)


def _tensors(state: Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def map_ordered(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], origin: str) -> dict:
    """Rename ``source`` tensors to ``target`` keys by position (``num_batches_tracked`` dropped on both sides).

    Returns:
        ``{target key: source tensor}``.

    Raises:
        ValueError: (one line, naming ``origin``) the counts differ or a tensor's shape differs at some
            position (expected target key/shape vs found source key/shape).
    """
    src, dst = _tensors(source), _tensors(target)
    for i, ((sk, sv), (dk, dv)) in enumerate(zip(src, dst)):
        if tuple(sv.shape) != tuple(dv.shape):
            raise ValueError(
                f"{origin}: tensor #{i} expected {dk} {tuple(dv.shape)}, found {sk} {tuple(sv.shape)} "
                f"({len(dst)} tensors expected, {len(src)} found): wrong file for this architecture"
            )
    if len(src) != len(dst):
        raise ValueError(f"{origin}: {len(dst)} tensors expected, {len(src)} found: wrong file for this architecture")
    return {dk: sv for (_, sv), (dk, _) in zip(src, dst)}


def timm_state(name: str, weights_dir: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The tensors of registry entry ``name`` in the layout of its timm ``architecture`` (classifier included).

    Raises:
        FileNotFoundError: see :func:`locate`.
        ValueError: (one line) SHA-256 differs from the entry, or the tensors do not map (:func:`map_ordered`).
    """
    entry = registry()[name]
    path = locate(entry, name, weights_dir)
    digest = sha256(path)
    if entry.get("sha256") and digest != entry["sha256"]:
        raise ValueError(f"{path}: sha256 {digest} differs from {entry['sha256']} of pretrained weights {name!r}")
    state = read_tensors(path)
    if entry["key_map"] not in KEY_MAPS:
        raise ValueError(f"pretrained weights {name!r}: key_map={entry['key_map']!r}; valid: {list(KEY_MAPS)}")
    if entry["key_map"] == "timm":
        return state
    import timm

    with torch.device("meta"):
        reference = timm.create_model(entry["architecture"], pretrained=False, num_classes=entry.get("num_classes", 0))
    return map_ordered(state, reference.state_dict(), f"{path} (as {entry['architecture']})")


def load_encoder_state(encoder: nn.Module, state: Mapping[str, torch.Tensor], origin: str) -> None:
    """Copy ``state`` into ``encoder``; keys as in ``encoder.state_dict()`` or without its ``model.`` prefix
    (timm layout inside smp's ``tu-`` encoders). Extra tensors (a classifier) are ignored.

    Raises:
        ValueError: (one line, naming ``origin``) encoder tensors missing from ``state`` or of another shape.
    """
    own = encoder.state_dict()
    wanted = [k for k in own if not k.endswith("num_batches_tracked")]

    def lookup(k: str):
        return state.get(k, state.get(k[len("model.") :]) if k.startswith("model.") else None)

    missing = [k for k in wanted if lookup(k) is None]
    shapes = [
        f"{k} expected {tuple(own[k].shape)} found {tuple(lookup(k).shape)}"
        for k in wanted
        if k not in missing and tuple(lookup(k).shape) != tuple(own[k].shape)
    ]
    if missing or shapes:
        raise ValueError(
            f"{origin}: does not fit encoder {type(encoder).__name__} ({len(wanted)} tensors expected, "
            f"{len(state)} found): {len(missing)} missing e.g. {missing[:3]}, {len(shapes)} shape mismatches "
            f"e.g. {shapes[:2]}"
        )
    # nn.Module.load_state_dict directly: some smp encoders override it and return None.
    nn.Module.load_state_dict(encoder, {k: lookup(k) for k in wanted}, strict=False)


def load_encoder_weights(encoder: nn.Module, encoder_name: str, weights: str, weights_dir: str | Path | None) -> dict:
    """Load a registry name or a file path into an smp ``encoder`` (``hub`` is handled by smp at build).

    Returns:
        The ``pretrained_cfg`` record: ``{"weights", "file", "sha256", "source", "licence", "mean", "std"}``
        (None values where unknown).

    Raises:
        ValueError: (one line) entry made for another architecture, SHA-256 or tensor mismatch.
        FileNotFoundError: weights file or package missing.
    """
    kind = classify(weights)
    if kind == "name":
        entry = registry()[weights]
        if timm_name(encoder_name) != entry["architecture"]:
            raise ValueError(
                f"pretrained weights {weights!r} hold {entry['architecture']} tensors; encoder {encoder_name!r} "
                f"needs tu-{entry['architecture']} (or timm-{entry['architecture']})"
            )
        path = locate(entry, weights, weights_dir)
        load_encoder_state(encoder, timm_state(weights, weights_dir), f"{path} ({weights})")
        norm = input_norm(weights, encoder_name)
        return {
            "weights": weights,
            "file": str(path),
            "sha256": entry.get("sha256"),
            "source": entry.get("source"),
            "licence": entry.get("licence"),
            **norm,
        }
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.encoder_weights={weights!r} is not a file (registered names: {sorted(registry())}, "
            f"config/pretrained/); nothing is downloaded"
        )
    load_encoder_state(encoder, read_tensors(path), str(path))
    return {"weights": weights, "file": str(path), "sha256": None, "source": None, "licence": None}


def _norm_node(weights=None, encoder=""):
    norm = input_norm(weights, str(encoder))
    return None if norm is None else OmegaConf.create(norm)  # a node: OmegaConf.resolve cannot store a dict


def register_resolver() -> None:
    """Register ``${pretrained_norm:WEIGHTS,ENCODER}`` -> :func:`input_norm` as a node (or null) with OmegaConf
    (idempotent; done on import of this module, which every entry point imports)."""
    if not OmegaConf.has_resolver("pretrained_norm"):
        OmegaConf.register_new_resolver("pretrained_norm", _norm_node)


register_resolver()
