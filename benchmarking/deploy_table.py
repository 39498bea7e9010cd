"""The deployment sweep's table from its benchmark records (``scripts/deploy_table.py`` prints it).

One row per record written at or after ``since=`` below the roots: model, backend, precision, fps, latency
p50/p95 ms, memory MiB (peak total incl. weights / peak growth during the forward, of the record's
``memory_kind``), speed-up over eager 32-true of the same setting (the median of its eager 32-true records: a sweep
that times eager fp32 first and last shows the drift of the machine and compares against the middle), ΔmIoU in
points against eager 32-true of the same setting evaluated on the same split, images and weights (exported
backends: the record's own parity reference), label agreement and max |Δ logit| vs eager 32-true, and the
``% of own peak``: GFLOPs x fps (1 MAC = 2 FLOPs) over the matmul peak of the record's own precision (fp32 for
32-true, bf16 for bf16-mixed, int8 for int8, :func:`benchmarking.peak_store.peak_precision`) stored by
``benchmark.py peak`` for the record's hardware profile and thread count in ``peaks=`` (default
``$SEGBENCH_LOGDIR/benchmark/peaks``, else ``logs/benchmark/peaks``). ``peak.<precision>=TFLOPS`` overrides the
stored peak of one precision, ``peak_tflops=`` gives one peak for every precision (the earlier tables). Without a
peak the cell is empty and a line under the table says which ``benchmark.py peak`` to run. An int8 record quantised
with accuracy control (``calibration.accuracy_control``) says so in its precision cell.

A setting (:func:`setting`) is like for like: model name, dataset, resolution, batch size, threads and hardware.
A record without eager 32-true records of its setting has an empty speed-up (and ΔmIoU), never one against another
setting; where one model name has several settings, the model cell names what differs (e.g. ``Unet (1024x512)``).
A failed record (``status: failed``) becomes a row with its one-line error, and the exit code is then 1 (0 when
every record is ok), so ``scripts/deploy_sweep.sh`` says in its exit code that a member failed.

``record=results/<name>.yaml [caption=...] [command=...]`` also writes the table as a results record
(:mod:`core.results`, rendered into the docs by ``benchmark.py render``): one row per printed row with the numbers
its cells show (a failed member: ``fps`` holds ``failed: <error>``), plus ``abs_delta_mIoU`` and ``trained`` (1 for
a checkpoint's weights) for claims; ``measured`` from the benchmark records (hardware profile, threads, torch,
commit, load, the date range of their timestamps, and the peaks used under ``peaks``), its commands the
``command=`` values (e.g. the sweep's) and this command. The file is written atomically once the record validates,
replacing an earlier one; a failing command (no record, a bad name) leaves it as it was and exits 2.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarking.like_for_like import hardware_of
from benchmarking.peak_store import PEAK_PRECISIONS, lookup_peak, peak_precision, percent_of_peak
from core.precision import canonical_precision
from core.results import ResultsError, date_range, distinct, one_or_all, parse_record

#: fields of :func:`setting` after the name, and how the model cell names them when they differ
SETTING_FIELDS = (
    (lambda r: r.dataset, str),
    (lambda r: r.resolution, str),
    (lambda r: r.batch_size, lambda v: f"batch {v}"),
    (lambda r: r.threads, lambda v: f"{v} threads"),
    (hardware_of, str),
)


def setting(r) -> tuple:
    """What a speed-up compares like for like: model name, dataset, resolution, batch size, threads, hardware profile
    (:func:`benchmarking.like_for_like.hardware_of`: CPU model + ISA flags, or GPU name)."""
    return (r.name, *(get(r) for get, _ in SETTING_FIELDS))


def evaluation(r) -> tuple:
    """What a ΔmIoU compares like for like: the setting, the evaluated split and number of images, the weights."""
    return (*setting(r), r.eval_split, r.eval_images, r.weights)


def labels(recs) -> dict:
    """Model cell of each setting of ``recs``: the name, plus the setting fields that differ among the name's
    records."""
    by_name: dict[str, set] = {}
    for r in recs:
        by_name.setdefault(r.name, set()).add(setting(r))
    out = {}
    for name, settings in by_name.items():
        varying = [i for i in range(len(SETTING_FIELDS)) if len({s[1 + i] for s in settings}) > 1]
        for s in settings:
            parts = [SETTING_FIELDS[i][1](s[1 + i]) for i in varying if s[1 + i] not in (None, "")]
            out[s] = f"{name} ({', '.join(parts)})" if parts else name
    return out


class OwnPeak:
    """The ``% of own peak`` cell of each record: the override or the stored peak of its precision, hardware
    profile and thread count; remembers the peaks used and those missing, for the lines under the table."""

    def __init__(self, folder, overrides: dict[str | None, float]):
        self.folder, self.overrides = folder, overrides
        self.used: dict[tuple, float] = {}
        self.missing: dict[tuple, set] = {}

    def cell(self, r) -> str:
        """``100 * gflops * fps / (1000 * peak)`` with one decimal, or empty without GFLOPs or a peak."""
        if not r.gflops:
            return ""
        name, hw = peak_precision(r.precision), hardware_of(r)
        peak = self.overrides.get(name, self.overrides.get(None))
        if peak is None and name is not None:
            peak = lookup_peak(self.folder, hw, r.threads, r.precision)
        if peak is None:
            self.missing.setdefault((hw, r.threads), set()).add(name or str(r.precision))
            return ""
        self.used[(hw, r.threads, name or str(r.precision))] = peak
        return f"{percent_of_peak(r.gflops, r.fps, peak):.1f}"

    def notes(self) -> list[str]:
        """One line per hardware and thread count: the peaks used, or the ``benchmark.py peak`` to run."""
        lines = []
        for (hw, threads, name), peak in sorted(self.used.items(), key=str):
            unit = "TOPS" if name == "int8" else "TFLOP/s"
            lines.append(f"% of own peak: {name} peak {peak:.3g} {unit} on {hw}, {threads} threads")
        for (hw, threads), names in sorted(self.missing.items(), key=str):
            ours = sorted(n for n in names if n in PEAK_PRECISIONS)
            other = sorted(n for n in names if n not in PEAK_PRECISIONS)
            if ours:
                lines.append(
                    f"% of own peak: no stored {', '.join(ours)} peak for {hw} with {threads} threads in "
                    f"{self.folder}: run `python benchmark.py peak precisions=[{','.join(ours)}] threads={threads}` "
                    f"on that machine (or give peak.{ours[0]}=TFLOPS)"
                )
            if other:
                lines.append(f"% of own peak: none for precision {', '.join(other)} ({hw}, {threads} threads)")
        return lines


def precision_cell(r) -> str:
    """The record's precision; for int8 the FakeQuantize nodes of its IR and, quantised with accuracy control, its
    bound and measured drop, e.g. ``int8 (57 quantizers)``, ``int8 (accuracy control: max drop 0.5, measured 0.31
    mIoU points; 57 quantizers)``: two int8 rows of one model with equal counts ran the same IR; for a torch backend
    with ``fold_bn`` the BatchNorms folded, e.g. ``bf16-mixed (58 BatchNorms folded)``."""
    ac = r.accuracy_control or {}
    parts = []
    if ac.get("enabled"):
        measured = f", measured {ac['drop']:.2f}" if ac.get("drop") is not None else ""
        parts.append(f"accuracy control: max drop {ac['max_drop']:g}{measured} mIoU points")
    if getattr(r, "quantizers", None) is not None:
        parts.append(f"{r.quantizers} quantizers")
    if getattr(r, "batchnorm_folded", None):
        parts.append(f"{r.batchnorm_folded} BatchNorms folded")
    return f"{r.precision} ({'; '.join(parts)})" if parts else str(r.precision)


#: the results record's columns (``record=``): key, header, format; the printed table joins p50/p95 and the memories
COLUMNS = (
    ("model", "model", ""),
    ("backend", "backend", ""),
    ("precision", "precision", ""),
    ("fps", "fps", ".2f"),
    ("speedup", "speed-up (x eager 32-true)", ".2f"),
    ("p50_ms", "latency p50 ms", "d"),
    ("p95_ms", "p95 ms", "d"),
    ("mem_peak", "memory peak MiB", "d"),
    ("mem_forward", "forward MiB", "d"),
    ("delta_mIoU", "ΔmIoU (points)", "+.2f"),
    ("label_agreement", "label agreement", ".4f"),
    ("max_abs_dlogit", "max abs Δ logit", ".2g"),
    ("pct_peak", "% of own peak", ".1f"),
)
#: ``measured`` entries the benchmark records do not hold
MISSING = "not recorded by the benchmark records"


#: the printed table's headers (p50/p95 and the two memories share a cell)
HEADERS = (
    "model", "backend", "precision", "fps", "speed-up", "latency p50 / p95 ms", "memory MiB peak / forward",
    "ΔmIoU (points)", "label agreement", "max abs Δ logit", "% of own peak",
)  # fmt: skip


def _value(text: str, kind=float):
    """A printed cell as the record's value: empty -> None, else the number it shows (exactly what is printed)."""
    return kind(text) if text else None


