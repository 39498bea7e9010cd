"""The console line of a benchmark record (``python benchmark.py`` prints one per measurement)."""

from __future__ import annotations

from core.records import BenchmarkRecord


def summary(rec: BenchmarkRecord) -> str:
    """One line for the console."""
    if rec.status != "ok":
        return f"{rec.name} [{rec.backend}/{rec.precision} {rec.resolution}] FAILED: {rec.error}"
    miou = f", mIoU {100 * rec.mIoU:.2f}" if rec.mIoU is not None else ""
    mem = (
        f"{rec.memory_peak_mib:.0f} MiB peak ({rec.memory_forward_mib:.0f} MiB during the forward)"
        if rec.memory_peak_mib is not None
        else "n/a"
    )
    gf = f"{rec.gflops:.1f}" if rec.gflops is not None else "n/a"
    parity = ""
    if rec.parity_ok is not None:
        parity = (
            f", parity vs {rec.parity_reference}: max |Δ logit| {rec.parity_max_abs_logit:.3g}, label agreement "
            f"{rec.parity_label_agreement:.4f}"
            + ("" if rec.parity_delta_mIoU is None else f", ΔmIoU {100 * rec.parity_delta_mIoU:+.2f}")
            + ("" if rec.parity_ok else " PARITY EXCEEDED: " + "; ".join(rec.parity_violations))
        )
    ac = rec.accuracy_control or {}
    if ac.get("drop") is not None:
        parity += (
            f", accuracy control: drop {ac['drop']:.2f} mIoU points (max {ac['max_drop']:g}) on "
            f"{ac.get('validation_images')} held-out {ac.get('split')} images"
        )
    return (
        f"{rec.name} [{rec.backend}/{rec.precision} {rec.resolution} on {rec.hardware}]: {rec.fps:.2f} fps, "
        f"latency p50 {rec.latency_ms_p50:.1f} ms p95 {rec.latency_ms_p95:.1f} ms, params "
        f"{rec.params / 1e6:.2f} M, {gf} GFLOPs, memory {mem}{miou}, timer overhead {rec.overhead_pct:.2g} %{parity}"
        f"{'' if rec.budget.get('ok', True) else ' BUDGET EXCEEDED: ' + '; '.join(rec.budget['violations'])}"
    )
