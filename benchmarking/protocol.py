"""The timing protocol of MMSegmentation's ``tools/analysis_tools/benchmark.py``, for any callable.

MMSeg (v0.x ``tools/benchmark.py``, v1.x ``tools/analysis_tools/benchmark.py``) times batch-1 inference
at a fixed input size: 5 warm-up iterations, then 195 timed ones (200 in all), the device synchronised
around every forward; fps = timed images / timed seconds; ``--repeat-times R`` repeats the whole loop
(warm-up included) and prints the mean and the (population) variance of the R fps values.
:func:`time_callable` is that loop; it also keeps every timed iteration so that latency percentiles
(p50/p95, ms) come from the same run. ``max_seconds`` (not MMSeg's) ends a repeat's timed loop early once its timed
calls add up to that many seconds, after at least :data:`MIN_TIMED` of them, so that a model taking seconds per
image is not timed for the better part of an hour; fps and percentiles then come from the calls that ran.

What is inside the timer is the caller's choice: ``benchmarking.runner`` times model forward + bilinear
resize of the logits to the input size + argmax (data preprocessing stays outside).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: timed calls a repeat always runs before ``max_seconds`` may end it (enough for a median and a p95 to mean something)
MIN_TIMED = 5


@dataclass(frozen=True)
class TimingProtocol:
    """How many iterations to run (MMSeg defaults).

    Attributes:
        warmup: untimed iterations before the timed ones, in every repeat (5).
        iterations: timed iterations per repeat (195).
        repeat: number of repeats; fps mean and variance are over repeats (1).
        batch_size: images per call (1); fps counts images, latency is per call.
        max_seconds: a repeat's timed loop stops once its timed seconds reach this, after at least
            ``min(iterations, MIN_TIMED)`` calls (None: always ``iterations``).

    Raises:
        ValueError: warmup < 0, iterations < 1, repeat < 1, batch_size < 1 or max_seconds <= 0 (value named).
    """

    warmup: int = 5
    iterations: int = 195
    repeat: int = 1
    batch_size: int = 1
    max_seconds: float | None = None

    def __post_init__(self):
        for name, low in (("warmup", 0), ("iterations", 1), ("repeat", 1), ("batch_size", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"timing protocol: {name} must be an integer >= {low}, got {value!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"timing protocol: max_seconds must be > 0 or null, got {self.max_seconds!r}")

    @property
    def calls(self) -> int:
        """Most calls of the timed callable: repeat * (warmup + iterations) (fewer when ``max_seconds`` ends a loop)."""
        return self.repeat * (self.warmup + self.iterations)


@dataclass
class TimingResult:
    """Outcome of :func:`time_callable`.

    Attributes:
        protocol: the protocol that was run.
        times_s: per repeat, the wall-clock seconds of each timed call (warm-up excluded).
    """

    protocol: TimingProtocol
    times_s: list[list[float]] = field(default_factory=list)

    @property
    def fps_runs(self) -> list[float]:
        """fps of every repeat: batch_size * iterations / sum of timed seconds (img/s)."""
        b = self.protocol.batch_size
        return [b * len(t) / sum(t) if sum(t) > 0 else float("inf") for t in self.times_s]

    @property
    def fps(self) -> float:
        """Mean fps over repeats (img/s)."""
        return statistics.fmean(self.fps_runs)

    @property
    def fps_var(self) -> float:
        """Population variance of the per-repeat fps (as MMSeg's ``np.var``); 0 for one repeat."""
        return statistics.pvariance(self.fps_runs) if len(self.fps_runs) > 1 else 0.0

    @property
    def all_times_ms(self) -> list[float]:
        """Every timed call of every repeat, in milliseconds."""
        return [1000.0 * t for run in self.times_s for t in run]

    def latency_ms(self, q: float) -> float:
        """Latency percentile ``q`` in [0, 100] of the timed calls (ms, linear interpolation)."""
        return percentile(self.all_times_ms, q)


def percentile(values: list[float], q: float) -> float:
    """``q``-th percentile (0..100) with linear interpolation between order statistics (``numpy.percentile``).

    Raises:
        ValueError: empty ``values`` or ``q`` outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty list")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return float(np.percentile(values, q))


def _no_sync() -> None:
    return None


def device_sync(device) -> Callable[[], None]:
    """The ``sync`` of :func:`time_callable` for ``device`` (a ``torch.device``): ``torch.cuda.synchronize(device)``
    on a CUDA device, a no-op elsewhere."""
    if device.type != "cuda":
        return _no_sync
    import torch

    return lambda: torch.cuda.synchronize(device)


def time_callable(
    fn: Callable[[], object],
    protocol: TimingProtocol = TimingProtocol(),
    sync: Callable[[], None] = _no_sync,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingResult:
    """Run ``fn`` under ``protocol`` and return the timed seconds of every non-warm-up call.

    Per repeat: ``warmup`` untimed calls, then ``iterations`` calls each bracketed as
    ``sync(); t0 = clock(); fn(); sync(); t1 = clock()`` (``sync`` is e.g. ``torch.cuda.synchronize``
    so that asynchronous device work is inside the interval); with ``max_seconds`` the timed calls stop once their
    seconds add up to it (after at least ``min(iterations, MIN_TIMED)`` calls).

    Args:
        fn: the work to time, called without arguments.
        protocol: :class:`TimingProtocol`.
        sync: device synchronisation, called around every timed call (no-op on CPU).
        clock: monotonic clock in seconds (``time.perf_counter``; tests pass a fake one).
    """
    result = TimingResult(protocol)
    for _ in range(protocol.repeat):
        for _ in range(protocol.warmup):
            fn()
        sync()
        times: list[float] = []
        least = min(protocol.iterations, MIN_TIMED)
        for _ in range(protocol.iterations):
            sync()
            t0 = clock()
            fn()
            sync()
            times.append(clock() - t0)
            if protocol.max_seconds is not None and len(times) >= least and sum(times) >= protocol.max_seconds:
                break
        result.times_s.append(times)
    return result


def timer_overhead_ms(sync: Callable[[], None] = _no_sync, iterations: int = 2000) -> float:
    """Median cost (ms) of the timing bracket itself: :func:`time_callable` around a no-op.

    This is the benchmark's own overhead per timed call (clock reads, sync calls, bookkeeping);
    compare it with the median latency of the model to get the overhead fraction.
    """
    res = time_callable(_no_sync, TimingProtocol(warmup=10, iterations=iterations), sync=sync)
    return percentile(res.all_times_ms, 50)
