"""Provides per-second rates from counter deltas, and restart / stats-reset detection."""

from __future__ import annotations

from cachetop.collectors.sample import COUNTER_NAMES, INSTANCE_ID, UPTIME_S, Sample


def rate_per_s(prev: float | None, cur: float | None, dt_s: float) -> float | None:
    """Per-second rate of a counter. None on the first sample, a missing value, a counter that
    went down (a reset is a gap, never a negative rate or a spike), or dt <= 0."""
    if prev is None or cur is None or cur < prev or dt_s <= 0:
        return None
    return (cur - prev) / dt_s


def delta(prev: float | None, cur: float | None) -> float | None:
    """Increase of a counter between two samples; None when unknown or reset."""
    if prev is None or cur is None or cur < prev:
        return None
    return cur - prev


def reset_reason(prev: Sample, cur: Sample) -> str | None:
    """Why `cur` cannot be compared with `prev`, or None when it can.

    A restart shows as a new instance id (Redis run_id, memcached pid) or a lower uptime;
    `CONFIG RESETSTAT` keeps both and only lowers counters, so any counter going down counts too.
    """
    old_id, new_id = prev.info.get(INSTANCE_ID), cur.info.get(INSTANCE_ID)
    if old_id and new_id and old_id != new_id:
        return "restarted (new instance id)"
    old_up, new_up = prev.gauges.get(UPTIME_S), cur.gauges.get(UPTIME_S)
    if old_up is not None and new_up is not None and new_up < old_up:
        return "restarted (uptime went down)"
    for name in COUNTER_NAMES:
        old, new = prev.counters.get(name), cur.counters.get(name)
        if old is not None and new is not None and new < old:
            return f"stats reset ({name} went down)"
    return None
