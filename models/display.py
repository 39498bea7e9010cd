"""Display names of models in tables: the ``display`` config node (``config/display/default.yaml``, in the benchmark
and training configs) maps a model config choice to format strings over the model config's keys
(``{arch}-{encoder}`` -> ``Unet-resnet18``)."""

from __future__ import annotations

from collections.abc import Mapping

from omegaconf import DictConfig


def describe_model(
    model_cfg: DictConfig, model_choice: str, display: Mapping | DictConfig | None = None
) -> tuple[str, str]:
    """(name, method) shown in tables.

    Args:
        model_cfg: the model config node, whose keys fill the format strings.
        model_choice: the model config choice (``smp``, ``hrnet_ocr``), the key of ``display``.
        display: the composed config's ``display`` node: ``{choice: {name: fmt, method: fmt}}``; None or a choice
            it lacks: the model choice itself.

    Returns:
        ``display[model_choice]`` formatted with the model config's keys, e.g. ``{arch}-{encoder}`` ->
        ``Unet-resnet18``; the model choice where a format names a key the model config lacks.
    """
    fmt = (display or {}).get(model_choice) or {}
    keys = {k: model_cfg.get(k) for k in model_cfg if isinstance(k, str)} if model_cfg is not None else {}
    out = []
    for field in ("name", "method"):
        try:
            out.append(str(fmt.get(field, model_choice)).format(**keys))
        except (KeyError, IndexError, ValueError):
            out.append(model_choice or "model")
    return out[0] or "model", out[1] or "model"
