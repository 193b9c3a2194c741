"""`cachetop agent` /metrics against real servers: known workloads, promtool, no credential,
a scrape never polls, sharding, tokens."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.helpers import (
    PASSWORD,
    ROOT,
    AgentProcess,
    agent_of_a_password_redis,
    by_target,
    credential_forms,
    get,
    memcached_workload,
    redis_workload,
    require_tool,
    samples,
    write_config,
)
from tests.servers import MemcachedServer, RedisServer
from tests.wait import wait_until


def metrics_after(agent: AgentProcess, ready: str, token: str | None = None,
                  targets: int = 1) -> str:
    """/metrics once the metric `ready` has a sample for `targets` targets."""
    text = ""

    def has() -> bool:
        nonlocal text
        status, body = get(f"{agent.url}/metrics", token)
        text = body.decode()
        return status == 200 and len(by_target(text, ready)) >= targets

    wait_until(has, f"{ready} in /metrics")
    return text


def test_counters_and_gauges_of_a_known_workload(redis_server: RedisServer,
                                                  memcached_server: MemcachedServer,
                                                  tmp_path: Path) -> None:
    redis_workload(redis_server, hits=800, misses=200)
    memcached_workload(memcached_server, hits=300, misses=100)
    config = write_config(tmp_path / "c.toml", [("r", redis_server.url),
                                                ("m", memcached_server.url)], interval_s=0.3)
    agent = AgentProcess("--config", str(config)).wait_ready()
    try:
        text = metrics_after(agent, "cachetop_keys", targets=2)
        assert by_target(text, "cachetop_hits_total") == {"r": 800.0, "m": 300.0}
        assert by_target(text, "cachetop_misses_total") == {"r": 200.0, "m": 100.0}
        assert by_target(text, "cachetop_keys") == {"r": 1.0, "m": 1.0}
        assert by_target(text, "cachetop_target_up") == {"r": 1.0, "m": 1.0}
        memory = by_target(text, "cachetop_memory_limit_bytes")
        assert memory["m"] == 64 * 1024 * 1024  # memcached -m 64
        labels = {dict(k)["target"]: dict(k) for k in samples(text, "cachetop_target_up")}
        assert labels["r"]["kind"] == "redis"
        assert labels["r"]["address"] == f"127.0.0.1:{redis_server.port}"
        status = samples(text, "cachetop_target_status")
        assert {dict(k)["status"] for k in status} == {"up"}
        # The interval figures of a new workload: 90 hits and 10 misses between two polls.
        redis_workload(redis_server, hits=90, misses=10)

        def ratio_seen() -> bool:
            _, body = get(f"{agent.url}/metrics")
            shown = by_target(body.decode(), "cachetop_hit_ratio")
            return bool(shown) and abs(shown.get("r", 0.0) - 0.90) < 0.011

        wait_until(ratio_seen, "the hit ratio of 90 hits and 10 misses (0.90)")
    finally:
        agent.stop()


def test_promtool_accepts_the_exposition(redis_server: RedisServer,
                                          memcached_server: MemcachedServer) -> None:
    promtool = require_tool("promtool")
    redis_workload(redis_server, hits=50, misses=5)
    agent = AgentProcess(redis_server.url, memcached_server.url, "--interval", "0.3")
    agent.wait_ready()
    try:
        metrics_after(agent, "cachetop_interval_seconds")
        redis_workload(redis_server, hits=50, misses=5)  # traffic, for the latency histogram
        text = metrics_after(agent, "cachetop_server_latency_seconds_bucket")
        checked = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                                 capture_output=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        agent.stop()


def test_no_credential_in_metrics_raw_encoded_or_base64() -> None:
    with agent_of_a_password_redis() as (agent, _):
        text = metrics_after(agent, "cachetop_hits_total")
        assert by_target(text, "cachetop_hits_total")  # it did authenticate
        for form in credential_forms(PASSWORD):
            assert form not in text
            assert form not in agent.stderr()


def test_a_scrape_never_polls(redis_server: RedisServer) -> None:
    """Twenty scrapes inside one long interval: the server sees no INFO beyond the poller's."""
    client = redis_server.client()
    agent = AgentProcess(redis_server.url, "--interval", "3600").wait_ready()
    try:
        metrics_after(agent, "cachetop_commands_total")
        before = client.info("commandstats").get("cmdstat_info", {}).get("calls", 0)
        for _ in range(20):
            assert get(f"{agent.url}/metrics")[0] == 200
        after = client.info("commandstats").get("cmdstat_info", {}).get("calls", 0)
        assert after - before == 1  # this test's own INFO commandstats
    finally:
        agent.stop()


