"""Provides PollLoop: one thread multiplexing every target's non-blocking socket with epoll.

A poll is a generator (a "poll script") that yields Connect and Request operations and returns
a Sample; the loop performs each operation and resumes the script with the Reply. One loop
serves the whole fleet: no thread per target, so no GIL handover on every socket operation
(bench/README.md: that handover was most of the CPU at 1,000 targets).

Timers run on a grid of `tick_s` when the fleet is large, so polls that fall due within a tick
leave together and one epoll wait serves many replies; replies carry kernel arrival times, so
the grid delays no figure. Everything here runs on the loop's thread; other threads reach it
only through `call_soon_threadsafe`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cachetop.collectors.base import CollectError
from cachetop.collectors.wire import INCOMPLETE, Conn, Connect, Reply, Request, is_ip_literal

log = logging.getLogger(__name__)

Script = Generator[Any, Any, Any]
_IN, _OUT = select.EPOLLIN, select.EPOLLOUT
_ERR = select.EPOLLERR | select.EPOLLHUP
RESOLVE_TTL_S = 60.0


class Timer:
    """A scheduled call; `cancel()` makes the loop skip it (removal from the heap is lazy)."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Parallel:
    """Yielded by a poll script: run `scripts` at once on this loop, each under its own
    deadline of `budget_s`, and resume with their outcomes `[(value, error), ...]` in order
    once every one has finished. A topology's node polls run side by side this way, so a hung
    node costs the others nothing (no thread: the nodes' sockets share the one epoll)."""

    __slots__ = ("scripts", "budget_s", "classifiers")

    def __init__(self, scripts: list[Script], budget_s: float,
                 classifiers: list[Callable[[BaseException, float], CollectError]]) -> None:
        self.scripts, self.budget_s, self.classifiers = scripts, budget_s, classifiers


class Job:
    """One poll script in flight: its generator, deadline, and what to call with the outcome."""

    __slots__ = ("script", "on_done", "budget_s", "deadline", "conn", "done", "classify")

    def __init__(self, script: Script, budget_s: float,
                 on_done: Callable[[Any, CollectError | None], None],
                 classify: Callable[[BaseException, float], CollectError]) -> None:
        self.script = script
        self.on_done = on_done
        self.budget_s = budget_s
        self.classify = classify
        self.deadline: Timer | None = None
        self.conn: Conn | None = None
        self.done = False


def timeout_error(budget_s: float, conn: Conn | None) -> CollectError:
    """The timeout, worded by where the poll was: a TLS handshake that never finishes is
    usually a plaintext port (Redis waits silently for a command)."""
    if conn is not None and conn.phase == "handshake":
        return CollectError("timeout", f"timeout after {budget_s:g}s in the TLS handshake "
                                       "(a hung server, or a port without TLS?)")
    return CollectError("timeout", f"timeout after {budget_s:g}s")


