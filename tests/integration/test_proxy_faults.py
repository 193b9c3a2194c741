"""Polls under network faults, through the fault proxy in front of real servers: a cut
connection (reliability.md section 2 row 4), a blackhole (row 2), odd INFO (row 11) and
LOADING / BUSY replies (rows 5, 6)."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from cachetop.collectors.base import CollectError, Collector, Deadline, Target
from cachetop.collectors.poller import poll, poll_all
from cachetop.collectors.registry import make_collector
from tests.faultproxy import FaultProxy, info_rewriter
from tests.integration.helpers import TwoPolls, memcached_target, redis_target
from tests.servers import MemcachedServer, RedisServer
from tests.wait import SLACK_S

Kind = str
SERVERS: dict[Kind, Callable[[], Any]] = {"redis": RedisServer, "memcached": MemcachedServer}
TARGETS: dict[Kind, Callable[..., Target]] = {"redis": redis_target,
                                              "memcached": memcached_target}


@pytest.fixture(params=["redis", "memcached"])
def kind(request: pytest.FixtureRequest) -> Kind:
    return str(request.param)


def stop(srv: Any) -> None:
    if isinstance(srv, MemcachedServer) and srv.proc is not None:
        srv.proc.kill()  # a SIGTERMed memcached that served connections takes a second
        srv.proc.wait(5)
    srv.close()


@pytest.fixture
def server(kind: Kind) -> Iterator[Any]:
    srv = SERVERS[kind]()
    srv.start()
    yield srv
    stop(srv)


@pytest.fixture
def redis_proxied(redis_server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy(redis_server.port) as proxy:
        yield proxy


def connections_received(server: Any, kind: Kind, direct: Any) -> int:
    """Connections the server itself has accepted so far, read from the server (a direct
    connection opened once, so asking adds nothing)."""
    if kind == "redis":
        return int(direct.info("stats")["total_connections_received"])
    return int(direct.stats()[b"total_connections"])


def collect(collector: Collector, budget_s: float = 1.0) -> str:
    """One poll: "up", or the CollectError's status. Any other exception escapes the test."""
    try:
        collector.collect(Deadline(budget_s))
    except CollectError as exc:
        error = exc
    else:
        return "up"
    assert error.message and "\n" not in error.message and len(error.message) <= 200
    return error.status


def test_cut_connection_fails_cleanly_then_reconnects_once(kind: Kind, server: Any) -> None:
    direct = server.client()
    with FaultProxy(server.port) as proxy:
        collector = make_collector(TARGETS[kind](proxy.port))
        try:
            assert [collect(collector) for _ in range(3)] == ["up"] * 3
            before = connections_received(server, kind, direct)
            assert proxy.accepted == 1  # the connection is kept between polls
            proxy.cut()
            assert collect(collector) in ("down", "timeout", "up")
            assert [collect(collector) for _ in range(3)] == ["up"] * 3
            assert proxy.accepted == 2  # exactly one reconnect, kept again afterwards
            assert connections_received(server, kind, direct) == before + 1
            assert proxy.open_connections() == 1  # the reset socket was not leaked
        finally:
            collector.close()


def test_cut_during_a_poll_fails_that_poll_at_once(kind: Kind, server: Any) -> None:
    with FaultProxy(server.port) as proxy:
        collector = make_collector(TARGETS[kind](proxy.port, timeout_s=2.0))
        try:
            assert collect(collector) == "up"
            proxy.latency(500)  # hold the next reply, then cut while it is held
            threading.Timer(0.2, proxy.cut).start()
            started = time.monotonic()
            assert collect(collector, 2.0) == "down"
            assert time.monotonic() - started < 1.0  # the reset ended it, not the timeout
            proxy.heal()
            assert collect(collector) == "up"
            assert proxy.accepted == 2
        finally:
            collector.close()


def sockets_to(port: int) -> int:
    """This process's open sockets to `port`: the collector's own connections to the proxy.

    Not every open fd: the proxy runs in this process too, and under load its threads may
    still be closing the sockets of a connection that was cut (a flake: 20 fds, not 18)."""
    gc.collect()  # only sockets something still holds stay open
    return sum(1 for c in psutil.Process().net_connections("tcp")
               if c.raddr and c.raddr.port == port)


def test_faults_leak_no_socket(kind: Kind, server: Any) -> None:
    """Every failed poll drops its connection and the next opens one: over many cuts and
    timeouts the process holds no more sockets than after the first."""
    with FaultProxy(server.port) as proxy:
        collector = make_collector(TARGETS[kind](proxy.port, timeout_s=0.2))
        try:
            assert collect(collector) == "up"
            baseline = sockets_to(proxy.port)
            assert baseline == 1
            for _ in range(10):
                proxy.cut()
                collect(collector)
                proxy.blackhole()
                assert collect(collector, 0.1) == "timeout"
                proxy.heal()
                assert collect(collector) == "up"
            assert sockets_to(proxy.port) <= baseline
            assert proxy.accepted == 21  # the first, then one per cut and one per timeout
        finally:
            collector.close()


