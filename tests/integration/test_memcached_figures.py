"""Memcached figures from a real memcached under known workloads."""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import TwoPolls, memcached_target
from tests.servers import MemcachedServer, free_port
from tests.wait import SLACK_S


def test_interval_hit_ratio_is_exact(memcached_server: MemcachedServer) -> None:
    client = memcached_server.client()
    for i in range(100):
        client.set(f"k{i}", b"v")
    for i in range(300):
        client.get(f"absent{i}")            # lifetime misses that must not leak in
    polls = TwoPolls(memcached_target(memcached_server.port))

    def workload() -> None:
        for i in range(800):
            client.get(f"k{i % 100}")
        for i in range(200):
            client.get(f"missing{i}")

    figures = polls.around(workload)
    polls.close()
    assert figures.status == "up"
    assert figures.hit_ratio == pytest.approx(0.8)
    assert figures.lifetime_hit_ratio == pytest.approx(800 / 1300)
    assert figures.keys == 100
    assert figures.interval_s is not None
    assert figures.ops_per_s is not None
    assert figures.ops_per_s * figures.interval_s == pytest.approx(1000)  # version is no command
    assert figures.server_latency.known is False      # memcached keeps no server latency
    assert figures.probe_latency.p99_s is not None


def test_evictions_per_s_match_write_rate_when_full() -> None:
    server = MemcachedServer(memory_mb=2)
    server.start()
    try:
        client = server.client()
        value = b"x" * 2000
        for i in range(4000):                 # 8 MB into 2 MB: evicting from now on
            client.set(f"fill{i}", value, noreply=True)
        client.get("sync")
        polls = TwoPolls(memcached_target(server.port))
        writes = 2000

        def workload() -> None:
            for i in range(writes):
                client.set(f"new{i}", value, noreply=False)

        figures = polls.around(workload)
        polls.close()
        assert figures.evictions_per_s is not None
        assert figures.interval_s is not None
        assert figures.evictions_per_s * figures.interval_s == pytest.approx(writes, rel=0.05)
        assert figures.memory_max_bytes == 2 * 1024 * 1024
    finally:
        server.close()


def test_restart_gives_a_gap_then_figures(memcached_server: MemcachedServer) -> None:
    client = memcached_server.client()
    for _ in range(500):
        client.get("a")
    polls = TwoPolls(memcached_target(memcached_server.port))
    polls.poll()
    memcached_server.restart()
    seen = [polls.poll() for _ in range(2)]
    client = memcached_server.client()
    for _ in range(10):
        client.get("a")
    time.sleep(0.05)
    after = polls.poll()
    polls.close()
    for figures in [*seen, after]:
        assert figures.ops_per_s is None or 0 <= figures.ops_per_s < 1000
    assert seen[-1].status == "restarted"
    assert after.status == "restarted"
    assert after.hit_ratio == 0.0


def test_closed_port_is_down() -> None:
    figures = TwoPolls(memcached_target(free_port())).poll()
    assert figures.status == "down"
    assert figures.error == "connection refused"


def test_hung_memcached_times_out_within_deadline(memcached_server: MemcachedServer) -> None:
    polls = TwoPolls(memcached_target(memcached_server.port, timeout_s=0.5))
    assert polls.poll().status == "up"
    memcached_server.freeze()
    try:
        started = time.monotonic()
        figures = polls.poll()
        elapsed = time.monotonic() - started
    finally:
        memcached_server.thaw()
    assert figures.status == "timeout"
    assert elapsed < 0.5 + SLACK_S
    assert polls.poll().status in ("up", "restarted")
    polls.close()