def test_two_shards_cover_each_target_exactly_once(tmp_path: Path) -> None:
    servers = [RedisServer() for _ in range(3)] + [MemcachedServer() for _ in range(3)]
    for server in servers:
        server.start()
    try:
        names = [f"cache-{i}" for i in range(len(servers))]
        config = write_config(tmp_path / "fleet.toml",
                              list(zip(names, [s.url for s in servers], strict=True)))
        agents = [AgentProcess("--config", str(config), "--shard", f"{i}/2") for i in (1, 2)]
        try:
            seen: list[str] = []
            for agent in agents:
                agent.wait_ready()
                text = metrics_after(agent, "cachetop_keys", targets=int(
                    agent.stderr().split("(")[1].split(" of ")[0]))
                seen += by_target(text, "cachetop_target_up")
            assert sorted(seen) == sorted(names)
            # Each agent said how many it polls, and the two add up to the fleet.
            counts = [int(a.stderr().split("(")[1].split(" of ")[0]) for a in agents]
            assert sum(counts) == 6 and min(counts) >= 1
        finally:
            for agent in agents:
                agent.stop()
    finally:
        for server in servers:
            server.close()


def test_a_token_is_required_before_any_data(redis_server: RedisServer, tmp_path: Path) -> None:
    token = "k" * 12 + "-token-value-0123"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    agent = AgentProcess(redis_server.url, "--token-file", str(token_file),
                         "--interval", "0.3").wait_ready()
    try:
        for given in (None, "wrong-token-value-0123456", token[:-1], token + "x"):
            status, body = get(f"{agent.url}/metrics", given)
            assert status == 401
            assert b"cachetop_" not in body and str(redis_server.port).encode() not in body
        assert get(f"{agent.url}/stream", None)[0] == 401
        assert get(f"{agent.url}/", None)[0] == 401
        text = metrics_after(agent, "cachetop_keys", token=token)
        assert by_target(text, "cachetop_target_up") == {redis_server.url.split("//")[1]: 1.0}
    finally:
        agent.stop()


def run_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachetop", "agent", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "says"), [
    (("--listen", "0.0.0.0:0"), "needs --token-file"),
    (("--shard", "3/2"), "1 <= I <= N"),
    (("--shard", "x"), "is not I/N"),
    (("--listen", "127.0.0.1"), "is not HOST:PORT"),
    (("--token-file", "/nonexistent/token"), "--token-file /nonexistent/token"),
    (("--tls-cert", "/nonexistent/cert"), "go together"),
])
def test_bad_options_say_one_line_and_exit_non_zero(args: tuple[str, ...], says: str) -> None:
    done = run_agent("redis://127.0.0.1:1", *args)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_the_agents_text_is_prometheus_clients_text(redis_server: RedisServer,
                                                   memcached_server: MemcachedServer) -> None:
    """render() writes, byte for byte, what prometheus_client's generate_latest writes for
    the same families, hostile label values included."""
    from prometheus_client.exposition import generate_latest

    from cachetop.agent.exposition import FleetExposition, monitor_rows
    from cachetop.collectors.registry import make_collectors
    from cachetop.monitor import Monitor
    from tests.integration.helpers import memcached_target, redis_target

    redis_workload(redis_server, hits=50, misses=5)
    hostile = 'g"1\\x\nend'
    targets = [dataclasses.replace(redis_target(redis_server.port, 'r"\\1'), group=hostile),
               memcached_target(memcached_server.port, "m\n1")]
    monitor = Monitor(make_collectors(targets), 0.2)
    monitor.start()
    try:
        wait_until(lambda: all(row.sample is not None for row in monitor_rows(monitor))
                   and any(row.histogram_sample is not None for row in monitor_rows(monitor)),
                   "both targets polled, with a latency histogram")
    finally:
        monitor.stop()
    rows = monitor_rows(monitor)  # one set of rows for both renderings
    exposition = FleetExposition(lambda: rows, lambda: 0)
    ours, theirs = exposition.render(), generate_latest(exposition.registry)
    assert ours == theirs
    assert "cachetop_server_latency_seconds_count" in ours.decode()
    assert r'group="g\"1\\x\nend"' in ours.decode()
