"""Provides Poller: polls every collector on its own schedule, concurrently, never overlapping.

One scheduler thread keeps a heap of due times; each due poll runs on a thread pool whose size
is the number of targets, so a hung target holds one thread for at most its deadline and never
delays another target (threads are created only when polls really overlap). The next poll of a
target is scheduled only once its previous poll has finished: at most one in flight per target.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from collectors.base import CollectError, Collector, Deadline
from collectors.sample import Sample

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 10.0
AUTH_RETRY_S = 30.0  # a wrong password is not retried every tick (ACL LOG noise, lockouts)


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
    """Poll one collector once; any failure becomes a CollectError in the result."""
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

    Through `f_back` those frames reach poll()'s own, which holds the error: a cycle that kept
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


class Poller:
    """Polls collectors every `interval_s`; results go to `on_result` on a pool thread."""

    def __init__(self, collectors: Sequence[Collector], interval_s: float,
                 on_result: Callable[[PollResult], None]) -> None:
        self.collectors = list(collectors)
        self.interval_s = interval_s
        self._on_result = on_result
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._failures = [0] * len(self.collectors)
        self._stopped = False
        self._paused = False
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.collectors)),
                                        thread_name_prefix="poll")
        self._thread = threading.Thread(target=self._schedule, name="poll-scheduler", daemon=True)

    def start(self) -> None:
        now = time.monotonic()
        # Spread first polls over a tenth of the interval so 1,000 targets do not fire at once.
        spread = self.interval_s / 10 / max(1, len(self.collectors))
        self._heap = [(now + i * spread, i) for i in range(len(self.collectors))]
        heapq.heapify(self._heap)
        self._thread.start()

    def set_interval(self, interval_s: float) -> None:
        with self._cond:
            self.interval_s = interval_s
            self._cond.notify()

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self._paused = paused
            self._cond.notify()

    def poll_now(self) -> None:
        """Poll every idle target at once (a manual retry), auth failures included."""
        with self._cond:
            now = time.monotonic()
            self._heap = [(min(due, now), i) for due, i in self._heap]
            heapq.heapify(self._heap)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for collector in self.collectors:
            try:
                collector.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("close failed for %s", collector.target.name, exc_info=True)

    def _schedule(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    if self._heap and not self._paused and self._heap[0][0] <= now:
                        break
                    wait = self._heap[0][0] - now if self._heap and not self._paused else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                due = []
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
            for scheduled_at, index in due:
                self._pool.submit(self._run, index, scheduled_at)

    def _run(self, index: int, scheduled_at: float) -> None:
        collector = self.collectors[index]
        result = poll(collector, index, self.interval_s)
        self._failures[index] = 0 if result.error is None else self._failures[index] + 1
        try:
            self._on_result(result)
        except Exception:  # noqa: BLE001 - a consumer bug must not stop this target's polls
            log.exception("result handler failed for %s", collector.target.name)
        delay = next_delay_s(result, self._failures[index], self.interval_s)
        # Keep the cadence of the schedule, but never queue a burst after a slow poll.
        next_at = max(scheduled_at + delay, result.finished_at + min(delay, self.interval_s) / 2)
        with self._cond:
            if not self._stopped:
                heapq.heappush(self._heap, (next_at, index))
                self._cond.notify()


def poll_all(collectors: Sequence[Collector], interval_s: float) -> list[PollResult]:
    """Poll every collector once, concurrently; results in the collectors' order."""
    if not collectors:
        return []
    with ThreadPoolExecutor(max_workers=len(collectors), thread_name_prefix="poll") as pool:
        futures = [pool.submit(poll, c, i, interval_s) for i, c in enumerate(collectors)]
        return [f.result() for f in futures]
