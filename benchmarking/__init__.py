"""Benchmarking: MMSeg-compatible timing protocol, records, aggregation into CSV tables, Pareto plots.

* :mod:`benchmarking.protocol`  warm-up + timed loop, fps, latency percentiles, timer overhead
* :mod:`benchmarking.backends`  eager / channels_last / compile / onnxruntime / openvino x fp32 / bf16 / fp16 / int8
* :mod:`benchmarking.runner`    one measurement from a composed config (``python benchmark.py``), with
  :mod:`benchmarking.loading` (model, input size), :mod:`benchmarking.evaluation` (mIoU),
  :mod:`benchmarking.budget` (per-image budget), :mod:`benchmarking.parity` (exported vs eager),
  :mod:`benchmarking.run_record` (the record, failure text) and :mod:`benchmarking.console` (its console line)
* :mod:`benchmarking.aggregate` records + reported model-zoo numbers -> ``tables/*.csv`` (atomic)
* :mod:`benchmarking.pareto`    Pareto front of (fps, mIoU)
* :mod:`benchmarking.plot`      fps (log) vs mIoU plot
* :mod:`benchmarking.peak`      ``benchmark.py peak``: matmul peaks per precision, stored by
  :mod:`benchmarking.peak_store` for ``% of peak`` columns

Params, FLOPs, peak memory and the hardware profile come from :mod:`core.measure`, the records from
:mod:`core.records`.
"""

from benchmarking.protocol import TimingProtocol, TimingResult, time_callable
from core.records import BenchmarkRecord, load_records, write_record

__all__ = ["BenchmarkRecord", "TimingProtocol", "TimingResult", "load_records", "time_callable", "write_record"]
