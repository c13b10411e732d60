"""Percentiles and rates, the same way for every part of the bench."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least p% of the values at or below it); None for
    no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def latency_summary(values_ms: Sequence[float]) -> dict[str, Any]:
    """n, p50, p95, p99 and max of latencies in milliseconds (None when there are none)."""
    return {
        "n": len(values_ms),
        "p50_ms": rounded(percentile(values_ms, 50)),
        "p95_ms": rounded(percentile(values_ms, 95)),
        "p99_ms": rounded(percentile(values_ms, 99)),
        "max_ms": rounded(max(values_ms)) if values_ms else None,
    }


def per_second(times_s: Iterable[float], seconds: float) -> list[int]:
    """How many of the times (seconds since a phase started) fall in each whole second of the phase."""
    buckets = [0] * max(1, math.ceil(seconds))
    for t in times_s:
        if 0 <= t < len(buckets):
            buckets[int(t)] += 1
    return buckets


def ratio(value: float | None, ceiling: float | None) -> float | None:
    """value / ceiling, or None when either is unknown (a part that did not run)."""
    if value is None or not ceiling:
        return None
    return round(value / ceiling, 4)