def table_rows(recs, seeded: str, own_peak: OwnPeak) -> tuple[list[dict], list[str]]:
    """The table of the records ``recs`` (in sweep order): one dict per record with its printed ``line`` and the values
    of :data:`COLUMNS` (the numbers its cells show), plus
    ``abs_delta_mIoU``, ``trained`` (1: the record's weights are a checkpoint, 0: random weights) and, for a failed
    record, its ``error``; and the lines on eager 32-true printed under the table.

    Args:
        recs: benchmark records sorted by timestamp.
        seeded: records from this timestamp on build random weights from ``seed`` (``seeded=``).
        own_peak: the ``% of own peak`` cells.

    Returns:
        (rows, lines).
    """
    eager: dict[tuple, list] = {}
    for r in recs:
        if r.status == "ok" and (r.backend, canonical_precision(r.precision, quantized=True)) == ("eager", "32-true"):
            eager.setdefault(setting(r), []).append(r)
    base_fps = {s: statistics.median(r.fps for r in rs) for s, rs in eager.items()}  # speed-up reference
    base_miou: dict[tuple, object] = {}  # mIoU reference: the first eager fp32 record of the evaluation
    for rs in eager.values():
        for r in rs:
            if r.mIoU is not None:
                base_miou.setdefault(evaluation(r), r)
    cell = labels([r for r in recs if r.status == "ok"])  # a failed record may lack resolution, threads...
    rows = []
    for r in recs:
        row = {"model": cell.get(setting(r), r.name), "backend": r.backend, "precision": precision_cell(r)}
        row |= dict.fromkeys(k for k, _, _ in COLUMNS[3:])
        row["trained"] = 0 if r.weights == "random" else 1
        if r.status != "ok":
            row |= {"fps": f"failed: {r.error}", "abs_delta_mIoU": None, "error": r.error}
            row["cells"] = [row["model"], r.backend, row["precision"], row["fps"], *[""] * (len(HEADERS) - 4)]
            rows.append(row)
            continue
        ref = base_fps.get(setting(r))
        speed = f"{r.fps / ref:.2f}" if ref else ""
        b = base_miou.get(evaluation(r))
        if r.parity_delta_mIoU is not None:
            dm = f"{100 * r.parity_delta_mIoU:+.2f}"
        elif b and r.mIoU is not None and (r.weights != "random" or r.timestamp >= seeded):
            dm = f"{100 * (r.mIoU - b.mIoU):+.2f}"
        else:
            dm = ""
        agree = f"{r.parity_label_agreement:.4f}" if r.parity_label_agreement is not None else ""
        diff = f"{r.parity_max_abs_logit:.2g}" if r.parity_max_abs_logit is not None else ""
        peak = own_peak.cell(r)
        p50, p95 = f"{r.latency_ms_p50:.0f}", f"{r.latency_ms_p95:.0f}"
        mems = ["" if v is None else f"{v:.0f}" for v in (r.memory_peak_mib, r.memory_forward_mib)]
        row |= {
            "fps": float(f"{r.fps:.2f}"),
            "speedup": _value(speed),
            "p50_ms": int(p50),
            "p95_ms": int(p95),
            "mem_peak": _value(mems[0], int),
            "mem_forward": _value(mems[1], int),
            "delta_mIoU": _value(dm),
            "label_agreement": _value(agree),
            "max_abs_dlogit": _value(diff),
            "pct_peak": _value(peak),
        }
        row["abs_delta_mIoU"] = None if row["delta_mIoU"] is None else abs(row["delta_mIoU"])
        if r.parity_ok is False:
            agree += " (exceeds tolerance)"
            row["label_agreement"] = agree  # the cell as printed: the figure and that it exceeds the tolerance
        cells = [
            row["model"], r.backend, row["precision"], f"{r.fps:.2f}", f"{speed}x" if speed else "",
            f"{p50} / {p95}", " / ".join(mems), dm, agree, diff, peak,
        ]  # fmt: skip
        row["cells"] = cells
        rows.append(row)
    lines = []
    if eager:
        miou = ", ".join(f"{cell[setting(b)]} {100 * b.mIoU:.2f}" for b in base_miou.values())
        lines.append(f"eager 32-true mIoU (%): {miou}")
        fps = "; ".join(f"{cell[s]} {', '.join(f'{r.fps:.2f}' for r in rs)}" for s, rs in eager.items())
        lines.append(
            f"eager 32-true fps in sweep order: {fps} (speed-ups are relative to the median of each setting's)"
        )
    return rows, lines