class Resolver:
    """Host names resolved on one worker thread (getaddrinfo blocks), cached for a minute;
    IP literals and unix paths never come here."""

    def __init__(self, post: Callable[[Callable[[], None]], None]) -> None:
        self._post = post
        self._pool: ThreadPoolExecutor | None = None
        self._cache: dict[tuple[str, int], tuple[float, int, Any]] = {}

    def resolve(self, host: str, port: int,
                done: Callable[[tuple[int, Any] | BaseException], None]) -> None:
        cached = self._cache.get((host, port))
        if cached is not None and cached[0] > time.monotonic():
            done((cached[1], cached[2]))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resolve")

        def work() -> None:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                family, _, _, _, sockaddr = infos[0]
                result: tuple[int, Any] | BaseException = (family, sockaddr)
            except (OSError, UnicodeError) as exc:
                result = exc

            def deliver() -> None:
                if not isinstance(result, BaseException):
                    self._cache[(host, port)] = (time.monotonic() + RESOLVE_TTL_S, *result)
                done(result)

            self._post(deliver)

        self._pool.submit(work)

    def forget(self, host: str, port: int) -> None:
        self._cache.pop((host, port), None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class PollLoop:
    """The event loop: epoll over every open connection, a timer heap, thread-safe calls."""

    def __init__(self, tick_s: float = 0.0) -> None:
        self.tick_s = tick_s
        self._epoll = select.epoll()
        self._conns: dict[int, Conn] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._calls: deque[Callable[[], None]] = deque()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake_fd, _IN)
        self._extra: dict[int, Callable[[int], None]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.resolver = Resolver(self.call_soon_threadsafe)

    # -- scheduling -------------------------------------------------------------------------

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(time.monotonic() + delay_s, callback)

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        self._calls.append(callback)
        with contextlib.suppress(OSError):  # closed: the loop is gone
            os.eventfd_write(self._wake_fd, 1)

    def add_reader(self, fd: int, callback: Callable[[int], None]) -> None:
        """Watch a non-connection fd (a pipe from the front); `callback(events)` on activity."""
        self._extra[fd] = callback
        self._epoll.register(fd, _IN)

    def remove_reader(self, fd: int) -> None:
        if self._extra.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    def watch_writable(self, fd: int, on: bool) -> None:
        """Toggle EPOLLOUT for an extra fd (a pipe the engine writes snapshots to)."""
        if fd in self._extra:
            self._epoll.modify(fd, _IN | (_OUT if on else 0))

    # -- jobs -------------------------------------------------------------------------------

    def start(self, script: Script, budget_s: float,
              on_done: Callable[[Any, CollectError | None], None],
              classify: Callable[[BaseException, float], CollectError],
              left_s: float | None = None) -> Job:
        """Run a poll script under a hard deadline of `budget_s` for the whole poll (of which
        `left_s` remains, when part of it was spent before)."""
        job = Job(script, budget_s, on_done, classify)
        job.deadline = self.call_later(budget_s if left_s is None else left_s,
                                       lambda: self._expire(job))
        self._advance(job, None, None)
        return job

    def _expire(self, job: Job) -> None:
        if job.done:
            return
        conn = job.conn
        if conn is not None and conn.phase == "open" and conn.framing is not None:
            # The loop may have been busy past this deadline (a burst of work, more ready
            # sockets than one wait returns): a reply already in the socket is read first, and
            # a poll it completes is not a timeout.
            self._on_event(conn, _IN)
            if job.done:
                return
        self._advance(job, None, timeout_error(job.budget_s, job.conn))

    def _advance(self, job: Job, value: Any, error: BaseException | None) -> None:
        """Resume the script with a reply (or throw an error into it) until it waits again."""
        try:
            op = job.script.throw(error) if error is not None else job.script.send(value)
        except StopIteration as stop:
            self._finish(job, stop.value, None)
        except CollectError as exc:
            self._finish(job, None, exc)
        except Exception as exc:  # noqa: BLE001 - every failure of a poll is data
            self._finish(job, None, job.classify(exc, job.budget_s))
        else:
            self._dispatch(job, op)

    def _finish(self, job: Job, sample: Any, error: CollectError | None) -> None:
        if job.done:
            return
        job.done = True
        if job.deadline is not None:
            # The timer's callback holds the job: dropping this link leaves no cycle for the
            # cyclic GC to find (one per poll, thousands a second at fleet size).
            job.deadline.cancel()
            job.deadline = None
        if job.conn is not None and job.conn.job is job:
            job.conn.job = None
        job.conn = None
        job.on_done(sample, error)

    def _dispatch(self, job: Job, op: Any) -> None:
        try:
            if isinstance(op, Request):
                self._request(job, op)
            elif isinstance(op, Connect):
                self._connect(job, op.conn)
            elif isinstance(op, Parallel):
                self._parallel(job, op)
            else:
                raise TypeError(f"a poll script yielded {type(op).__name__}")
        except Exception as exc:  # noqa: BLE001 - thrown back into the script
            self._advance(job, None, exc)

    def _request(self, job: Job, op: Request) -> None:
        conn = op.conn
        if not conn.is_open:
            raise ConnectionError("not connected")
        job.conn, conn.job = conn, job
        conn.framing = op.framing
        if not op.data:
            # The next reply of a pipeline: it may have come in with the previous one.
            value = op.framing.feed(b"")
            if value is not INCOMPLETE:
                conn.framing = None
                self._advance(job, Reply(value, conn.sent_ns, conn.arrived_ns), None)
            return
        conn.sent_ns = time.time_ns()
        conn.send(op.data)
        self._set_mask(conn, _IN | (_OUT if conn.out else 0))

    def _parallel(self, job: Job, op: Parallel) -> None:
        outcomes: list[tuple[Any, CollectError | None]] = [(None, None)] * len(op.scripts)
        left = [len(op.scripts)]
        job.conn = None
        if not op.scripts:
            self.call_later(0.0, lambda: None if job.done else self._advance(job, [], None))
            return

        def finisher(index: int) -> Callable[[Any, CollectError | None], None]:
            def done(value: Any, error: CollectError | None) -> None:
                outcomes[index] = (value, error)
                left[0] -= 1
                if left[0] == 0 and not job.done:  # a parent past its deadline is gone
                    self._advance(job, outcomes, None)
            return done

        for index, (script, classify) in enumerate(zip(op.scripts, op.classifiers,
                                                       strict=True)):
            self.start(script, op.budget_s, finisher(index), classify)

    def _connect(self, job: Job, conn: Conn) -> None:
        job.conn, conn.job = conn, job
        if isinstance(conn.address, str):
            self._begin_connect(conn, socket.AF_UNIX, conn.address)
            return
        host, port = conn.address
        if is_ip_literal(host):
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._begin_connect(conn, family, (host, port))
            return
        conn.phase = "resolving"

        def resolved(result: tuple[int, Any] | BaseException) -> None:
            if conn.job is not job or job.done:
                return
            if isinstance(result, BaseException):
                self._advance(job, None, result)
                return
            try:
                self._begin_connect(conn, *result)
            except Exception as exc:  # noqa: BLE001 - thrown back into the script
                self.resolver.forget(host, port)
                self._advance(job, None, exc)

        self.resolver.resolve(host, port, resolved)

    def _begin_connect(self, conn: Conn, family: int, sockaddr: Any) -> None:
        done = conn.start_connect(family, sockaddr)
        conn.on_close = self._forget
        conn.mask = 0
        self._conns[conn.fd] = conn
        if done:
            self._connected(conn)
        else:
            self._set_mask(conn, _OUT)

    def _connected(self, conn: Conn) -> None:
        conn.finish_connect()
        if conn.phase == "handshake":
            self._handshake(conn)
        else:
            self._set_mask(conn, _IN)
            self._resume(conn, None)

    def _handshake(self, conn: Conn) -> None:
        done = conn.handshake()
        conn.write_pending()
        self._set_mask(conn, _IN | (_OUT if conn.out else 0))
        if done:
            self._resume(conn, None)

    def _resume(self, conn: Conn, value: Any) -> None:
        job = conn.job
        if job is not None and not job.done:
            self._advance(job, value, None)

    def _set_mask(self, conn: Conn, mask: int) -> None:
        if conn.mask == mask or conn.fd < 0:
            return
        if conn.mask == 0:
            self._epoll.register(conn.fd, mask)
        else:
            self._epoll.modify(conn.fd, mask)
        conn.mask = mask

    def _forget(self, conn: Conn) -> None:
        if self._conns.get(conn.fd) is conn:
            del self._conns[conn.fd]
            if conn.mask:
                with contextlib.suppress(OSError, ValueError):
                    self._epoll.unregister(conn.fd)
        conn.mask = 0
        conn.on_close = None

    def adopt(self, conn: Conn) -> None:
        """Take over an open connection another loop drove (the blocking driver's loops)."""
        if conn.fd >= 0 and self._conns.get(conn.fd) is not conn:
            conn.on_close = self._forget
            conn.mask = 0
            self._conns[conn.fd] = conn
            self._set_mask(conn, _IN)

    # -- events -----------------------------------------------------------------------------

    def _on_event(self, conn: Conn, events: int) -> None:
        job = conn.job
        try:
            if conn.phase == "connecting":
                self._connected(conn)
                return
            if conn.phase == "handshake":
                if events & (_IN | _ERR):
                    conn.receive()
                self._handshake(conn)
                return
            if events & _OUT:
                conn.write_pending()
                self._set_mask(conn, _IN | (_OUT if conn.out else 0))
            if not events & (_IN | _ERR):
                return
            data = conn.receive()
            if job is None or job.done or conn.framing is None:
                if data is None or data:  # a close (or stray bytes) on an idle connection
                    conn.close()
                return
            value = conn.framing.feed(data) if data is not None else conn.framing.eof()
        except Exception as exc:  # noqa: BLE001 - thrown back into the script
            if job is not None and not job.done:
                self._advance(job, None, exc)
            else:
                conn.close()
            return
        if value is not INCOMPLETE:
            conn.framing = None
            conn.replied = True
            self._advance(job, Reply(value, conn.sent_ns, conn.arrived_ns), None)

    def _drain_calls(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.eventfd_read(self._wake_fd)
        while self._calls:
            callback = self._calls.popleft()
            try:
                callback()
            except Exception:  # noqa: BLE001 - one bad callback must not stop the loop
                log.exception("loop callback failed")

    def _run_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, timer = heapq.heappop(timers)
            if timer.cancelled:
                continue
            try:
                timer.callback()
            except Exception:  # noqa: BLE001 - one bad timer must not stop the loop
                log.exception("timer callback failed")

    def _wait_s(self, now: float, limit: float | None) -> float:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        if self._calls:
            return 0.0
        wait = limit if limit is not None else 3600.0
        if timers:
            due = timers[0][0]
            if self.tick_s > 0:
                due = math.ceil(due / self.tick_s) * self.tick_s
            wait = min(wait, max(0.0, due - now))
        return wait

    def run_once(self, limit_s: float | None = None) -> None:
        """Wait for events or the next timer (at most `limit_s`), then handle what is due:
        I/O first, so a reply already received is never declared late by its deadline."""
        now = time.monotonic()
        try:
            events = self._epoll.poll(self._wait_s(now, limit_s))
        except InterruptedError:
            events = []
        conns, extra = self._conns, self._extra
        for fd, mask in events:
            conn = conns.get(fd)
            if conn is not None:
                self._on_event(conn, mask)
            elif fd == self._wake_fd:
                self._drain_calls()
            elif fd in extra:
                extra[fd](mask)
        self._run_timers(time.monotonic())

    def run_until(self, done: Callable[[], bool]) -> None:
        while not done() and not self._stopping:
            self.run_once(0.5)

    def run_forever(self) -> None:
        self._thread = threading.current_thread()
        while not self._stopping:
            self.run_once()

    def stop(self) -> None:
        """Ask the loop to return from run_forever (any thread)."""
        self._stopping = True
        self.call_soon_threadsafe(lambda: None)

    def close(self) -> None:
        """Release the epoll and the wakeup fd; connections stay with their owners."""
        for conn in list(self._conns.values()):
            conn.on_close = None
            conn.mask = 0
        self._conns.clear()
        self.resolver.close()
        self._epoll.close()
        os.close(self._wake_fd)
        self._wake_fd = -1