@pytest.mark.parametrize(("kind", "fresh"), [
    ("memcached", False), ("memcached", True), ("redis", False),
    # redis-py's connect handshake (CLIENT SETINFO) reads with socket_timeout: a new
    # connection must bound it by what is left of the poll's deadline.
    ("redis", True),
], ids=["memcached-kept", "memcached-new", "redis-kept", "redis-new"])
def test_blackhole_times_out_within_the_deadline_alone(kind: Kind, server: Any,
                                                       fresh: bool) -> None:
    healthy = SERVERS[kind]()
    healthy.start()
    with FaultProxy(server.port) as proxy:
        interval = 0.5
        # The target timeout is longer than the interval: the poll's deadline must still win.
        holed = make_collector(TARGETS[kind](proxy.port, "holed", timeout_s=2.0))
        fine = make_collector(TARGETS[kind](healthy.port, "fine", timeout_s=2.0))
        try:
            assert [r.error for r in poll_all([holed, fine], interval)] == [None, None]
            proxy.blackhole()
            if fresh:
                holed.close()
            results = poll_all([holed, fine], interval)
        finally:
            holed.close()
            fine.close()
            stop(healthy)
    bad, good = results
    assert bad.error is not None and bad.error.status == "timeout"
    assert bad.finished_at - bad.started_at <= interval + SLACK_S
    assert good.error is None
    assert good.finished_at < bad.finished_at  # the healthy poll never waited for the hole


EVIL_VERSION = b"7.0.15\x1b[31m[link=https://x.example]click[/link]\x1b]8;;x\x07"


def garble_info(body: bytes) -> bytes:
    """INFO as a fork, a proxy or an attacker might send it (reliability.md row 11)."""
    out = []
    for line in body.replace(b"\r\n", b"\n").split(b"\n"):  # no \r at all
        name = line.partition(b":")[0]
        if name == b"maxclients":
            continue  # dropped
        out.append({
            b"connected_clients": b"connected_clients:-",
            b"used_memory": b"used_memory:1.2.3",
            b"uptime_in_seconds": b"uptime_in_seconds:",  # a key with no value
            b"redis_version": b"redis_version:" + EVIL_VERSION,
        }.get(name, line))
    out[1:1] = [b"latency_percentiles_usec_get:=1.0", b"empty:", b":", b"no colon at all",
                b"junk:" + b"j" * 1_000_000, b"os:" + b"\x1b" * 1_000_000]
    return b"\n".join(out) + b"\n"


def test_odd_info_is_parsed_per_field(redis_server: RedisServer,
                                      redis_proxied: FaultProxy) -> None:
    direct = redis_server.client()
    direct.mset({b"k:%d" % i: b"v" for i in range(123)})
    redis_proxied.rewrite_reply(info_rewriter(garble_info))
    polls = TwoPolls(redis_target(redis_proxied.port, timeout_s=2.0))
    try:
        first = polls.poll()
        hits_before = direct.info("stats")
        for i in range(7):
            direct.get(b"k:%d" % i)
        for i in range(4):
            direct.get(b"missing:%d" % i)
        second = polls.poll()
    finally:
        polls.close()
    real = direct.info()
    for figures in (first, second):
        assert figures.status == "up", figures.error
        assert figures.version == EVIL_VERSION.decode()  # kept literally: escaped at display
        assert figures.role == "master"
        assert figures.memory_used_bytes is None  # "1.2.3"
        assert figures.connections is None  # "-"
        assert figures.max_connections is None  # dropped
        assert figures.keys == 123
        assert figures.memory_system_bytes == real["total_system_memory"]
    raw_view = first.detail.info  # the instance screen's raw INFO: bounded, literal
    assert raw_view["redis_version"] == EVIL_VERSION.decode()
    assert all(len(value) < 100_000 for value in raw_view.values())
    assert second.hits_delta == real["keyspace_hits"] - hits_before["keyspace_hits"] == 7
    assert second.misses_delta == real["keyspace_misses"] - hits_before["keyspace_misses"] == 4
    assert second.lifetime_hit_ratio == pytest.approx(
        real["keyspace_hits"] / (real["keyspace_hits"] + real["keyspace_misses"]))


@pytest.mark.parametrize(("reply", "status"), [
    (b"-LOADING Redis is loading the dataset in memory\r\n", "loading"),
    (b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
     b"SHUTDOWN NOSCRIPT.\r\n", "busy"),
])
def test_loading_and_busy_replies_are_states_not_down(redis_proxied: FaultProxy, reply: bytes,
                                                      status: str) -> None:
    collector = make_collector(redis_target(redis_proxied.port))
    try:
        assert poll(collector, 0, 1.0).error is None
        redis_proxied.inject(reply)  # the next request is the next poll's INFO
        failed = poll(collector, 0, 1.0)
        assert failed.error is not None and failed.error.status == status
        assert failed.error.message and failed.error.message in reply.decode()
        assert poll(collector, 0, 1.0).error is None  # and back up on the next poll
    finally:
        collector.close()
