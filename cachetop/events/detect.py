"""Provides EventDetector: the events in a target's new figures against its previous ones.

Pure apart from the per-target state it keeps (which thresholds are crossed): no clock, no I/O.
A threshold is crossed on the first interval past it (the row turns amber then) and cleared
only after CLEAR_INTERVALS intervals back on the right side, so a figure hovering at the line
does not write an event per poll. A figure that cannot be computed (no lookups, a down target)
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cachetop.config import Thresholds
from cachetop.events.model import CLEARED, RESTART, STATUS, THRESHOLD
from cachetop.fleet import TargetFigures

CLEAR_INTERVALS = 3
# Statuses whose change is not news: the first poll coming up, the restart mark expiring.
_QUIET = {("pending", "up"), ("restarted", "up"), ("pending", "restarted")}


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold: the figure, whether it is past the line, and how to say it."""

    key: str
    value: Callable[[TargetFigures], float | None]
    past: Callable[[float, Thresholds], bool]
    crossed: Callable[[float, Thresholds], str]
    cleared: Callable[[float, Thresholds], str]


def _p99(t: TargetFigures) -> float | None:
    latency = t.server_latency if t.server_latency.known else t.probe_latency
    return latency.p99_s


CHECKS = (
    Check("hit_ratio", lambda t: t.hit_ratio,
          lambda v, th: v < th.hit_ratio_below,
          lambda v, th: f"hit ratio {v:.1%} below {th.hit_ratio_below:.0%}",
          lambda v, th: f"hit ratio back to {v:.1%}"),
    Check("p99", _p99,
          lambda v, th: v * 1000.0 > th.p99_ms_above,
          lambda v, th: f"p99 {v * 1000.0:.3g} ms above {th.p99_ms_above:g} ms",
          lambda v, th: f"p99 back to {v * 1000.0:.3g} ms"),
    Check("memory", lambda t: t.memory_ratio,
          lambda v, th: v > th.memory_ratio_above,
          lambda v, th: f"memory {v:.1%} of the limit, above {th.memory_ratio_above:.0%}",
          lambda v, th: f"memory back to {v:.1%} of the limit"),
    Check("evictions", lambda t: t.evictions_per_s,
          lambda v, th: v > th.evictions_per_s_above,
          lambda v, th: f"evicting {v:.3g} keys/s",
          lambda v, th: "evictions stopped" if v == 0 else f"evictions down to {v:.3g}/s"),
)

Found = tuple[str, str]  # (kind, text)


def status_change(prev: TargetFigures, cur: TargetFigures) -> list[Found]:
    """A status change with its reason; a restart or stats reset as its own kind."""
    before, after = prev.status, cur.status
    if before == after or (before, after) in _QUIET:
        return []
    if after == "restarted":
        return [(RESTART, cur.error or "restarted")]
    if cur.live:
        return [(STATUS, f"{after} (was {before})")]
    reason = f": {cur.error}" if cur.error else ""
    return [(STATUS, f"{after}{reason}")]


class EventDetector:
    """Per-target threshold state, keyed by the target's index in the fleet."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self._crossed: dict[int, dict[str, int]] = {}  # index -> check key -> good intervals

    def observe(self, index: int, prev: TargetFigures, cur: TargetFigures) -> list[Found]:
        found = status_change(prev, cur)
        if cur.live and cur.interval_s is not None:
            found += self._thresholds(index, cur)
        return found

    def _thresholds(self, index: int, cur: TargetFigures) -> list[Found]:
        th = self.thresholds
        crossed = self._crossed.get(index)
        found: list[Found] = []
        for check in CHECKS:
            value = check.value(cur)
            if value is None:
                continue
            past = check.past(value, th)
            if crossed is not None and check.key in crossed:
                if past:
                    crossed[check.key] = 0
                    continue
                crossed[check.key] += 1
                if crossed[check.key] >= CLEAR_INTERVALS:
                    del crossed[check.key]
                    found.append((CLEARED, check.cleared(value, th)))
            elif past:
                crossed = self._crossed.setdefault(index, {})
                crossed[check.key] = 0
                found.append((THRESHOLD, check.crossed(value, th)))
        return found
