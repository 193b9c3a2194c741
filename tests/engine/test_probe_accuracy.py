"""Probe round trips are the server's, not cachetop's queueing: with a few hundred targets
polled and the TUI redrawing, the probe p50/p99 cachetop shows for a quiet Redis and a quiet
memcached are within max(3x, +0.3 ms) of what an independent client measures meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import textwrap

from cachetop.config import load_config
from cachetop.tui.app import CachetopApp
from tests.integration.helpers import memcached_target, redis_target
from tests.servers import MemcachedServer, RedisServer
from tests.tui.pilot import wait_for

EXTRA_TARGETS = 300  # polled beside the two measured ones, on servers of their own
SECONDS = 12.0  # the independent clients run from before cachetop starts to the end

# An independent client in a process of its own: plain blocking sockets, one probe every
# 10 ms, the same commands cachetop probes with.
INDEPENDENT = textwrap.dedent("""
    import json, socket, sys, time
    port, command, end, seconds = int(sys.argv[1]), sys.argv[2].encode() + b"\\r\\n", \\
        sys.argv[3].encode(), float(sys.argv[4])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts, stop = [], time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        sock.sendall(command)
        reply = b""
        while not reply.endswith(end):
            reply += sock.recv(4096)
        rtts.append(time.perf_counter() - started)
        time.sleep(0.01)
    rtts.sort()
    print(json.dumps({"p50": rtts[len(rtts) // 2], "p99": rtts[int(len(rtts) * 0.99)]}))
""")


def start_independent(port: int, command: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", INDEPENDENT, str(port), command, "\r\n",
                             str(SECONDS)], stdout=subprocess.PIPE, text=True)


def not_inflated(shown_s: float, independent_s: float) -> bool:
    """At most max(3x, +0.3 ms) of the independent client's figure.

    Only the upper bound is meaningful: the independent client times in user space, so its
    figures include its own wake-ups (a loaded machine puts milliseconds in its p99), while
    cachetop reads the kernel's arrival time; on loopback, -0.3 ms is below zero anyway.
    """
    return 1e-6 <= shown_s <= max(3 * independent_s, independent_s + 0.0003)


def test_probe_latency_on_screen_matches_an_independent_client() -> None:
    quiet_redis, quiet_mc = RedisServer(), MemcachedServer()
    busy_redis, busy_mc = RedisServer("--maxclients", "2000"), MemcachedServer("-c", "2000")
    servers = [quiet_redis, quiet_mc, busy_redis, busy_mc]
    for server in servers:
        server.start()
    targets = [redis_target(quiet_redis.port, "quiet-redis"),
               memcached_target(quiet_mc.port, "quiet-memcached")]
    targets += [redis_target(busy_redis.port, f"r{i}") if i % 2 else
                memcached_target(busy_mc.port, f"m{i}") for i in range(EXTRA_TARGETS)]
    config = dataclasses.replace(load_config(None, {}), targets=tuple(targets), interval_s=0.5)
    independent: list[subprocess.Popen[str]] = []

    async def scenario() -> dict[str, tuple[float | None, float | None]]:
        # Both sides measure the same minute: cachetop's probe window (the last 60 s) holds
        # everything since its first poll, so the independent clients start first, and the
        # figures are read when they finish (startup included on both sides).
        for port, command in ((quiet_redis.port, "PING"), (quiet_mc.port, "version")):
            independent.append(start_independent(port, command))
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and all(
                t.status == "up" for t in app.snapshot.targets), timeout_s=30)
            while any(p.poll() is None for p in independent):  # the UI redraws meanwhile
                await pilot.press("s")
                await pilot.pause(0.2)
            assert app.snapshot is not None
            return {t.name: (t.probe_latency.p50_s, t.probe_latency.p99_s)
                    for t in app.snapshot.targets if t.name.startswith("quiet")}

    try:
        shown = asyncio.run(scenario())
        measured = [json.loads(p.communicate(timeout=30)[0]) for p in independent]
    finally:
        for process in independent:
            if process.poll() is None:
                process.kill()
        for server in servers:
            server.close()
    for name, ref in zip(("quiet-redis", "quiet-memcached"), measured, strict=True):
        p50, p99 = shown[name]
        assert p50 is not None and p99 is not None
        assert not_inflated(p50, ref["p50"]), (name, p50, ref)
        assert not_inflated(p99, ref["p99"]), (name, p99, ref)
