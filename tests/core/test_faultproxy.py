"""The fault proxy itself, against a real redis-server: each toggle does what it says, and
close() leaves no thread or socket behind."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from tests.faultproxy import FaultProxy, info_rewriter, resp_frame_end
from tests.servers import RedisServer


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy(redis_server.port) as p:
        yield p


def raw(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=2)


def read_until_closed(sock: socket.socket) -> tuple[bytes, type[BaseException] | None]:
    """Everything received until the connection ends, and how it ended (None: a clean EOF)."""
    got = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            return got, type(exc)
        if not chunk:
            return got, None
        got += chunk


def server_clients(server: RedisServer) -> int:
    """Client connections the server has, not counting the one asking."""
    return int(server.client().info("clients")["connected_clients"]) - 1


def proxy_threads() -> int:
    return sum(t.name.startswith("faultproxy") for t in threading.enumerate())


def test_forwards_byte_for_byte(proxy: FaultProxy, redis_server: RedisServer) -> None:
    client = redis.Redis(port=proxy.port, socket_timeout=2, retry=None)
    value = os.urandom(300_000)  # several chunks each way
    client.set(b"k", value)
    assert client.get(b"k") == value
    assert redis_server.client().get(b"k") == value
    assert proxy.accepted == 1 and proxy.open_connections() == 1


def test_cut_resets_both_sides_and_new_connections_work(proxy: FaultProxy,
                                                        redis_server: RedisServer) -> None:
    socks = [raw(proxy) for _ in range(3)]
    for s in socks:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
    assert server_clients(redis_server) == 3
    proxy.cut()
    for s in socks:
        assert read_until_closed(s) == (b"", ConnectionResetError)  # an RST, not a FIN
        s.close()
    deadline = time.monotonic() + 2
    while server_clients(redis_server) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server_clients(redis_server) == 0
    assert proxy.open_connections() == 0
    with raw(proxy) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
    assert proxy.accepted == 4


def test_blackhole_accepts_but_never_forwards(proxy: FaultProxy,
                                              redis_server: RedisServer) -> None:
    with raw(proxy) as s:
        proxy.blackhole()
        s.settimeout(0.3)
        s.sendall(b"SET bh 1\r\n")
        with pytest.raises(TimeoutError):
            s.recv(100)
        assert redis_server.client().exists(b"bh") == 0  # the request never reached it
        with raw(proxy) as fresh:  # new connections are accepted, and go nowhere either
            fresh.settimeout(0.3)
            fresh.sendall(b"PING\r\n")
            with pytest.raises(TimeoutError):
                fresh.recv(100)
        proxy.heal()
        s.settimeout(2)
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"


def test_latency_delays_every_round_trip(proxy: FaultProxy) -> None:
    client = redis.Redis(port=proxy.port, socket_timeout=2, retry=None)
    client.ping()
    proxy.latency(150)
    started = time.monotonic()
    for _ in range(3):
        client.ping()
    assert time.monotonic() - started >= 0.45
    proxy.heal()
    started = time.monotonic()
    for _ in range(10):
        client.ping()
    assert time.monotonic() - started < 10 * 0.15  # less than the healed delay, on average


def test_reset_after_forwards_exactly_n_bytes_then_resets(proxy: FaultProxy,
                                                          redis_server: RedisServer) -> None:
    redis_server.client().set(b"big", b"x" * 100_000)
    with raw(proxy) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        proxy.reset_after(1234)
        s.sendall(b"GET big\r\n")
        got, ended = read_until_closed(s)
    assert (len(got), ended) == (1234, ConnectionResetError)
    assert got == b"$100000\r\n" + b"x" * (1234 - 9)
    with raw(proxy) as s:  # one shot: the next connection gets everything
        s.sendall(b"GET big\r\n")
        s.settimeout(2)
        got = b""
        while len(got) < 100_011:
            got += s.recv(65536)
        assert got == b"$100000\r\n" + b"x" * 100_000 + b"\r\n"


def test_rewrite_reply_reframes_info(proxy: FaultProxy) -> None:
    client = redis.Redis(port=proxy.port, socket_timeout=2, retry=None)
    proxy.rewrite_reply(info_rewriter(lambda body: body.replace(b"redis_mode:", b"redis_mode:X")
                                      + b"extra_field:\xe2\x9c\x93 " + b"y" * 70_000 + b"\r\n"))
    info = client.info()
    assert info["redis_mode"] == "Xstandalone"
    assert len(info["extra_field"]) > 70_000
    assert client.ping() is True  # other replies pass untouched
    proxy.rewrite_reply(lambda reply: None if reply.startswith(b"+PONG") else reply)
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_inject_answers_the_next_request_instead_of_the_server(
        proxy: FaultProxy, redis_server: RedisServer) -> None:
    client = redis.Redis(port=proxy.port, socket_timeout=2, retry=None,
                         single_connection_client=True)
    client.ping()
    proxy.inject(b"-LOADING Redis is loading the dataset in memory\r\n")
    with pytest.raises(redis.BusyLoadingError):
        client.set(b"never", b"1")
    assert redis_server.client().exists(b"never") == 0
    assert client.set(b"later", b"1") is True  # one shot
    assert redis_server.client().get(b"later") == b"1"


def test_resp_framing() -> None:
    reply = b"*3\r\n$3\r\nabc\r\n:5\r\n*2\r\n+OK\r\n$-1\r\n"
    assert resp_frame_end(reply) == len(reply)
    for cut_at in range(len(reply)):
        assert resp_frame_end(reply[:cut_at]) is None
    assert resp_frame_end(b"%1\r\n+a\r\n:1\r\n+next\r\n") == 12  # RESP3 map, then more
    assert resp_frame_end(b"=8\r\ntxt:info\r\n") == 14
    with pytest.raises(ValueError, match="not RESP"):
        resp_frame_end(b"STAT pid 1\r\n")


def test_close_leaves_no_thread_or_socket(redis_server: RedisServer) -> None:
    gc.collect()  # sockets earlier tests dropped are closed now, not during this test
    fds_before = set(os.listdir("/proc/self/fd"))
    threads_before = proxy_threads()
    proxy = FaultProxy(redis_server.port)
    clients = [raw(proxy) for _ in range(5)]
    for s in clients:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
    proxy.blackhole()
    clients[0].sendall(b"PING\r\n")  # one request held in the blackhole
    assert proxy_threads() == threads_before + 1 + 2 * 5
    proxy.close()
    for s in clients:
        s.close()
    assert proxy_threads() == threads_before
    gc.collect()
    assert set(os.listdir("/proc/self/fd")) <= fds_before
    with pytest.raises(ConnectionRefusedError):
        raw(proxy)