def measured(recs, commands: list[str], own_peak: OwnPeak) -> dict:
    """``measured`` of the results record (:func:`measured_of`), and under ``peaks`` the matmul peaks the ``% of own
    peak`` cells used."""
    out = measured_of(recs, commands)
    if own_peak.used:
        out["peaks"] = [
            {"precision": name, "tflops": peak, "hardware": hw, "threads": threads}
            for (hw, threads, name), peak in sorted(own_peak.used.items(), key=str)
        ]
    return out


def measured_of(recs, commands: list[str]) -> dict:
    """``measured`` of a results record made from benchmark records: the dates of their first and last timestamps,
    their commits, hardware profiles, thread counts, torch versions and 1-min load averages (what a record lacks
    reads :data:`MISSING`), and the ``commands``."""
    loads = [r.load_1min for r in recs if r.load_1min is not None]
    if loads:
        span = (
            f"{min(loads):.1f}"
            if f"{min(loads):.1f}" == f"{max(loads):.1f}"
            else f"{min(loads):.1f} to {max(loads):.1f}"
        )
        load = f"1-min load average {span} at the start of the measurements"
    else:
        load = MISSING
    return {
        "date": date_range(r.timestamp for r in recs),
        "commit": distinct(r.commit for r in recs) or MISSING,
        "hardware": distinct(hardware_of(r) for r in recs if r.status == "ok" or r.hardware_profile) or MISSING,
        "threads": one_or_all([r.threads for r in recs]) or MISSING,
        "torch": distinct(r.torch_version for r in recs) or MISSING,
        "load": load,
        "commands": commands,
    }


