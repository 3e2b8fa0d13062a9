"""Median and spread of a list of samples (no numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not samples:
        return None
    xs = sorted(samples)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(samples: Sequence[float]) -> dict:
    """n, median, p5, p95, min, max, mean of the samples (None when there are none)."""
    xs = [float(x) for x in samples]
    return {
        "n": len(xs),
        "median": percentile(xs, 50),
        "p5": percentile(xs, 5),
        "p95": percentile(xs, 95),
        "min": min(xs) if xs else None,
        "max": max(xs) if xs else None,
        "mean": sum(xs) / len(xs) if xs else None,
    }
