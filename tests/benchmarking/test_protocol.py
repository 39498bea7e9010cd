"""Timing protocol: warm-up excluded, exact call counts, fps = timed images / timed seconds (fake clock)."""

from __future__ import annotations

import time

import pytest

from benchmarking.protocol import TimingProtocol, percentile, time_callable, timer_overhead_ms


class FakeClock:
    """A clock that only moves when the fake model runs: warm-up calls take 10 s, timed calls ``dt`` s."""

    def __init__(self, protocol: TimingProtocol, dt: float):
        self.t, self.calls, self.protocol, self.dt = 0.0, 0, protocol, dt

    def __call__(self) -> float:
        return self.t

    def model(self):
        per_repeat = self.protocol.warmup + self.protocol.iterations
        in_warmup = self.calls % per_repeat < self.protocol.warmup
        self.t += 10.0 if in_warmup else self.dt
        self.calls += 1


def test_mmseg_defaults():
    p = TimingProtocol()
    assert (p.warmup, p.iterations, p.repeat, p.batch_size, p.max_seconds) == (5, 195, 1, 1, None)
    assert p.calls == 200  # MMSeg: 200 images, first 5 not timed


@pytest.mark.parametrize("warmup,iterations,repeat,batch", [(5, 195, 1, 1), (5, 7, 3, 2), (0, 1, 1, 1)])
def test_warmup_excluded_and_counts(warmup, iterations, repeat, batch):
    proto = TimingProtocol(warmup=warmup, iterations=iterations, repeat=repeat, batch_size=batch)
    clock = FakeClock(proto, dt=0.02)
    syncs = []
    res = time_callable(clock.model, proto, sync=lambda: syncs.append(1), clock=clock)
    assert clock.calls == repeat * (warmup + iterations) == proto.calls
    assert [len(t) for t in res.times_s] == [iterations] * repeat
    # every timed call is bracketed by two syncs, plus one after each warm-up block
    assert len(syncs) == repeat * (2 * iterations + 1)
    # warm-up calls took 10 s each: had any been timed, fps would collapse
    assert res.fps == pytest.approx(batch / 0.02)  # fps = timed images / timed seconds
    assert res.fps_runs == pytest.approx([batch / 0.02] * repeat)
    assert res.fps_var == pytest.approx(0.0, abs=1e-9)
    assert res.latency_ms(50) == pytest.approx(20.0)
    assert res.latency_ms(95) == pytest.approx(20.0)


def test_fps_mean_and_variance_over_repeats():
    proto = TimingProtocol(warmup=1, iterations=4, repeat=2)
    durations = iter([9.0, 0.1, 0.1, 0.1, 0.1, 9.0, 0.2, 0.2, 0.2, 0.2])  # repeat 1: 10 fps, repeat 2: 5 fps
    t = [0.0]

    def model():
        t[0] += next(durations)

    res = time_callable(model, proto, clock=lambda: t[0])
    assert res.fps_runs == pytest.approx([10.0, 5.0])
    assert res.fps == pytest.approx(7.5)
    assert res.fps_var == pytest.approx(6.25)  # population variance, as MMSeg's np.var
    assert res.latency_ms(50) == pytest.approx(150.0)  # median of 4x100 ms and 4x200 ms
    assert res.latency_ms(95) == pytest.approx(200.0)


@pytest.mark.parametrize(
    "iterations,max_seconds,timed",
    [
        (10, 3.5, 5),  # the cap is reached after 4 calls, but MIN_TIMED (5) calls always run
        (10, 7.5, 8),  # 7 x 1 s < 7.5, the 8th call reaches it
        (3, 0.5, 3),  # fewer iterations than MIN_TIMED: all of them
        (10, 100.0, 10),  # the cap is never reached
        (10, None, 10),
    ],
)
def test_max_seconds_ends_a_repeat_after_at_least_min_timed_calls(iterations, max_seconds, timed):
    proto = TimingProtocol(warmup=2, iterations=iterations, repeat=2, max_seconds=max_seconds)
    t = [0.0]

    def model():
        t[0] += 1.0

    res = time_callable(model, proto, clock=lambda: t[0])
    assert [len(run) for run in res.times_s] == [timed, timed]
    assert res.fps == pytest.approx(1.0) and res.latency_ms(95) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match=r"max_seconds must be > 0 or null, got 0"):
        TimingProtocol(max_seconds=0)


def test_percentile_hand_values():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)


@pytest.mark.parametrize("field,value", [("iterations", 0), ("warmup", -1), ("repeat", 0), ("batch_size", 0)])
def test_bad_protocol_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TimingProtocol(**{field: value})


def test_timer_overhead_is_the_bracket_around_a_no_op():
    # the bracket holds one sync after the call: a 2 ms sync makes the median at least 2 ms; a no-op one
    # leaves two clock reads (microseconds)
    assert timer_overhead_ms(lambda: time.sleep(0.002), iterations=10) >= 2.0
    assert timer_overhead_ms(iterations=200) < 0.5
