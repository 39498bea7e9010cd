"""Markdown table of a deployment sweep (scripts/deploy_sweep.sh) from its benchmark records.

    python scripts/deploy_table.py [--since 2026-01-01T12:00:00] [--peak-tflops 0.7] ROOT [ROOT ...]

One row per record written at or after ``--since`` below the roots: model, backend, precision, fps, latency
p50/p95 ms, memory MiB (peak total incl. weights / peak growth during the forward, of the record's
``memory_kind``), speed-up over eager 32-true of the same model (the median of its eager 32-true records: a sweep
that times eager fp32 first and last shows the drift of the machine and compares against the middle), ΔmIoU in
points against eager 32-true of the same model (exported backends: the record's own parity reference), label
agreement and max |Δ logit| vs eager 32-true, and the fraction of ``--peak-tflops`` reached (GFLOPs x fps, 1 MAC =
2 FLOPs). A failed record (``status: failed``) becomes a row with its one-line error, and the exit code is then 1
(0 when every record is ok), so ``scripts/deploy_sweep.sh`` says in its exit code that a member failed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarking.records import load_records
from utils.precision import canonical_precision


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("roots", nargs="+")
    p.add_argument("--since", default="", help="only records with timestamp >= this (ISO, seconds)")
    p.add_argument(
        "--seeded",
        default="",
        help="records from this time on build random weights from `seed` (same model in every process); before it, "
        "ΔmIoU of a torch backend with random weights is left empty (other weights than its eager row)",
    )
    p.add_argument("--peak-tflops", type=float, default=0.7, help="reference peak in TFLOP/s")
    a = p.parse_args(argv)
    recs = [r for root in a.roots for _, r in load_records(root) if r.timestamp >= a.since]
    eager: dict[str, list] = {}
    for r in sorted(recs, key=lambda r: r.timestamp):
        if r.status == "ok" and (r.backend, canonical_precision(r.precision, quantized=True)) == ("eager", "32-true"):
            eager.setdefault(r.name, []).append(r)
    base = {name: rs[0] for name, rs in eager.items()}  # mIoU reference: the first eager fp32 record
    base_fps = {name: statistics.median(r.fps for r in rs) for name, rs in eager.items()}  # speed-up reference
    print(
        "| model | backend | precision | fps | speed-up | latency p50 / p95 ms | memory MiB peak / forward | ΔmIoU (points) "
        "| label agreement | max abs Δ logit | % of peak |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(recs, key=lambda r: r.timestamp):
        if r.status != "ok":
            print(f"| {r.name} | {r.backend} | {r.precision} | failed: {r.error} | | | | | | | |")
            continue
        b = base.get(r.name)
        speed = f"{r.fps / base_fps[r.name]:.2f}x" if b and base_fps[r.name] else ""
        if r.parity_delta_mIoU is not None:
            dm = f"{100 * r.parity_delta_mIoU:+.2f}"
        elif b and b.mIoU is not None and r.mIoU is not None and (r.weights != "random" or r.timestamp >= a.seeded):
            dm = f"{100 * (r.mIoU - b.mIoU):+.2f}"
        else:
            dm = ""
        agree = f"{r.parity_label_agreement:.4f}" if r.parity_label_agreement is not None else ""
        diff = f"{r.parity_max_abs_logit:.2g}" if r.parity_max_abs_logit is not None else ""
        if r.parity_ok is False:
            agree += " (exceeds tolerance)"
        peak = f"{100 * r.gflops * r.fps / (1000 * a.peak_tflops):.1f}" if r.gflops else ""
        mem = " / ".join("" if v is None else f"{v:.0f}" for v in (r.memory_peak_mib, r.memory_forward_mib))
        print(
            f"| {r.name} | {r.backend} | {r.precision} | {r.fps:.2f} | {speed} | {r.latency_ms_p50:.0f} / "
            f"{r.latency_ms_p95:.0f} | {mem} | {dm} | {agree} | {diff} | {peak} |"
        )
    if base:
        miou = ", ".join(f"{n} {100 * b.mIoU:.2f}" for n, b in base.items() if b.mIoU is not None)
        print(f"\neager 32-true mIoU (%): {miou}")
        fps = "; ".join(f"{n} {', '.join(f'{r.fps:.2f}' for r in rs)}" for n, rs in eager.items())
        print(f"eager 32-true fps in sweep order: {fps} (speed-ups are relative to the median of each model's)")
    failed = [r for r in recs if r.status != "ok"]
    if failed:
        print(f"{len(failed)} of {len(recs)} records failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
