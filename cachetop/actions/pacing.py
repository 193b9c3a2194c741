"""Provides Pacer (the keys/s limit of a bulk delete, and its slow-down) and BatchSizer.

A bulk delete must not hurt the instance it cleans. The pacer spaces batches to honour a
configured keys/s limit, and watches PING probes taken between batches: when the median of
the last PROBE_WINDOW probes is slower than max(2 x baseline, `slow_floor_s`), other clients
are waiting too, so it halves the rate; after a run of fast probes it lets the rate grow back.
The median, not each probe, decides: on a busy host one probe in a few is late for reasons
that are not the server's (scheduling, GC), and halving on each of those would crawl.
Pure logic over an injectable clock, so it is tested without a server.

BatchSizer bounds what one command of ours makes every other client wait: a pipelined flush keeps
the server busy with its commands back to back, so a GET arriving meanwhile waits behind the
command being run, and that wait grows with the command's size (SCAN COUNT, keys per UNLINK).
It sizes them from probes that wait where other clients wait (a PING on its own connection).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

MIN_RATE_KEYS_PER_S = 500.0
PROBE_WINDOW = 5
RECOVER_AFTER_PROBES = 10
RATE_WINDOW_S = 1.0


class Pacer:
    """Spaces write batches; `limit_keys_per_s` None means as fast as the probe allows."""

    def __init__(self, limit_keys_per_s: float | None, *, slow_floor_s: float = 0.001,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit_keys_per_s is not None and limit_keys_per_s <= 0:
            limit_keys_per_s = None
        self.configured = limit_keys_per_s
        self.current = limit_keys_per_s
        self.slow_floor_s = slow_floor_s
        self.baseline_s: float | None = None
        self.slowdowns = 0
        self._clock = clock
        self._free_at = clock()
        self._fast_probes = 0
        self._probes: deque[float] = deque(maxlen=PROBE_WINDOW)
        self._recent: deque[tuple[float, int]] = deque()

    def chunk_size(self, batch: int) -> int:
        """Keys per write batch: small enough for ~10 batches a second under a limit, so the
        rate is smooth and a cancel is seen promptly."""
        if self.current is None:
            return batch
        return max(1, min(batch, int(self.current / 10)))

    def set_baseline(self, probes_s: list[float]) -> None:
        """The instance's idle probe latency, measured before the first write (median)."""
        if probes_s:
            self.baseline_s = sorted(probes_s)[len(probes_s) // 2]

    @property
    def slow_threshold_s(self) -> float:
        base = self.baseline_s if self.baseline_s is not None else self.slow_floor_s
        return max(2 * base, self.slow_floor_s)

    def wait(self, keys: int, cancel: threading.Event) -> bool:
        """Block until `keys` more may be written; False if cancelled while waiting."""
        if self.current is not None:
            now = self._clock()
            if self._free_at > now and cancel.wait(self._free_at - now):
                return False
            self._free_at = max(self._free_at, self._clock()) + keys / self.current
        return not cancel.is_set()

    def record(self, keys: int) -> None:
        """Note a written batch, for the recent rate the slow-down halves."""
        now = self._clock()
        self._recent.append((now, keys))
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
            self._recent.popleft()

    def recent_rate(self) -> float | None:
        if len(self._recent) < 2:
            return None
        span = self._recent[-1][0] - self._recent[0][0]
        keys = sum(n for _, n in list(self._recent)[1:])
        return keys / span if span > 0 else None

    def observe_probe(self, rtt_s: float) -> bool:
        """Feed one probe latency; True when it made the pacer slow down."""
        self._probes.append(rtt_s)
        median = sorted(self._probes)[len(self._probes) // 2]
        if len(self._probes) == PROBE_WINDOW and median > self.slow_threshold_s:
            self._probes.clear()  # judge the new rate on fresh probes only
            self._fast_probes = 0
            basis = self.current if self.current is not None else self.recent_rate()
            if basis is None:
                return False
            self.current = max(min(MIN_RATE_KEYS_PER_S, basis), basis / 2)
            self.slowdowns += 1
            return True
        if rtt_s > self.slow_threshold_s:
            return False
        self._fast_probes += 1
        if self.current != self.configured and self._fast_probes >= RECOVER_AFTER_PROBES:
            self._fast_probes = 0
            assert self.current is not None
            grown = self.current * 1.5
            if self.configured is not None and grown >= self.configured:
                self.current = self.configured
            elif self.configured is None and self._slowdown_lifted(grown):
                self.current = None
            else:
                self.current = grown
        return False

    def _slowdown_lifted(self, grown: float) -> bool:
        """Unlimited runs return to full speed once the limit no longer binds."""
        rate = self.recent_rate()
        return rate is not None and grown > 2 * rate


SIZE_WINDOW = 16  # probes per sizing decision: a median of 16 shrugs off late wake-ups
MIN_BATCH = 100  # below this a command's own cost outweighs its keys': more server CPU a key
SHRINK, GROW = 0.75, 1.2


class BatchSizer:
    """The size of each command of a bulk delete (SCAN COUNT, keys per UNLINK), adapted so that
    other clients wait at most about `max_latency_s` behind one of ours.

    A probe sent at a random moment waits on average half of the command then running (and at
    worst a whole one, or two when ours comes first in the server's next round): so the median
    probe's wait above the idle baseline is held between a quarter and a half of the budget,
    which puts the worst wait near the budget. Two slow windows in a row shrink the size (on a
    shared host a burst of late wake-ups spoils one window, and smaller commands would not
    help: they cost more round trips for the same keys); one fast window grows it. Sizes
    move by a factor, between MIN_BATCH (or `ceiling` if lower) and `ceiling`; below that floor
    the pacer's rate slow-down takes over.
    """

    def __init__(self, start: int, ceiling: int, max_latency_s: float) -> None:
        self.ceiling = max(1, ceiling)
        self.floor = min(MIN_BATCH, self.ceiling)
        self.size = min(self.ceiling, max(self.floor, start))
        self.max_latency_s = max_latency_s
        self.baseline_s = 0.0
        self.changes = 0
        self._window: list[float] = []
        self._slow_windows = 0

    def set_baseline(self, probes_s: list[float]) -> None:
        """The idle probe round trip (median), measured before the first write."""
        if probes_s:
            self.baseline_s = sorted(probes_s)[len(probes_s) // 2]

    @property
    def at_floor(self) -> bool:
        return self.size <= self.floor

    def observe(self, rtt_s: float) -> int:
        """Feed one probe round trip; returns the size for the next commands."""
        self._window.append(rtt_s)
        if len(self._window) < SIZE_WINDOW:
            return self.size
        wait = sorted(self._window)[len(self._window) // 2] - self.baseline_s
        self._window.clear()
        slow = wait > 0.5 * self.max_latency_s
        self._slow_windows = self._slow_windows + 1 if slow else 0
        if self._slow_windows >= 2:
            self._slow_windows = 0
            return self._resize(max(self.floor, int(self.size * SHRINK)))
        if wait < 0.25 * self.max_latency_s:
            return self._resize(min(self.ceiling, int(self.size * GROW) + 1))
        return self.size

    def _resize(self, size: int) -> int:
        if size != self.size:
            self.size = size
            self.changes += 1
        return self.size
