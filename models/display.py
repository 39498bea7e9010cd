"""Display names of models in tables: ``config/benchmark.yaml`` ``display`` maps a model config choice to format
strings over the model config's keys (``{arch}-{encoder}`` -> ``Unet-resnet18``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

BENCHMARK_CONFIG = Path(__file__).resolve().parents[1] / "config" / "benchmark.yaml"


def describe_model(model_cfg: DictConfig, model_choice: str, display: DictConfig | None = None) -> tuple[str, str]:
    """(name, method) shown in tables, from ``display[model_choice]`` (``config/benchmark.yaml``) formatted with
    the model config's keys, e.g. ``{arch}-{encoder}`` -> ``Unet-resnet18``; the model choice otherwise."""
    fmt = (display or {}).get(model_choice) or {}
    keys = {k: model_cfg.get(k) for k in model_cfg if isinstance(k, str)} if model_cfg is not None else {}
    out = []
    for field in ("name", "method"):
        try:
            out.append(str(fmt.get(field, model_choice)).format(**keys))
        except (KeyError, IndexError, ValueError):
            out.append(model_choice or "model")
    return out[0] or "model", out[1] or "model"


def display_name(model_cfg: DictConfig, choice: str) -> str:
    """Display name of a model config as in benchmark tables (``display`` of ``config/benchmark.yaml``)."""
    return describe_model(model_cfg, choice, OmegaConf.load(BENCHMARK_CONFIG).get("display"))[0]
