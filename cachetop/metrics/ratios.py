"""Provides hit ratios: over an interval (the main figure), since start, and traffic-weighted."""

from __future__ import annotations

from collections.abc import Iterable


def window_hit_ratio(d_hits: float | None, d_misses: float | None) -> float | None:
    """Hit ratio over the window, 0..1. None when there was no lookup (render '—', not 0%)."""
    if d_hits is None or d_misses is None:
        return None
    total = d_hits + d_misses
    return d_hits / total if total > 0 else None


def lifetime_hit_ratio(hits: float | None, misses: float | None) -> float | None:
    """Since-start hit ratio: secondary, for the drill-down only (it hides what happens now)."""
    return window_hit_ratio(hits, misses)


def weighted_hit_ratio(deltas: Iterable[tuple[float | None, float | None]]) -> float | None:
    """ΣΔhits / ΣΔ(hits + misses) over members: weighted by traffic, never a mean of ratios."""
    hits = lookups = 0.0
    for d_hits, d_misses in deltas:
        if d_hits is None or d_misses is None:
            continue
        hits += d_hits
        lookups += d_hits + d_misses
    return hits / lookups if lookups > 0 else None