def build_results(name: str, recs, rows, lines, own_peak: OwnPeak, commands: list[str], caption: str = ""):
    """The table as a :class:`core.results.ResultsRecord` named ``name`` (``record=``).

    The caption is ``caption`` followed by what the columns mean, the span of the records' timestamps, the peaks
    used for ``% of own peak`` (or the lines saying which are missing) and how many members failed; ``notes`` keeps
    the eager 32-true lines printed under the table.

    Raises:
        core.results.ResultsError: no records, or a record that does not validate (e.g. a name that is not
            ``[A-Za-z0-9_.-]+``).
    """
    if not recs:
        raise ResultsError(f"{name}.yaml: no benchmark records to record (check the roots and since=)")
    kinds = distinct(r.memory_kind for r in recs)
    failed = sum(r.status != "ok" for r in recs)
    peaks = "; ".join(n.removeprefix("% of own peak: ") for n in own_peak.notes()) or "no row has GFLOPs"
    text = (
        f"One row per benchmark record, {recs[0].timestamp} .. {recs[-1].timestamp}, in sweep order. Speed-up: fps "
        "over the median eager 32-true fps of the same setting (model, dataset, resolution, batch, threads, hardware). "
        "ΔmIoU in points against eager 32-true on the same split, images and weights (exported backends: their own "
        "parity reference); label agreement and max abs Δ logit vs eager 32-true. Memory: peak total incl. weights / "
        f"peak growth during the forward{f' ({kinds})' if kinds else ''}. % of own peak: GFLOPs x fps (1 MAC = 2 "
        f"FLOPs) over the matmul peak of the row's own precision ({peaks})."
        + (f" {failed} of {len(recs)} members failed: their rows hold the one-line error." if failed else "")
    )
    d = {
        "name": name,
        "caption": f"{caption.strip()} {text}".strip(),
        "measured": measured(recs, commands, own_peak),
        "columns": [{"key": k, "header": h, **({"format": f} if f else {})} for k, h, f in COLUMNS],
        "rows": [{k: v for k, v in row.items() if k != "cells"} for row in rows],
        "notes": "\n".join(lines),
    }
    return parse_record(d, Path(f"{name}.yaml"))


def table_text(rows: list[dict], lines: list[str], own_peak: OwnPeak) -> str:
    """The markdown table of :func:`table_rows` (``pandas.DataFrame.to_markdown``, numbers right-aligned), then its
    eager 32-true lines and the peak notes, as printed."""
    import pandas as pd

    cells = pd.DataFrame([row["cells"] for row in rows], columns=HEADERS)
    align = ["left"] * 3 + ["right"] * (len(HEADERS) - 3)
    parts = [cells.to_markdown(index=False, tablefmt="pipe", colalign=align, disable_numparse=True)]
    parts += ["\n".join(x) for x in (lines, own_peak.notes()) if x]
    return "\n\n".join(parts)
