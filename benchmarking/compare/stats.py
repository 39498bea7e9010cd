"""Run-to-run statistics of ``benchmark.py compare``: sample mean/std, Student-t 95 % interval, Welch's t-test."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def describe(values) -> dict:
    """n, mean, sample std (ddof 1), Student-t 95 % half-width, min, max of ``values`` (NaNs dropped).

    ``std`` and ``ci95`` are NaN for n < 2; every value is NaN for n = 0.
    """
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci95": math.nan, "min": math.nan, "max": math.nan}
    std = float(np.std(x, ddof=1)) if n > 1 else math.nan
    ci = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
    return {"n": n, "mean": float(x.mean()), "std": std, "ci95": ci, "min": float(x.min()), "max": float(x.max())}


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) between samples ``a`` and ``b``; NaN when either
    has fewer than 2 values or both have zero variance."""
    a = [v for v in a if v is not None and not math.isnan(v)]
    b = [v for v in b if v is not None and not math.isnan(v)]
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
