"""The Redis family: Valkey, Dragonfly and KeyDB read from their INFO (captured fixtures, see
tests/fixtures/family/README.md: no binary of theirs is installable here), and optional
commands a server refuses sent once per connection (a real redis-server with them renamed
away, counted by the server's own error statistics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachetop.collectors.base import Deadline
from cachetop.collectors.redis_info import RedisInfoCollector, info_parts, sample_from_info
from cachetop.fleet import TargetFigures
from cachetop.snapshot_json import target_document
from cachetop.target_url import parse_target_url
from cachetop.tracker import TargetTracker
from tests.servers import RedisServer
from tests.wait import wait_until

FAMILY = Path(__file__).parent.parent / "fixtures" / "family"

# fixture -> (engine, version, redis_version, role, {figure: value}); values read off the file,
# figures by their canonical names (cachetop.collectors.sample).
EXPECTED = {
    "valkey_8.0.info": ("valkey", "8.0.1", "7.2.4", "master", {
        "ops": 100000, "hits": 8000, "misses": 2000, "used_memory_bytes": 4194304,
        "max_memory_bytes": 104857600, "keys": 2000, "connections": 12, "max_connections": 10000}),
    "valkey_7.2.info": ("valkey", "7.2.4", "7.2.4", "master", {"ops": 100000, "keys": 2000}),
    "dragonfly_1.x.info": ("dragonfly", "1.25.2", "7.4.0", "master", {
        "ops": 5000, "hits": 900, "misses": 100, "used_memory_bytes": 2097152,
        "max_memory_bytes": 1073741824, "keys": 1000, "connections": 3}),
    "keydb_6.3.info": ("keydb", "6.3.4", "6.3.4", "active-replica", {
        "ops": 40000, "hits": 300, "misses": 100, "used_memory_bytes": 3145728, "keys": 250}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_family_member_gives_its_engine_version_and_figures(name: str) -> None:
    engine, version, compat, role, figures = EXPECTED[name]
    counters, gauges, info = info_parts((FAMILY / name).read_bytes())
    assert (info["engine"], info["version"], info["compat_version"], info["role"]) == (
        engine, version, compat, role)
    values = {**counters, **gauges}
    for figure, value in figures.items():
        assert values.get(figure) == value, figure
    assert all(v >= 0 for v in values.values())  # no -1 ever read as a number


def test_dragonfly_has_no_max_clients_and_keydb_no_limit() -> None:
    _, dragonfly, _ = info_parts((FAMILY / "dragonfly_1.x.info").read_bytes())
    assert "max_connections" not in dragonfly  # it says max_clients, not maxclients
    _, keydb, _ = info_parts((FAMILY / "keydb_6.3.info").read_bytes())
    assert "max_memory_bytes" not in keydb     # maxmemory 0: no limit, not a 0-byte limit


def test_minus_one_is_no_data_not_a_number() -> None:
    """Dragonfly's -1 for what it does not count (a made-up reply: the counters cachetop reads
    are counted by the Dragonfly version of the fixture)."""
    raw = (FAMILY / "dragonfly_1.x.info").read_bytes().replace(
        b"keyspace_hits:900", b"keyspace_hits:-1").replace(b"evicted_keys:0", b"evicted_keys:-1")
    counters, _, _ = info_parts(raw)
    assert "hits" not in counters and "evictions" not in counters
    target = parse_target_url("redis://127.0.0.1:1")
    tracker = TargetTracker(target)
    tracker.update(sample_from_info(target, raw, taken_at=1.0, rtt_s=0.001))
    figures = tracker.update(sample_from_info(target, raw.replace(
        b"keyspace_misses:100", b"keyspace_misses:150"), taken_at=2.0, rtt_s=0.001))
    assert figures.hit_ratio is None and figures.evictions_per_s is None


def test_engine_and_version_in_json() -> None:
    target = parse_target_url("redis://127.0.0.1:1")
    raw = (FAMILY / "valkey_8.0.info").read_bytes()
    figures: TargetFigures = TargetTracker(target).update(
        sample_from_info(target, raw, taken_at=1.0, rtt_s=0.001))
    doc = target_document(figures)
    assert (doc["engine"], doc["version"]) == ("valkey", "8.0.1")


def test_a_refused_command_is_sent_once_per_connection_not_per_poll() -> None:
    server = RedisServer("--rename-command", "SLOWLOG", "", "--rename-command", "LATENCY", "")
    server.start()
    try:
        # One client for the whole test: redis-py's own connect costs an ERR on Redis 7.0.
        observer = server.client()

        def errors() -> int:
            return int(observer.info("errorstats").get("errorstat_ERR", {}).get("count", 0))

        before = errors()
        target = parse_target_url(server.url, detail_every_s=0.001, probes_per_poll=1)
        collector = RedisInfoCollector(target)
        collector.want_detail(True)
        for _ in range(10):  # enough traffic between polls to make the histogram due
            for i in range(150):
                observer.set(f"k{i}", "v")
            sample = collector.collect(Deadline(5.0))
        # Ten polls, each with detail due: LATENCY HISTOGRAM refused once (then off for
        # good), SLOWLOG once.
        assert errors() - before == 2
        assert any("SLOWLOG disabled" in d for d in sample.degraded)
        ours = [c["id"] for c in observer.client_list() if c.get("name") == "cachetop"]
        observer.execute_command("CLIENT", "KILL", "ID", *ours)
        wait_until(lambda: _reconnected(collector), "a poll on a new connection")
        for _ in range(5):
            collector.collect(Deadline(5.0))
        assert errors() - before == 3  # SLOWLOG asked once more, on the new connection
        observer.close()
        collector.close()
    finally:
        server.close()


def _reconnected(collector: RedisInfoCollector) -> bool:
    try:
        collector.collect(Deadline(5.0))
    except Exception:  # noqa: BLE001 - the poll that finds the connection killed fails
        return False
    return True
