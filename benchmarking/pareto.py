"""Pareto front of (fps, mIoU): the models no other model beats on both speed and accuracy."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points when both coordinates are maximised.

    A point ``p`` is dominated when some ``q`` has ``q[0] >= p[0]`` and ``q[1] >= p[1]`` with at least one
    strict inequality; identical points are all kept. O(n log n): sort by x descending (y descending on
    ties) and keep the points whose y reaches the running maximum.

    Args:
        points: (x, y) pairs, e.g. (fps, mIoU); NaN coordinates are never on the front.

    Returns:
        sorted list of indices into ``points``.
    """
    idx = [i for i, (x, y) in enumerate(points) if x == x and y == y]  # drop NaN
    idx.sort(key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y, last = [], float("-inf"), None
    for i in idx:
        x, y = points[i]
        if y > best_y:
            front.append(i)
            best_y, last = y, (x, y)
        elif last is not None and (x, y) == last:
            front.append(i)
    return sorted(front)
