"""The pipelined pattern flush on a real Redis: exact at every command size, a sampling preview
that does not count first, a latency probe that sees the server's queue, and no PING right."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachetop.actions import SAMPLE_SCAN_KEYS, execute
from cachetop.actions import plan_flush as plan_flush_protected
from cachetop.actions.connect import redis_client
from cachetop.actions.redis_flush import plan_flush
from cachetop.actions.redis_probe import LatencyProbe
from cachetop.target_url import parse_target_url
from tests.actions.helpers import audit_lines, fill, matching, target_of
from tests.actions.test_cli import cachetop
from tests.servers import RedisServer
from tests.wait import wait_until


def scan_calls(client: object) -> int:
    stats = client.info("commandstats")  # type: ignore[attr-defined]
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


@pytest.mark.parametrize(("scan_count", "max_latency_s"),
                         [(16, 0.001), (37, 0.001), (1000, 0.001), (1000, 1e-6), (5000, 5.0)])
def test_every_command_size_deletes_exactly_the_matching_keys(
        redis_server: RedisServer, scan_count: int, max_latency_s: float) -> None:
    """Odd sizes leave a short last UNLINK; a budget of 1 us shrinks every command to the
    floor while the run goes on, 5 s lets them grow to the ceiling."""
    client = redis_server.client()
    fill(client, [b"p:%d" % i for i in range(6000)] + [b"q:%d" % i for i in range(3000)])
    plan = plan_flush(target_of(redis_server), b"p:*", scan_count=scan_count,
                      max_latency_s=max_latency_s)
    result = execute(plan)
    assert (result.status, result.deleted, result.already_gone) == ("done", 6000, 0)
    assert result.scanned >= 6000  # SCAN may return a key twice; UNLINK counts it once
    assert matching(client, b"p:*") == set()
    assert len(matching(client, b"q:*")) == 3000


def test_a_sampling_preview_scans_only_its_pages_and_the_run_counts_exactly(
        redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"u:%d" % i for i in range(15000)] + [b"v:%d" % i for i in range(15000)])
    client.config_resetstat()
    plan = plan_flush(target_of(redis_server), b"u:*", scan_count=1000, count_pages=3)
    assert scan_calls(client) == 3  # not the ~30 pages of a count
    assert not plan.count_exact and "estimate" in plan.count_note
    assert plan.sample and all(s.key.startswith(b"u:") for s in plan.sample)
    result = execute(plan)
    assert (result.status, result.deleted) == ("done", 15000)
    assert client.dbsize() == 15000 and matching(client, b"u:*") == set()


def test_a_db_within_the_sample_is_still_counted_exactly(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"s:%d" % i for i in range(2000)] + [b"t:%d" % i for i in range(2000)])
    plan = plan_flush_protected(target_of(redis_server), b"s:*", count_all=False)
    assert SAMPLE_SCAN_KEYS > 4000 and (plan.count, plan.count_exact) == (2000, True)


def test_a_flush_without_the_ping_right_runs_unprobed_and_says_so() -> None:
    server = RedisServer(acl=["user default on nopass ~* &* +@all",
                              "user noping on >np-pw-1 ~* &* +@all -ping"])
    server.start()
    try:
        admin = server.client()
        fill(admin, [b"n:%d" % i for i in range(3000)] + [b"m:%d" % i for i in range(100)])
        target = parse_target_url(f"redis://noping:np-pw-1@127.0.0.1:{server.port}")
        result = execute(plan_flush(target, b"n:*"))
        assert (result.status, result.deleted, admin.dbsize()) == ("done", 3000, 100)
        assert any("no latency probe" in note for note in result.notes), result.notes
    finally:
        server.close()


@pytest.fixture
def debug_server() -> Iterator[RedisServer]:
    server = RedisServer("--enable-debug-command", "local")
    server.start()
    yield server
    server.close()


def test_the_latency_probe_waits_behind_a_busy_server(debug_server: RedisServer) -> None:
    """Another client keeps the server busy 0.5 s (DEBUG SLEEP): a probe sent meanwhile waits
    for it, and says so. The idle baseline comes first, before the server is busy."""
    probe = LatencyProbe(redis_client(target_of(debug_server)))
    idle = probe.baseline()
    probe.start()
    try:
        wait_until(lambda: probe.take(), "a first probe while idle")
        with socket.create_connection(("127.0.0.1", debug_server.port)) as busy:
            busy.sendall(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n0.5\r\n")
            assert busy.recv(16) == b"+OK\r\n"  # the sleep is over
        seen: list[float] = []
        wait_until(lambda: seen.extend(probe.take()) or any(r >= 0.1 for r in seen),
                   "a probe that waited behind the sleep")
    finally:
        probe.close()
    assert len(idle) == 5 and probe.error is None


def test_cancel_from_another_thread_stops_with_true_counts(redis_server: RedisServer) -> None:
    """A cancel set while commands are in flight: they are read and counted, none is lost."""
    client = redis_server.client()
    fill(client, [b"c:%d" % i for i in range(30000)] + [b"o:%d" % i for i in range(1000)])
    cancel = threading.Event()
    plan = plan_flush(target_of(redis_server), b"c:*", scan_count=100)
    result = execute(plan, lambda p: p.deleted >= 1000 and cancel.set(), cancel)
    assert result.status == "cancelled"
    assert 1000 <= result.deleted == 30000 - len(matching(client, b"c:*")) < 30000
    assert client.dbsize() == 31000 - result.deleted


def test_yes_on_a_big_db_samples_the_preview_and_records_the_exact_count(
        redis_server: RedisServer, state_home: Path) -> None:
    """Past SAMPLE_SCAN_KEYS the --yes preview is an estimate (on record as one) and the run's
    count, the server's own UNLINK replies, is exact."""
    client = redis_server.client()
    matched = SAMPLE_SCAN_KEYS // 2 + 10_000
    fill(client, [b"user:%d" % i for i in range(matched)]
         + [b"other:%d" % i for i in range(SAMPLE_SCAN_KEYS // 2)])
    out = cachetop("flush", redis_server.url, "--pattern", "user:*", "--yes", state=state_home,
                   timeout=120)
    assert out.returncode == 0, out.stderr
    intent, result = (json.loads(line) for line in audit_lines(state_home))
    assert intent["planned_exact"] is False and result["status"] == "done"
    assert result["done"] == matched and client.dbsize() == SAMPLE_SCAN_KEYS // 2


def test_max_latency_must_be_a_positive_number(redis_server: RedisServer,
                                               state_home: Path) -> None:
    for bad in ("0", "-1", "nan", "soon"):
        out = cachetop("flush", redis_server.url, "--pattern", "k:*", "--yes",
                       "--max-latency-ms", bad, state=state_home)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "--max-latency-ms" in out.stderr
