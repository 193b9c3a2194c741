"""Provides quantiles: Prometheus `histogram_quantile` over bucket deltas, and of probe samples."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

Buckets = Sequence[tuple[float, float]]  # (upper bound, cumulative count), ascending bounds


def _count_at(buckets: Buckets, bound: float) -> float:
    """Cumulative count at `bound` of a histogram that may not list it: the count at the largest
    listed bound below it (Redis omits empty buckets, so a bound one sample lacks is a step)."""
    bounds = [b for b, _ in buckets]
    i = bisect.bisect_right(bounds, bound) - 1
    return buckets[i][1] if i >= 0 else 0.0


def bucket_delta(prev: Buckets, cur: Buckets) -> list[tuple[float, float]] | None:
    """Per-bound increase of a cumulative histogram between two samples, over the union of
    their bounds. None when any bucket went down (a restart or reset: no interval figure)."""
    bounds = sorted({b for b, _ in prev} | {b for b, _ in cur})
    out = []
    for bound in bounds:
        d = _count_at(cur, bound) - _count_at(prev, bound)
        if d < 0:
            return None
        out.append((bound, d))
    return out


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """The q-quantile exactly as Prometheus `histogram_quantile` computes it.

    Linear interpolation inside the bucket; the lowest bucket's lower bound is 0 (unless its
    upper bound is <= 0); a rank in the +Inf bucket returns the highest finite bound. None where
    Prometheus returns NaN: no +Inf bucket, fewer than two buckets, or no observations.
    """
    if not 0 <= q <= 1 or len(buckets) < 2:
        return None
    ordered = sorted(buckets)
    if not math.isinf(ordered[-1][0]):
        return None
    fixed: list[tuple[float, float]] = []
    running = 0.0
    for bound, count in ordered:  # Prometheus forces cumulative counts to be monotonic
        running = max(running, count)
        fixed.append((bound, running))
    observations = fixed[-1][1]
    if observations <= 0:
        return None
    rank = q * observations
    b = next((i for i in range(len(fixed) - 1) if fixed[i][1] >= rank), len(fixed) - 1)
    if b == len(fixed) - 1:
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start, end, count = 0.0, fixed[b][0], fixed[b][1]
    if b > 0:
        start = fixed[b - 1][0]
        count -= fixed[b - 1][1]
        rank -= fixed[b - 1][1]
    return start + (end - start) * (rank / count)


def sample_quantile(q: float, values: Sequence[float], *, presorted: bool = False) -> float | None:
    """q-quantile of raw samples with linear interpolation between order statistics (numpy's
    default 'linear' method), for probe round trips. None without samples."""
    if not values:
        return None
    ordered = values if presorted else sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
