"""Corrupted-input robustness of a trained model: validation.py ``corruptions=... severities=...``.

After the clean evaluation of :func:`inference.validate.run_validation`, the same split is evaluated once per
corruption x severity with the same inference settings, through :func:`inference.validate.evaluate_config` with
``corruption=(name, severity, seed)`` (:class:`datasets.corruptions.Corrupt` is then the first test transform: the
uint8 image is corrupted before normalisation, the labels are untouched). mPC and rPC follow Michaelis et al. (2019)
with mIoU as the measure (Kamann & Rother, CVPR 2020): :mod:`metrics.robustness`.

Written into the validation folder: ``robustness.csv`` (corruption, severity, mIoU, aAcc, seconds), ``robustness.json``
(the grid, the clean figures, mPC, rPC, per-corruption means and seconds, seed, CPU, threads, load) and the keys
``mPC``, ``rPC``, ``mIoU_corruption``, ``robustness`` added to ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from core.measure import hardware_profile
from core.records import atomic_write_text
from core.versions import git_info
from inference.validate import evaluate_config
from metrics.robustness import robustness_metrics

log = logging.getLogger("segbench")
#: the override keys validation.py takes out of its ``key=value`` list
KEYS = ("corruptions", "severities", "corruption_seed")


@dataclass(frozen=True)
class Protocol:
    """A corruption x severity grid: ``corruptions`` (names), ``severities`` (1..5), ``seed`` (:func:`corrupt`)."""

    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    seed: int = 0

    @property
    def label(self) -> str:
        """``"15 benchmark corruptions"`` for the full set (any order), else the names joined by ``+``."""
        from datasets.corruptions import corruption_names

        full = len(self.corruptions) == 15 and set(self.corruptions) == set(corruption_names())
        return "15 benchmark corruptions" if full else "+".join(self.corruptions)


def _parse_value(key: str, text: str):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(f"{key}={text}").value()
    except Exception as e:  # the grammar's message spans lines
        raise ValueError(f"{key}={text}: not a value or a list [a,b,...] ({type(e).__name__})") from None


def pop_protocol(overrides: list[str]) -> tuple[Protocol | None, list[str]]:
    """Take ``corruptions=``, ``severities=`` and ``corruption_seed=`` out of validation.py's overrides.

    ``corruptions=all`` is the 15 benchmark corruptions, otherwise a name or a list ``[gaussian_noise,fog]``;
    ``severities`` a number or a list (default ``[1,2,3,4,5]``); ``corruption_seed`` an integer (default 0). The last
    of repeated keys wins.

    Returns:
        (the protocol, or None without ``corruptions=``; the other overrides).

    Raises:
        ValueError: an unknown corruption (one line listing the valid names), a severity outside 1..5, a seed that
            is not an integer, ``severities``/``corruption_seed`` without ``corruptions``.
    """
    from datasets.corruptions import SEVERITIES, check_corruption, check_severity, corruption_names

    found, rest = {}, []
    for o in overrides:
        key, eq, value = o.partition("=")
        if eq and key in KEYS:
            found[key] = _parse_value(key, value)
        else:
            rest.append(o)
    if "corruptions" not in found:
        if found:
            raise ValueError(f"{' and '.join(found)} given without corruptions=all|[name,...]")
        return None, rest
    names, severities = found["corruptions"], found.get("severities", list(SEVERITIES))
    names = corruption_names() if names == "all" else names if isinstance(names, list) else [names]
    severities = severities if isinstance(severities, list) else [severities]
    if not names or not severities:
        raise ValueError("corruptions= and severities= need at least one value each")
    for name in names:
        check_corruption(str(name))
    for s in severities:
        check_severity(s)
    seed = found.get("corruption_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"corruption_seed={seed!r} is not an integer")
    protocol = Protocol(tuple(dict.fromkeys(map(str, names))), tuple(sorted(set(map(int, severities)))), seed)
    return protocol, rest


def table(clean: dict, rows: list[dict], summary: dict) -> str:
    """The printed summary: mIoU (%) per corruption and severity, the per-corruption mean and seconds, mPC, rPC."""
    sev = summary["severities"]
    lines = [f"{'corruption':<18} " + " ".join(f"{'s' + str(s):>6}" for s in sev) + f" {'mean':>6} {'seconds':>8}"]
    for c in summary["corruptions"]:
        mine = {r["severity"]: r for r in rows if r["corruption"] == c}
        cells = " ".join(f"{100 * mine[s]['mIoU']:6.2f}" for s in sev)
        seconds = sum(r["seconds"] for r in mine.values())
        lines.append(f"{c:<18} {cells} {100 * summary['mIoU_corruption'][c]:6.2f} {seconds:8.1f}")
    rpc = "n/a" if summary["rPC"] is None else f"{100 * summary['rPC']:.2f} %"
    lines.append(f"clean mIoU {100 * clean['mIoU']:.2f}  mPC {100 * summary['mPC']:.2f}  rPC {rpc}")
    return "\n".join(lines)


def corruption_overhead(seconds_corrupted: float, seconds_clean: float, num_images: int) -> float | None:
    """Seconds per image that one corrupted evaluation spent beyond the clean one (corrupting the image).

    Args:
        seconds_corrupted: wall seconds of one corrupted pass over the split (mean over its severities).
        seconds_clean: wall seconds of the clean pass over the same split.
        num_images: images in the split.

    Returns:
        ``(seconds_corrupted - seconds_clean) / num_images``, or ``None`` where that is negative: the clean pass
        was slower (the machine's load changed between the passes), so the difference does not measure the
        corruption; ``scripts/corruption_cost.py`` times the corruption alone.
    """
    extra = (seconds_corrupted - seconds_clean) / max(num_images, 1)
    return extra if extra >= 0 else None


def run_robustness(
    cfg: DictConfig,
    model: torch.nn.Module,
    split: str,
    out_dir: str | Path,
    protocol: Protocol,
    clean: dict,
    device: torch.device | str = "cpu",
) -> dict:
    """Evaluate every corruption x severity of ``protocol`` and write the robustness files (module docstring).

    Args:
        cfg: the config :func:`inference.validate.run_validation` evaluated with (same inference settings).
        model: the model it evaluated.
        split: the split it evaluated.
        out_dir: its folder (holding ``metrics.json``).
        protocol: the grid (:func:`pop_protocol`).
        clean: its ``metrics.json`` record (the clean mIoU, aAcc, seconds).
        device: evaluation device.

    Returns:
        ``metrics.json`` with ``mPC``, ``rPC`` (mPC / clean mIoU), ``mIoU_corruption`` and ``robustness`` added.
    """
    out = Path(out_dir)
    started, load = time.time(), os.getloadavg()[0]
    rows = []
    for c in protocol.corruptions:
        for s in protocol.severities:
            ev, _, _ = evaluate_config(model, cfg, split, device, corruption=(c, s, protocol.seed))
            m = ev.metrics
            rows.append({"corruption": c, "severity": s, "mIoU": m["mIoU"], "aAcc": m["aAcc"], "seconds": ev.seconds})
            log.info(f"{c} severity {s}: mIoU {100 * m['mIoU']:.2f} ({ev.num_images} images, {ev.seconds:.1f} s)")
    summary = robustness_metrics(clean["mIoU"], {(r["corruption"], r["severity"]): r["mIoU"] for r in rows})
    seconds = {c: sum(r["seconds"] for r in rows if r["corruption"] == c) for c in protocol.corruptions}
    n = int(clean["num_images"])
    record = {
        **summary,
        "clean": {k: clean.get(k) for k in ("mIoU", "aAcc", "mAcc", "seconds")},
        "seed": protocol.seed,
        "split": clean.get("split"),
        "num_images": n,
        "results": rows,
        "seconds_corruption": seconds,
        # time per image and severity beyond the clean evaluation: corrupting the image (in the loader)
        "seconds_per_image_corruption": {
            c: corruption_overhead(t / len(protocol.severities), float(clean["seconds"]), n) for c, t in seconds.items()
        },
        "seconds_total": round(time.time() - started, 3),
        "cpu": hardware_profile("cpu"),
        "threads": torch.get_num_threads(),
        "num_workers": int(cfg.get("num_workers", 0)),
        "load_1min": round(load, 2),
        "torch": torch.__version__,
        "git": git_info(),
    }
    pd.DataFrame(rows, columns=["corruption", "severity", "mIoU", "aAcc", "seconds"]).to_csv(
        out / "robustness.csv", index=False
    )
    atomic_write_text(out / "robustness.json", json.dumps(record, indent=2))
    metrics = {
        **clean,
        "mPC": summary["mPC"],
        "rPC": summary["rPC"],
        "mIoU_corruption": summary["mIoU_corruption"],
        "robustness": {
            "corruptions": summary["corruptions"],
            "severities": summary["severities"],
            "seed": protocol.seed,
            "label": protocol.label,
        },
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    print(table(clean, rows, summary))
    print(
        f"{len(rows)} corrupted evaluations of {n} images in {record['seconds_total']:.1f} s "
        f"({torch.get_num_threads()} threads) -> {out / 'robustness.csv'}"
    )
    return metrics
