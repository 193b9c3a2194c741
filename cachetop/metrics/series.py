"""Provides History: per-target ring buffers of the charted figures, 4 bytes a point.

1 hour at 1 s for 1,000 targets is 3.6 M points per figure; Python floats in a deque cost about
41 bytes each, float32 `array`s 4. Times are stored as float32 seconds since the store began,
which keeps sub-millisecond precision over days.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections.abc import Mapping, Sequence

FIGURES = ("ops_per_s", "hit_ratio", "p50_s", "p95_s", "p99_s", "memory_used_bytes",
           "evictions_per_s")


class Ring:
    """A fixed-capacity float32 ring buffer that grows only until it is full."""

    __slots__ = ("capacity", "data", "start")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data = array("f")
        self.start = 0  # index of the oldest point once full

    def append(self, value: float) -> None:
        if len(self.data) < self.capacity:
            self.data.append(value)
        else:
            self.data[self.start] = value
            self.start = (self.start + 1) % self.capacity

    def values(self) -> list[float]:
        return list(self.data[self.start:]) + list(self.data[:self.start])


class History:
    """Charted figures per target. Writers are poll threads; readers get copies under a lock."""

    def __init__(self, history_s: float, interval_s: float) -> None:
        self.capacity = max(2, math.ceil(history_s / max(interval_s, 0.05)))
        self.epoch = time.monotonic()
        self._lock = threading.Lock()
        self._rings: dict[str, dict[str, Ring]] = {}
        self._restarts: dict[str, list[float]] = {}

    def record(self, target: str, at: float, figures: Mapping[str, float | None],
               restarted: bool = False) -> None:
        """Add one point per figure (None stored as NaN: a gap in the chart)."""
        with self._lock:
            rings = self._rings.get(target)
            if rings is None:
                rings = {name: Ring(self.capacity) for name in ("t", *FIGURES)}
                self._rings[target] = rings
            rings["t"].append(at - self.epoch)
            for name in FIGURES:
                value = figures.get(name)
                rings[name].append(math.nan if value is None else value)
            if restarted:
                marks = self._restarts.setdefault(target, [])
                marks.append(at - self.epoch)
                del marks[:-100]

    def series(self, target: str, last_s: float | None = None) -> dict[str, Sequence[float]]:
        """Copies of a target's series (times relative to now, in seconds, negative)."""
        now = time.monotonic() - self.epoch
        with self._lock:
            rings = self._rings.get(target)
            if rings is None:
                return {}
            out = {name: ring.values() for name, ring in rings.items()}
            restarts = list(self._restarts.get(target, ()))
        times = [t - now for t in out["t"]]
        keep = 0 if last_s is None else next(
            (i for i, t in enumerate(times) if t >= -last_s), len(times))
        result: dict[str, Sequence[float]] = {name: values[keep:] for name, values in out.items()}
        result["t"] = times[keep:]
        result["restarts"] = [r - now for r in restarts if last_s is None or r - now >= -last_s]
        return result

    def forget(self, target: str) -> None:
        with self._lock:
            self._rings.pop(target, None)
            self._restarts.pop(target, None)
