"""Provides Event and EventLog: one model for everything that happens in the fleet.

Every source of events (status changes and restarts seen by the monitor, thresholds crossed,
actions read from the audit log, alert rules, topology changes) goes through `EventLog.emit`,
so a reader (the TUI, `--batch --json`, a recording) sees one ordered stream. The log is
bounded: a flapping fleet of 1,000 targets must not grow the engine without limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

# Kinds in use; the model accepts any short word so later sources (failover, topology) need
# no change here.
STATUS = "status"
RESTART = "restart"
THRESHOLD = "threshold"
CLEARED = "cleared"
ACTION = "action"
ALERT = "alert"
ALERT_CLEARED = "alert-cleared"
ALERT_ERROR = "alert-error"

KEEP = 10_000  # events held by a log; older ones are dropped first


@dataclass(frozen=True, slots=True)
class Event:
    """`time` is wall clock (time.time()); `target` is a target's name ("" for the fleet);
    `seq` orders events within one log (readers ask for what came after the last they saw)."""

    time: float
    target: str
    kind: str
    text: str
    seq: int = 0

    def to_wire(self) -> list[object]:
        return [self.time, self.target, self.kind, self.text]


def event_from_wire(row: Sequence[object]) -> Event:
    when, target, kind, text = row[:4]
    if not isinstance(when, int | float):
        raise ValueError(f"event time {when!r} is not a number")
    return Event(float(when), str(target), str(kind), str(text))


class EventLog:
    """An ordered, bounded, thread-safe list of events; `since(seq)` is what a reader missed."""

    def __init__(self, keep: int = KEEP) -> None:
        self._events: deque[Event] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()

    def emit(self, kind: str, target: str, text: str, at: float | None = None) -> Event:
        """Record one event now (or at `at`, wall clock): the entry point for every source."""
        with self._lock:
            self._seq += 1
            event = Event(time.time() if at is None else at, target, kind, text, self._seq)
            self._events.append(event)
        return event

    def add(self, event: Event) -> Event:
        """Keep an event that happened elsewhere (the engine's, read by a front), renumbered."""
        return self.emit(event.kind, event.target, event.text, event.time)

    @property
    def last_seq(self) -> int:
        return self._seq

    def since(self, seq: int = 0, target: str | None = None) -> list[Event]:
        """Events after `seq`, oldest first; only `target`'s when given."""
        with self._lock:
            if seq >= self._seq:
                return []
            events = list(self._events)
        found = events[max(0, seq - events[0].seq + 1):] if events else []  # seqs are consecutive
        return found if target is None else [e for e in found if e.target == target]
