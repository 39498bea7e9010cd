"""Benchmarking: MMSeg-compatible timing protocol, records, aggregation into CSV tables, Pareto plots.

* :mod:`benchmarking.protocol`  warm-up + timed loop, fps, latency percentiles, timer overhead
* :mod:`benchmarking.measure`   params, FLOPs (torch.utils.flop_counter), peak memory, hardware
* :mod:`benchmarking.backends`  eager / channels_last / compile / onnxruntime x fp32 / bf16 / fp16
* :mod:`benchmarking.records`   one JSON record per measurement, atomic writes
* :mod:`benchmarking.runner`    one measurement from a composed config (``python benchmark.py``)
* :mod:`benchmarking.aggregate` records + reported model-zoo numbers -> ``tables/*.csv`` (atomic)
* :mod:`benchmarking.pareto`    Pareto front of (fps, mIoU)
* :mod:`benchmarking.plot`      fps (log) vs mIoU plot
"""

from benchmarking.protocol import TimingProtocol, TimingResult, time_callable
from benchmarking.records import BenchmarkRecord, load_records, write_record

__all__ = ["BenchmarkRecord", "TimingProtocol", "TimingResult", "load_records", "time_callable", "write_record"]
