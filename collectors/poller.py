"""Provides Poller: polls every collector on its own schedule from one event loop, never
overlapping, and poll()/poll_all() for one-shot callers.

All polls run as scripts on one PollLoop: no thread per target (at 1,000 targets the threads'
GIL handovers cost most of a core; bench/README.md). A hung target holds nothing but its own
socket until its deadline, so it never delays another target. The next poll of a target is
scheduled only once its previous poll has finished: at most one in flight per target.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cachetop.collectors.base import CollectError, Collector, Deadline
from cachetop.collectors.netloop import PollLoop, Timer
from cachetop.collectors.sample import Sample

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 10.0
AUTH_RETRY_S = 30.0  # a wrong password is not retried every tick (ACL LOG noise, lockouts)
LARGE_FLEET = 100  # past this many targets, timers run on a grid so polls leave in batches
TICK_S = 0.1
FIRST_POLLS_PER_S = 1000.0


@dataclass(frozen=True, slots=True)
class PollResult:
    """The outcome of one poll of one target: a sample or a CollectError, never both."""

    index: int
    target: str
    sample: Sample | None
    error: CollectError | None
    started_at: float
    finished_at: float


def poll_deadline_s(collector: Collector, interval_s: float) -> float:
    """A poll's hard deadline: the target's timeout, never longer than the interval."""
    return max(0.05, min(collector.target.timeout_s, interval_s))


def poll(collector: Collector, index: int, interval_s: float) -> PollResult:
    """Poll one collector once, blocking; any failure becomes a CollectError in the result."""
    started = time.monotonic()
    deadline = Deadline(poll_deadline_s(collector, interval_s))
    sample = error = None
    try:
        sample = collector.collect(deadline)
    except CollectError as exc:
        error = detached(exc)
    except Exception as exc:  # noqa: BLE001 - a collector bug must not kill the poller
        log.exception("collector %s failed", collector.target.name)
        error = CollectError("bad-data", f"internal error: {type(exc).__name__}")
    return PollResult(index, collector.target.name, sample, error, started, time.monotonic())


def detached(error: CollectError) -> CollectError:
    """The error without its traceback and chained causes, which hold the failed poll's frames.

    Through `f_back` those frames reach the poll's own, which holds the error: a cycle that kept
    every local of a failed poll (a refused HTTP response and its socket, in CLOSE_WAIT) until
    the cyclic gc ran (bench/README.md, `soak.py`). Only status and message are used downstream.
    """
    error.__traceback__ = error.__cause__ = error.__context__ = None
    return error


def next_delay_s(result: PollResult, failures: int, interval_s: float) -> float:
    """Wait before the next poll: the interval, doubled per consecutive failure up to a cap."""
    if result.error is None:
        return interval_s
    if result.error.status == "auth-failed":
        return max(interval_s, AUTH_RETRY_S)
    cap = max(interval_s, min(BACKOFF_CAP_S, 8 * interval_s))
    return float(min(cap, interval_s * 2 ** max(0, failures - 1)))


def _classify_guard(collector: Collector) -> Callable[[BaseException, float], CollectError]:
    def classify(exc: BaseException, timeout_s: float) -> CollectError:
        try:
            return collector.classify(exc, timeout_s)
        except Exception:  # noqa: BLE001 - a classifier bug must not kill the loop
            log.exception("classify failed for %s", collector.target.name)
            return CollectError("bad-data", f"internal error: {type(exc).__name__}")
    return classify


class _Slot:
    """One target's schedule: its next timer, when its last poll was due and started."""

    __slots__ = ("timer", "due_at", "started_at", "failures", "busy", "pending")

    def __init__(self) -> None:
        self.timer: Timer | None = None
        self.due_at = 0.0
        self.started_at = 0.0
        self.failures = 0
        self.busy = False
        self.pending = False  # fell due while paused


