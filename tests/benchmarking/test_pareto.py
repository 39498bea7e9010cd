"""Pareto selection on hand-made (fps, mIoU) points."""

from __future__ import annotations

from benchmarking.pareto import pareto_front


def test_hand_made_front():
    pts = [
        (1.0, 80.0),  # 0 slow, most accurate: front
        (10.0, 70.0),  # 1 front
        (5.0, 69.0),  # 2 dominated by 1
        (50.0, 60.0),  # 3 fastest: front
        (10.0, 65.0),  # 4 same fps as 1, worse: dominated
        (2.0, 75.0),
    ]  # 5 front (between 0 and 1)
    assert pareto_front(pts) == [0, 1, 3, 5]


def test_ties_and_nan():
    pts = [(10.0, 70.0), (10.0, 70.0), (float("nan"), 99.0), (1.0, float("nan")), (1.0, 50.0)]
    assert pareto_front(pts) == [0, 1]
    assert pareto_front([]) == []
    assert pareto_front([(3.0, 4.0)]) == [0]


def test_every_point_off_the_front_is_dominated():
    import random

    rng = random.Random(0)
    pts = [(rng.uniform(1, 100), rng.uniform(40, 85)) for _ in range(200)]
    front = set(pareto_front(pts))
    for i, (x, y) in enumerate(pts):
        dominated = any(a >= x and b >= y and (a > x or b > y) for a, b in pts)
        assert (i in front) == (not dominated)
