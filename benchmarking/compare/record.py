"""``benchmark.py compare record=results/<name>.yaml``: the experiments table as a results record
(:mod:`core.results`), with how its runs were measured taken from their ``summary.json`` (commit, hardware
profile, threads, torch, load, dates, the training commands) and the compare command itself."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pandas as pd

from benchmarking.compare.runs import SELECT, parse_override
from core.results import ResultsRecord, clean_value, date_range, distinct, one_or_all, parse_record, today
from core.versions import commit_label

#: override keys left out of a record's training commands (the seed is listed once; paths of the log folder)
RUN_ONLY = ("seed", "LOGDIR", "hydra")


def provenance(rows: list[dict], argv: list[str]) -> dict:
    """``measured`` of the record: from the runs' summaries (``devices.hardware_profile``, ``devices.threads``,
    ``versions.torch``, ``git``, ``started``/``ended``, ``load_1min_max``, ``overrides``) plus the compare
    command ``argv``. Where no run recorded its hardware profile, the profile of the machine running compare is
    given and marked as such."""
    from core.measure import hardware_profile

    summaries = [r["_summary"] for r in rows]
    devices = [s.get("devices") or {} for s in summaries]
    hardware = distinct(d.get("hardware_profile") for d in devices)
    if not hardware:
        hardware = f"{hardware_profile('cpu')}, {os.cpu_count()} cores (the machine running compare; not in the runs)"
    commits = distinct(commit_label(s.get("git")) for s in summaries)
    date = date_range(s.get(k) for s in summaries for k in ("started", "ended"))
    loads = [s["load_1min_max"] for s in summaries if s.get("load_1min_max") is not None]
    train = []
    for s in summaries:
        kept = [o for o in s.get("overrides") or [] if parse_override(o)[0].split(".")[0] not in RUN_ONLY]
        seeds_dropped = "python main.py " + " ".join(shlex.quote(o) for o in kept)
        if seeds_dropped not in train:
            train.append(seeds_dropped)
    seeds = distinct(s.get("seed") for s in summaries)
    missing = "not recorded by the runs"
    if not date:
        date = f"{today()} (the date of compare; the runs recorded none)"
    return {
        "date": date,
        "commit": commits.strip(", ") or missing,
        "hardware": hardware,
        "threads": one_or_all([d.get("threads") for d in devices]) or missing,
        "torch": distinct((s.get("versions") or {}).get("torch") for s in summaries) or missing,
        "load": f"1-min load average up to {max(loads):.1f} at epoch ends" if loads else missing,
        "commands": [*(f"{c}  # seed={seeds}" for c in train), "python benchmark.py " + shlex.join(argv)],
    }


def build_record(
    name: str, df: pd.DataFrame, rows: list[dict], metric: str, argv: list[str], caption: str = ""
) -> ResultsRecord:
    """The experiments table ``df`` as a :class:`core.results.ResultsRecord` named ``name``."""
    m, select = metric, df.attrs.get("select", "best")
    fps_cols = df.attrs.get("fps_columns", {})
    columns = [
        {"key": "config", "header": "configuration"},
        {"key": "n", "header": "n"},
        {"key": "mean_ci", "header": f"{m} mean ± 95% CI"},
        {"key": f"{m}_std", "header": "std", "format": ".2f"},
        {"key": "runs", "header": f"{m} per run (seed order)"},
    ]
    if "p_welch" in df:
        columns += [
            {"key": "delta_mean", "header": "Δ mean", "format": "+.2f"},
            {"key": "p_welch", "header": "p (Welch)", "format": ".3f"},
        ]
    # GFLOPs at the resolution of the fps when there is one benchmark setting, else at the training crop_size
    gflops = f"{next(iter(fps_cols))} GFLOPs" if len(fps_cols) == 1 else "GFLOPs"
    columns += [
        {"key": "params_M", "header": "params (M)", "format": ".2f"},
        {"key": gflops, "header": "GFLOPs", "format": ".1f"},
        {"key": "time_s_mean", "header": "train time (s)", "format": ".0f"},
        *({"key": c, "header": c, "format": ".2f", "best": "max"} for c in fps_cols),
    ]
    out = []
    for _, r in df.iterrows():
        row = {k: clean_value(v) for k, v in r.items() if isinstance(k, str)}
        ci = "" if row.get(f"{m}_ci95") is None else f" ± {row[f'{m}_ci95']:.2f}"
        row["mean_ci"] = "—" if row.get(f"{m}_mean") is None else f"{row[f'{m}_mean']:.2f}{ci}"
        row["runs"] = row.pop(f"{m}_runs")
        out.append(row)
    text = (
        f"{m} in % ({SELECT[select]}) per configuration: mean with the Student-t 95 % half-width, sample std "
        f"(ddof 1), every run's value"
        + (", Δ mean and Welch's p against the baseline" if "p_welch" in df else "")
        + "".join(f"; {c}: {s}" for c, s in fps_cols.items())
        + (
            "; GFLOPs at the fps resolution (1 MAC = 2 FLOPs)"
            if len(fps_cols) == 1
            else "; GFLOPs at the training crop_size (1 MAC = 2 FLOPs)"
        )
        + "."
    )
    d = {
        "name": name,
        "caption": f"{caption.strip()} {text}".strip(),
        "measured": provenance(rows, argv),
        "columns": columns,
        "rows": out,
    }
    return parse_record(d, Path(f"{name}.yaml"))
