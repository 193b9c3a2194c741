"""Provides LoopCollector, the shell every collector shares, and run_blocking(), which runs one
poll script to completion on a private loop: `collector.collect(Deadline(1.0))` for scripts,
tests and `--once` paths that want a plain function call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from cachetop.collectors.base import CollectError, Deadline, Target
from cachetop.collectors.netloop import PollLoop, Script
from cachetop.collectors.wire import Conn

if TYPE_CHECKING:
    from cachetop.collectors.sample import Sample


class LoopCollector:
    """A collector whose poll is a script for the event loop.

    Any failure closes the connection, so the next poll reconnects: a stale connection never
    lingers, and a half-read reply can never be taken for the next one.
    """

    kind: ClassVar[str]
    target: Target
    # Drill-down detail (INFO all, slowlog, slabs...) costs far more than a poll; the engine
    # fetches it once at the start (it also finds optional commands the server refuses) and
    # then only for targets a screen shows. Alone, a collector keeps fetching it.
    detail_wanted = True
    # CLIENT LIST with the detail: only while a screen shows the Clients tab (the README's
    # least-privilege monitor user is not granted it, and the ACL LOG would say so each time).
    clients_wanted = False
    _next_detail_at = 0.0
    _detail_fetched = False

    def want_detail(self, wanted: bool) -> None:
        """Fetch detail (at the next poll, then every detail_every_s) or stop fetching it."""
        self.detail_wanted = wanted
        if wanted:
            self._next_detail_at = 0.0
            self._detail_fetched = False

    def defer_first_detail(self, at: float) -> None:
        """Fetch the one-time startup detail no earlier than `at` (monotonic; inf: never unless
        wanted). INFO all costs the server and the engine far more than a poll."""
        self._next_detail_at = at

    def detail_due(self, now: float) -> bool:
        if now < self._next_detail_at or (self._detail_fetched and not self.detail_wanted):
            return False
        self._next_detail_at = now + self.target.detail_every_s
        self._detail_fetched = True
        return True

    def poll(self) -> Script:
        """One poll: a generator yielding Connect/Request and returning a Sample."""
        try:
            return (yield from self._poll())
        except BaseException:
            self.close()
            raise

    def _poll(self) -> Script:
        raise NotImplementedError

    def classify(self, exc: BaseException, timeout_s: float) -> CollectError:
        """Turn an exception of the wire or the protocol into a status and one line."""
        raise NotImplementedError

    def connections(self) -> tuple[Conn, ...]:
        """The connections kept between polls (handed to whichever loop runs the next one)."""
        return ()

    def close(self) -> None:
        for conn in self.connections():
            conn.close()

    def collect(self, deadline: Deadline) -> Sample:
        """Poll once, blocking, within the deadline. Raises CollectError."""
        return run_blocking(self, deadline)  # type: ignore[no-any-return]


def run_blocking(collector: LoopCollector, deadline: Deadline) -> Any:
    """Run one poll of `collector` on a loop of its own; return its Sample or raise."""
    left_s = deadline.left_s()
    loop = PollLoop()
    outcome: list[tuple[Any, CollectError | None]] = []
    try:
        for conn in collector.connections():
            loop.adopt(conn)
        loop.start(collector.poll(), deadline.budget_s, lambda s, e: outcome.append((s, e)),
                   collector.classify, left_s)
        loop.run_until(lambda: bool(outcome))
    finally:
        loop.close()
    sample, error = outcome[0]
    if error is not None:
        raise error
    return sample
