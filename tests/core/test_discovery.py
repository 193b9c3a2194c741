"""Tests for discover_local(): real servers on free ports, plus the pure dedupe rules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import NamedTuple

import psutil
import pytest

from cachetop import discovery
from cachetop.discovery import (
    Listener,
    discover_local,
    probe_standard_ports,
    process_listeners,
    targets_from_listeners,
)
from tests.servers import MemcachedServer, RedisServer


def test_finds_real_redis_and_memcached(
    redis_server: RedisServer, memcached_server: MemcachedServer
) -> None:
    started = time.monotonic()
    found = discover_local()
    elapsed_s = time.monotonic() - started
    by_port = {port: [t for t in found if t.port == port]
               for port in (redis_server.port, memcached_server.port)}
    (redis,) = by_port[redis_server.port]
    (memcached,) = by_port[memcached_server.port]
    assert (redis.kind, redis.name, redis.host) == (
        "redis", f"redis 127.0.0.1:{redis_server.port}", "127.0.0.1")
    assert (memcached.kind, memcached.name, memcached.address) == (
        "memcached", f"memcached 127.0.0.1:{memcached_server.port}",
        f"127.0.0.1:{memcached_server.port}")
    assert redis.password is None
    assert memcached.password is None
    assert elapsed_s < 5.0  # reads /proc through psutil: no probe may hang (a loaded machine
    assert len({t.address for t in found}) == len(found)  # took 1.2 s where idle it takes 0.1)


def test_finds_a_redis_unix_socket() -> None:
    server = RedisServer()
    path = server.dir / "redis.sock"
    server.args += ["--unixsocket", str(path)]
    server.start()
    try:
        found = [t for t in discover_local() if t.socket_path == str(path)]
    finally:
        server.close()
    assert [(t.kind, t.name) for t in found] == [("redis", f"redis unix:{path}")]


def test_a_stopped_server_is_not_found(redis_server: RedisServer) -> None:
    port = redis_server.port
    redis_server.stop()
    assert all(t.port != port for t in discover_local())


def redis(pid: int | None, host: str, port: int, server: str = "redis") -> Listener:
    return Listener(server, "redis", pid, host, port)


def memcached(pid: int | None, host: str, port: int) -> Listener:
    return Listener("memcached", "memcached", pid, host, port)


# listeners -> [(name, kind)] of the resulting targets.
DEDUPE = [
    ([redis(10, "127.0.0.1", 7000)], [("redis 127.0.0.1:7000", "redis")]),
    ([redis(10, "0.0.0.0", 7000)], [("redis 127.0.0.1:7000", "redis")]),
    ([redis(10, "::", 7000)], [("redis [::1]:7000", "redis")]),
    ([redis(10, "::1", 7000), redis(10, "127.0.0.1", 7000)], [("redis 127.0.0.1:7000", "redis")]),
    ([memcached(11, "::", 7001), memcached(11, "0.0.0.0", 7001)],
     [("memcached 127.0.0.1:7001", "memcached")]),
    ([redis(10, "::ffff:127.0.0.1", 7000)], [("redis 127.0.0.1:7000", "redis")]),
    ([redis(10, "10.1.2.3", 7000), redis(10, "::1", 7000)], [("redis [::1]:7000", "redis")]),
    ([redis(10, "10.1.2.3", 7000)], [("redis 10.1.2.3:7000", "redis")]),
    ([redis(12, "127.0.0.1", 7002, "valkey")], [("valkey 127.0.0.1:7002", "redis")]),
    ([Listener("redis", "redis", 10, socket_path="/run/redis.sock"),
      Listener("redis", "redis", 10, socket_path="/run/redis.sock")],
     [("redis unix:/run/redis.sock", "redis")]),
    ([redis(10, "fe80::1%eth0", 7000)], []),
    ([redis(None, "127.0.0.1", 6379), memcached(None, "127.0.0.1", 11211)],
     [("redis 127.0.0.1:6379", "redis"), ("memcached 127.0.0.1:11211", "memcached")]),
    # Two processes on one port number but different addresses stay two servers.
    ([redis(10, "127.0.0.1", 7000), redis(20, "127.0.0.2", 7000)],
     [("redis 127.0.0.1:7000", "redis"), ("redis 127.0.0.2:7000", "redis")]),
]


@pytest.mark.parametrize(("listeners", "expected"), DEDUPE)
def test_targets_from_listeners(listeners: list[Listener], expected: list[tuple[str, str]]) -> None:
    assert [(t.name, t.kind) for t in targets_from_listeners(listeners)] == expected


class Addr(NamedTuple):
    ip: str
    port: int


class FakeConn:
    def __init__(self, laddr: object, status: str = psutil.CONN_LISTEN) -> None:
        self.laddr, self.status = laddr, status


class FakeProcess:
    """A process whose inspection fails the way psutil fails for other users and dead pids."""

    def __init__(self, pid: int, name: str, error: Exception | None = None,
                 cmdline: list[str] | None = None) -> None:
        self.pid, self.info, self._error, self._cmdline = pid, {"name": name}, error, cmdline

    def net_connections(self, kind: str) -> list[FakeConn]:
        if self._error is not None:
            raise self._error
        if kind == "unix":
            return [FakeConn("/run/r.sock", psutil.CONN_NONE), FakeConn("")]
        return [FakeConn(Addr("0.0.0.0", 7000 + self.pid)),
                FakeConn(Addr("127.0.0.1", 40000), psutil.CONN_ESTABLISHED)]

    def cmdline(self) -> list[str]:
        if self._cmdline is None:
            raise psutil.AccessDenied(self.pid)
        return self._cmdline


def test_process_listeners_survive_denied_and_vanished_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processes = [
        FakeProcess(1, "bash"),
        FakeProcess(2, "redis-server"),
        FakeProcess(3, "memcached", psutil.NoSuchProcess(3)),
        FakeProcess(4, "redis-server", psutil.AccessDenied(4), ["redis-server *:7777", ""]),
        FakeProcess(5, "redis-server", psutil.AccessDenied(5)),
        FakeProcess(6, "memcached", psutil.AccessDenied(6)),
        FakeProcess(7, "valkey-server", psutil.ZombieProcess(7)),
        FakeProcess(8, "memcached"),
    ]

    def process_iter(attrs: list[str]) -> Iterator[FakeProcess]:
        return iter(processes)

    monkeypatch.setattr(discovery.psutil, "process_iter", process_iter)
    assert sorted(process_listeners(), key=str) == sorted([
        redis(2, "0.0.0.0", 7002),
        Listener("redis", "redis", 2, socket_path="/run/r.sock"),
        redis(4, "*", 7777),
        memcached(8, "0.0.0.0", 7008),
    ], key=str)


@pytest.mark.parametrize(("known", "probed"), [
    ([], [6379, 11211]),
    ([redis(1, "0.0.0.0", 6379)], [11211]),
    ([redis(1, "127.0.0.1", 6379), memcached(2, "::ffff:127.0.0.1", 11211)], []),
    ([redis(1, "10.1.2.3", 6379)], [6379, 11211]),
])
def test_standard_ports_are_probed_only_when_unexplained(
    monkeypatch: pytest.MonkeyPatch, known: list[Listener], probed: list[int]
) -> None:
    calls: list[int] = []

    def accepts(port: int, timeout_s: float) -> bool:
        calls.append(port)
        return port == 11211

    monkeypatch.setattr(discovery, "_accepts", accepts)
    found = probe_standard_ports(known, timeout_s=0.1)
    assert sorted(calls) == probed
    expected = [memcached(None, "127.0.0.1", 11211)]
    assert found == (expected if 11211 in probed else [])