class Poller:
    """Polls collectors every `interval_s` on `loop`; results go to `on_result` on the loop's
    thread. Control calls (interval, pause, poll now) may come from any thread."""

    def __init__(self, collectors: Sequence[Collector], interval_s: float,
                 on_result: Callable[[PollResult], None], loop: PollLoop) -> None:
        self.collectors = list(collectors)
        self.interval_s = interval_s
        self.loop = loop
        self._on_result = on_result
        self._slots = [_Slot() for _ in self.collectors]
        self._classify = [_classify_guard(c) for c in self.collectors]
        self._paused = False
        self._stopped = False
        self._epoch = 0.0  # phase grid origin: target i due at epoch + (i/n + k) * interval
        if len(self.collectors) > LARGE_FLEET:
            # Polls leave in ten batches an interval: a loop that serves a hundred replies a
            # wake-up costs a fraction of one woken per reply (bench/README.md, poll.py), and
            # the kernel's arrival times keep every figure exact whatever the batching.
            loop.tick_s = max(loop.tick_s, min(TICK_S, interval_s / 10))

    # -- control (any thread) ---------------------------------------------------------------

    def start(self) -> None:
        self.loop.call_soon_threadsafe(self._start)

    def set_interval(self, interval_s: float) -> None:
        """Applies at once: pending polls are moved to the new cadence, not left waiting for
        the old one (a change from 30 s to 1 s must not wait 30 s)."""
        self.loop.call_soon_threadsafe(lambda: self._reschedule(interval_s))

    def set_paused(self, paused: bool) -> None:
        self.loop.call_soon_threadsafe(lambda: self._pause(paused))

    def poll_now(self) -> None:
        """Poll every idle target at once (a manual retry), auth failures included."""
        self.loop.call_soon_threadsafe(self._poll_now)

    def stop(self) -> None:
        """Stop scheduling; in-flight polls end by their deadline or are dropped by close()."""
        self._stopped = True

    def close(self) -> None:
        for collector in self.collectors:
            try:
                collector.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("close failed for %s", collector.target.name, exc_info=True)

    # -- on the loop ------------------------------------------------------------------------

    def _start(self) -> None:
        now = time.monotonic()
        # Spread first polls (and so the first connects) over a tenth of the interval, at most
        # FIRST_POLLS_PER_S a second and within one interval: 5,000 connects at once overflow
        # the servers' listen backlogs, and a dropped SYN is retried only after a second.
        n = max(1, len(self.collectors))
        window = min(self.interval_s, max(self.interval_s / 10, n / FIRST_POLLS_PER_S))
        self._epoch = now
        for index in range(len(self.collectors)):
            self._schedule(index, now + index * window / n)

    def _schedule(self, index: int, when: float) -> None:
        slot = self._slots[index]
        if slot.timer is not None:
            slot.timer.cancel()
        slot.due_at = when
        slot.timer = self.loop.call_at(when, lambda: self._due(index))

    def _due(self, index: int) -> None:
        slot = self._slots[index]
        slot.timer = None
        if self._stopped or slot.busy:
            return
        if self._paused:
            slot.pending = True
            return
        slot.busy = True
        slot.started_at = time.monotonic()
        collector = self.collectors[index]
        done = functools.partial(self._done, index)
        try:
            self.loop.start(collector.poll(), poll_deadline_s(collector, self.interval_s), done,
                            self._classify[index])
        except Exception as exc:  # noqa: BLE001 - a collector bug must not kill the poller
            log.exception("poll of %s could not start", collector.target.name)
            done(None, CollectError("bad-data", f"internal error: {type(exc).__name__}"))

    def _done(self, index: int, sample: Sample | None, error: CollectError | None) -> None:
        slot = self._slots[index]
        slot.busy = False
        started = slot.started_at
        finished = time.monotonic()
        if error is not None:
            error = detached(error)
        result = PollResult(index, self.collectors[index].target.name, sample, error, started,
                            finished)
        slot.failures = 0 if error is None else slot.failures + 1
        try:
            self._on_result(result)
        except Exception:  # noqa: BLE001 - a consumer bug must not stop this target's polls
            log.exception("result handler failed for %s", result.target)
        if self._stopped:
            return
        delay = next_delay_s(result, slot.failures, self.interval_s)
        # Keep the cadence of the schedule, but never queue a burst after a slow poll.
        self._schedule(index, self._on_phase(index, max(
            slot.due_at + delay, finished + min(delay, self.interval_s) / 2)))

    def _on_phase(self, index: int, when: float) -> float:
        """The first time at or after `when` on this target's phase of the interval.

        Targets keep phases spread evenly over the interval, so polls leave in even batches
        and the load is smooth. A start, a resume or a poll-now bunches polls together (the
        first polls leave within a tenth of the interval, for a quick first screen); their
        next poll moves to the target's phase, at most one interval later, and stays there.
        Bunched, every poll of a fleet left in one batch an interval: the servers and the
        engine all woke at once, and a quiet server's probe waited behind them for a CPU.
        """
        n = len(self._slots)
        if n < 2:
            return when
        interval = self.interval_s
        phase = self._epoch + index * interval / n
        turns = math.ceil((when - phase) / interval - 1e-6)
        return phase + turns * interval

    def _reschedule(self, interval_s: float) -> None:
        old, self.interval_s = self.interval_s, interval_s
        if len(self.collectors) > LARGE_FLEET:
            self.loop.tick_s = min(TICK_S, interval_s / 10)
        now = time.monotonic()
        for index, slot in enumerate(self._slots):
            if slot.busy or slot.timer is None or slot.failures:
                continue
            last_due = slot.due_at - old
            self._schedule(index, max(now, last_due + interval_s))

    def _pause(self, paused: bool) -> None:
        self._paused = paused
        if paused:
            return
        now = time.monotonic()
        pending = [i for i, slot in enumerate(self._slots) if slot.pending]
        spread = self.interval_s / 10 / max(1, len(pending))
        for n, index in enumerate(pending):
            self._slots[index].pending = False
            self._schedule(index, now + n * spread)

    def _poll_now(self) -> None:
        now = time.monotonic()
        for index, slot in enumerate(self._slots):
            if not slot.busy:
                slot.pending = False
                self._schedule(index, now)


def poll_all(collectors: Sequence[Collector], interval_s: float) -> list[PollResult]:
    """Poll every collector once, concurrently on one loop; results in the collectors' order."""
    if not collectors:
        return []
    loop = PollLoop()
    results: list[PollResult | None] = [None] * len(collectors)
    try:
        for index, collector in enumerate(collectors):
            for conn in collector.connections():
                loop.adopt(conn)
            started = time.monotonic()

            def done(sample: Sample | None, error: CollectError | None, index: int = index,
                     started: float = started) -> None:
                results[index] = PollResult(index, collectors[index].target.name, sample,
                                            detached(error) if error else None, started,
                                            time.monotonic())

            loop.start(collector.poll(), poll_deadline_s(collector, interval_s), done,
                       _classify_guard(collector))
        loop.run_until(lambda: all(r is not None for r in results))
    finally:
        loop.close()
    return [r for r in results if r is not None]
