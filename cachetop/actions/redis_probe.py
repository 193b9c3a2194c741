"""Provides RedisProbe (a PING between a bulk delete's batches) and LatencyProbe (PINGs beside one).

It feeds the Pacer (pacing.py), which slows the run when the server answers others slowly.
A probe every PROBE_EVERY_S is often enough to react within a few batches and rare enough not
to add a round trip to every batch of a fast run.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable

import redis

from cachetop.actions.pacing import Pacer
from cachetop.actions.runner import Tally
from cachetop.collectors.wire import SO_TIMESTAMPNS

BASELINE_PROBES = 5
PROBE_EVERY_S = 0.01


def ping_s(client: redis.Redis) -> float:
    started = time.perf_counter()
    client.ping()
    return time.perf_counter() - started


class RedisProbe:
    """Measures a baseline now (before any write), then probes at most every PROBE_EVERY_S."""

    def __init__(self, client: redis.Redis, pacer: Pacer, tally: Tally) -> None:
        self.client, self.pacer, self.tally = client, pacer, tally
        pacer.set_baseline([ping_s(client) for _ in range(BASELINE_PROBES)])
        self._probed_at = time.monotonic()

    def after_batch(self) -> None:
        now = time.monotonic()
        if now - self._probed_at < PROBE_EVERY_S:
            return
        self._probed_at = now
        self.pacer.observe_probe(ping_s(self.client))
        self.tally.slowdowns = self.pacer.slowdowns
        self.tally.limit_keys_per_s = self.pacer.current


LATENCY_PROBE_EVERY_S = 0.005
_PING = b"*1\r\n$4\r\nPING\r\n"
_TIMESPEC = struct.Struct("@qq")


def kernel_timed_ping(sock: socket.socket) -> float:
    """One PING's round trip on a plain socket with SO_TIMESTAMPNS set: the send time read
    just before send(), the arrival from the kernel's receive timestamp, so time this thread
    spends waiting for the GIL (the flush's own thread is busy) is not in the figure."""
    sent = time.time_ns()
    sock.sendall(_PING)
    reply, arrived = b"", 0
    while not reply.endswith(b"\r\n"):
        data, ancdata, _, _ = sock.recvmsg(512, socket.CMSG_SPACE(_TIMESPEC.size))
        if not data:
            raise redis.ConnectionError("the server closed the probe connection")
        reply += data
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and \
                    len(payload) >= _TIMESPEC.size:
                seconds, nanos = _TIMESPEC.unpack_from(payload)
                arrived = seconds * 1_000_000_000 + nanos
    if reply != b"+PONG\r\n":
        raise redis.ResponseError(reply.decode("utf-8", "replace").strip()[:200])
    return max(0, (arrived or time.time_ns()) - sent) / 1e9


class LatencyProbe:
    """PINGs on a connection of its own, from a thread, every LATENCY_PROBE_EVERY_S while a
    pipelined flush runs: each waits in the server's queue as another client's GET would, behind
    the command of ours being run, so its round trip is what our work costs the others.

    A thread (not a PING between our commands) because our connection is never idle: a probe
    sent on it would wait behind our own pipeline. On a plain socket (TCP or unix) the arrival
    is the kernel's timestamp (kernel_timed_ping); over TLS, the time the thread reads it. When
    the probe connection fails (an ACL without PING, a cut) it stops, and `error` says why;
    the flush goes on unprobed.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.error: str | None = None
        self._samples: deque[float] = deque(maxlen=1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cachetop-flush-probe",
                                        daemon=True)
        self._ping: Callable[[], float] = lambda: ping_s(client)
        connection = client.connection
        sock = getattr(connection, "_sock", None)
        if type(sock) is socket.socket:  # not TLS: raw PINGs with kernel timestamps
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self._ping = lambda: kernel_timed_ping(sock)

    def baseline(self, count: int = BASELINE_PROBES) -> list[float]:
        """`count` round trips now, before the first write: the idle latency."""
        return [self._ping() for _ in range(count)]

    def start(self) -> None:
        self._thread.start()

    def take(self) -> list[float]:
        """The round trips measured since the last take()."""
        out: list[float] = []
        while self._samples:
            out.append(self._samples.popleft())
        return out

    def _run(self) -> None:
        while not self._stop.wait(LATENCY_PROBE_EVERY_S):
            try:
                self._samples.append(self._ping())
            except (redis.RedisError, OSError) as exc:
                self.error = type(exc).__name__
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.client.close()
