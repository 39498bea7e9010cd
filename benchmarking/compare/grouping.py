"""Configurations of ``benchmark.py compare``: which runs form one row (never two datasets, never two inference
settings), by their overrides or by ``by=`` keys, which are checked against what the runs have."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


class UnknownKeyError(ValueError):
    """A ``by=`` key that no run has (in its overrides, summary or resolved config)."""


_MISSING = object()


@lru_cache(maxsize=4096)
def _run_config(summary_path: str):
    """The run's resolved ``hparams.yaml`` beside its ``summary.json`` (read once per run), or None."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.load(Path(summary_path).parent / "hparams.yaml")
    except (OSError, ValueError):
        return None


def _config_value(row: dict, key: str):
    from omegaconf import OmegaConf

    cfg = _run_config(row["_summary_path"])
    return _MISSING if cfg is None else OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False)


def _lookup(row: dict, key: str):
    """Value of ``key`` for ``by=``: the run's overrides, then summary fields, then its resolved config
    (``_MISSING`` when none has it; a key set to null is ``None``)."""
    if key in row["_overrides"]:
        return row["_overrides"][key]
    if key in row["_summary"] and not isinstance(row["_summary"][key], dict | list):
        return row["_summary"][key]
    value = _config_value(row, key)
    return value if value is _MISSING or value is None else str(value)


def _known_keys(rows: list[dict]) -> list[str]:
    """Every dotted key of the runs' resolved configs, override keys and scalar summary fields (for hints)."""
    from omegaconf import OmegaConf

    keys = set()
    for r in rows[:20]:
        keys |= set(r["_overrides"]) | {k for k, v in r["_summary"].items() if not isinstance(v, dict | list)}
        cfg = _run_config(r["_summary_path"])
        if cfg is None:
            continue
        stack = [("", OmegaConf.to_container(cfg))]
        while stack:
            prefix, node = stack.pop()
            for k, v in node.items():
                keys.add(prefix + str(k))
                if isinstance(v, dict):
                    stack.append((f"{prefix}{k}.", v))
    return sorted(keys)


def check_by_keys(rows: list[dict], by: list[str]) -> None:
    """Refuse a ``by=`` key that no run has.

    Raises:
        UnknownKeyError: naming the key and the closest existing keys (``difflib``).
    """
    import difflib

    for key in by:
        if all(_lookup(r, key) is _MISSING for r in rows):
            known = _known_keys(rows)
            near = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(near)}?" if near else f"keys look like {', '.join(known[:5])}, ..."
            raise UnknownKeyError(f"by= key {key!r} is in no run's overrides, summary or config; {hint}")


def assign_configurations(rows: list[dict], by: list[str] | None = None) -> None:
    """Set ``row["config"]`` (a label) so that equal labels = one configuration.

    Runs of different datasets are never one configuration (the label then ends in ``(dataset)``), nor are values
    of different inference settings (``value_setting``, the label then ends in ``[setting]``). Without ``by``: runs
    with equal :func:`configuration_overrides` (``seed`` dropped); the label lists the overrides that vary between
    configurations (the model's display name when none vary). With ``by``: the values of those keys
    (``key=value``, space-separated; ``key=(absent)`` for a run without the key).

    Raises:
        UnknownKeyError: a ``by`` key that no run has (:func:`check_by_keys`).
    """
    if by:
        check_by_keys(rows, by)
        for r in rows:
            values = [(k, _lookup(r, k)) for k in by]
            r["_group"] = " ".join(f"{k}={'(absent)' if v is _MISSING else v}" for k, v in values)
    else:
        groups = {tuple(r["_overrides"].items()) for r in rows}
        all_keys = sorted({k for g in groups for k, _ in g})
        varying = [k for k in all_keys if len({dict(g).get(k) for g in groups}) > 1]
        for r in rows:
            o = r["_overrides"]
            r["_group"] = " ".join(f"{k}={o[k]}" for k in varying if k in o) or str(r["model"])
            r["_group_key"] = tuple(o.items())
    datasets = {str(r["dataset"]) for r in rows}
    settings = {r.get("value_setting", "") for r in rows}
    labels: dict[tuple, str] = {}
    for r in rows:
        key = (str(r["dataset"]), r.get("_group_key", r["_group"]), r.get("value_setting", ""))
        label = r["_group"] + (f" ({r['dataset']})" if len(datasets) > 1 else "")
        if len(settings) > 1:
            label += f" [{r.get('value_setting') or 'no test record'}]"
        while label in labels.values() and labels.get(key) != label:
            label += "'"  # equal display label, different configuration: never merged
        labels[key] = label
        r["config"] = label


def common_overrides(rows: list[dict]) -> str:
    """Overrides shared by every run (without ``seed`` and :data:`NOT_CONFIGURATION`), for table captions."""
    if not rows:
        return ""
    shared = set(rows[0]["_overrides"].items())
    for r in rows[1:]:
        shared &= set(r["_overrides"].items())
    return " ".join(f"{k}={v}" for k, v in sorted(shared))
