"""Markdown table of a deployment sweep (scripts/deploy_sweep.sh) from its benchmark records.

    python scripts/deploy_table.py [--since 2026-01-01T12:00:00] [--peaks DIR] [--peak bf16=0.4] ROOT [ROOT ...]

One row per record written at or after ``--since`` below the roots: model, backend, precision, fps, latency
p50/p95 ms, memory MiB (peak total incl. weights / peak growth during the forward, of the record's
``memory_kind``), speed-up over eager 32-true of the same setting (the median of its eager 32-true records: a sweep
that times eager fp32 first and last shows the drift of the machine and compares against the middle), ΔmIoU in
points against eager 32-true of the same setting evaluated on the same split, images and weights (exported
backends: the record's own parity reference), label agreement and max |Δ logit| vs eager 32-true, and the
``% of own peak``: GFLOPs x fps (1 MAC = 2 FLOPs) over the matmul peak of the record's own precision (fp32 for
32-true, bf16 for bf16-mixed, int8 for int8, :func:`benchmarking.peak_store.peak_precision`) stored by
``benchmark.py peak`` for the record's hardware profile and thread count in ``--peaks`` (default
``$SEGBENCH_LOGDIR/benchmark/peaks``, else ``logs/benchmark/peaks``). ``--peak PRECISION=TFLOPS`` overrides the
stored peak of one precision, ``--peak-tflops`` gives one peak for every precision (the earlier tables). Without a
peak the cell is empty and a line under the table says which ``benchmark.py peak`` to run. An int8 record quantised
with accuracy control (``calibration.accuracy_control``) says so in its precision cell.

A setting (:func:`setting`) is like for like: model name, dataset, resolution, batch size, threads and hardware.
A record without eager 32-true records of its setting has an empty speed-up (and ΔmIoU), never one against another
setting; where one model name has several settings, the model cell names what differs (e.g. ``Unet (1024x512)``).
A failed record (``status: failed``) becomes a row with its one-line error, and the exit code is then 1 (0 when
every record is ok), so ``scripts/deploy_sweep.sh`` says in its exit code that a member failed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarking.like_for_like import hardware_of
from benchmarking.peak_store import PEAK_PRECISIONS, default_peaks_dir, lookup_peak, peak_precision, percent_of_peak
from core.precision import canonical_precision
from core.records import load_records

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


def peak_overrides(values: list[str], every: float | None = None) -> dict[str | None, float]:
    """``--peak PRECISION=TFLOPS`` values as ``{precision: TFLOP/s}`` (precision as :func:`peak_precision` names
    it), with ``every`` (``--peak-tflops``) under the key None for the precisions not named.

    Raises:
        SystemExit: a value that is not ``fp32|bf16|int8=<positive number>`` (one line, exit 2).
    """
    out: dict[str | None, float] = {} if every is None else {None: every}
    for v in values:
        name, _, number = v.partition("=")
        try:
            peak = float(number)
        except ValueError:
            peak = -1.0
        if name not in PEAK_PRECISIONS or peak <= 0:
            sys.exit(
                f"deploy_table.py: error: --peak {v}: use PRECISION=TFLOPS with PRECISION in {list(PEAK_PRECISIONS)}"
            )
        out[name] = peak
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
                    f"on that machine (or give --peak {ours[0]}=TFLOPS)"
                )
            if other:
                lines.append(f"% of own peak: none for precision {', '.join(other)} ({hw}, {threads} threads)")
        return lines


def precision_cell(r) -> str:
    """The record's precision, and for int8 quantised with accuracy control its bound and measured drop, e.g.
    ``int8 (accuracy control: max drop 0.5, measured 0.31 mIoU points)``."""
    ac = r.accuracy_control or {}
    if not ac.get("enabled"):
        return str(r.precision)
    measured = f", measured {ac['drop']:.2f}" if ac.get("drop") is not None else ""
    return f"{r.precision} (accuracy control: max drop {ac['max_drop']:g}{measured} mIoU points)"


def main(argv=None) -> int:
    """Print the table of the records below the roots; returns 1 when a record failed, else 0."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("roots", nargs="+")
    p.add_argument("--since", default="", help="only records with timestamp >= this (ISO, seconds)")
    p.add_argument(
        "--seeded",
        default="",
        help="records from this time on build random weights from `seed` (same model in every process); before it, "
        "ΔmIoU of a torch backend with random weights is left empty (other weights than its eager row)",
    )
    p.add_argument("--peaks", default=None, help="folder of `benchmark.py peak` files (default LOGDIR/benchmark/peaks)")
    p.add_argument(
        "--peak", action="append", default=[], help="PRECISION=TFLOPS: this peak instead of the stored one (repeatable)"
    )
    p.add_argument("--peak-tflops", type=float, default=None, help="one peak in TFLOP/s for every precision")
    a = p.parse_args(argv)
    own_peak = OwnPeak(a.peaks or default_peaks_dir(), peak_overrides(a.peak, a.peak_tflops))
    recs = sorted(
        (r for root in a.roots for _, r in load_records(root) if r.timestamp >= a.since), key=lambda r: r.timestamp
    )
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
    print(
        "| model | backend | precision | fps | speed-up | latency p50 / p95 ms | memory MiB peak / forward | ΔmIoU (points) "
        "| label agreement | max abs Δ logit | % of own peak |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in recs:
        if r.status != "ok":
            print(
                f"| {cell.get(setting(r), r.name)} | {r.backend} | {precision_cell(r)} | failed: {r.error} | | | | | | | |"
            )
            continue
        ref = base_fps.get(setting(r))
        speed = f"{r.fps / ref:.2f}x" if ref else ""
        b = base_miou.get(evaluation(r))
        if r.parity_delta_mIoU is not None:
            dm = f"{100 * r.parity_delta_mIoU:+.2f}"
        elif b and r.mIoU is not None and (r.weights != "random" or r.timestamp >= a.seeded):
            dm = f"{100 * (r.mIoU - b.mIoU):+.2f}"
        else:
            dm = ""
        agree = f"{r.parity_label_agreement:.4f}" if r.parity_label_agreement is not None else ""
        diff = f"{r.parity_max_abs_logit:.2g}" if r.parity_max_abs_logit is not None else ""
        if r.parity_ok is False:
            agree += " (exceeds tolerance)"
        peak = own_peak.cell(r)
        mem = " / ".join("" if v is None else f"{v:.0f}" for v in (r.memory_peak_mib, r.memory_forward_mib))
        print(
            f"| {cell[setting(r)]} | {r.backend} | {precision_cell(r)} | {r.fps:.2f} | {speed} | {r.latency_ms_p50:.0f} / "
            f"{r.latency_ms_p95:.0f} | {mem} | {dm} | {agree} | {diff} | {peak} |"
        )
    if eager:
        miou = ", ".join(f"{cell[setting(b)]} {100 * b.mIoU:.2f}" for b in base_miou.values())
        print(f"\neager 32-true mIoU (%): {miou}")
        fps = "; ".join(f"{cell[s]} {', '.join(f'{r.fps:.2f}' for r in rs)}" for s, rs in eager.items())
        print(f"eager 32-true fps in sweep order: {fps} (speed-ups are relative to the median of each setting's)")
    notes = own_peak.notes()
    if notes:
        print("\n" + "\n".join(notes))
    failed = [r for r in recs if r.status != "ok"]
    if failed:
        print(f"{len(failed)} of {len(recs)} records failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
