"""The status model against real servers in states of their own: LOADING, BUSY, paused,
commands renamed away, and a memcached that requires authentication (-Y)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from cachetop.actions import plan_flushdb
from cachetop.collectors.secret import Secret
from cachetop.snapshot_json import target_document
from cachetop.target_url import parse_target_url
from cachetop.tui.rows import status_text
from tests.actions.helpers import confirmed
from tests.integration.helpers import TwoPolls, memcached_target, redis_target
from tests.servers import MemcachedServer, RedisServer
from tests.wait import SLACK_S, wait_until


def test_loading_is_its_own_state_with_progress_then_up() -> None:
    server = RedisServer("--enable-debug-command", "local")
    server.start()
    try:
        client = server.client()
        client.execute_command("DEBUG", "POPULATE", 40000, "key", 64)
        client.save()
        server.args += ["--key-load-delay", "100",
                        "--loading-process-events-interval-bytes", "1024"]
        server.restart()
        polls = TwoPolls(redis_target(server.port, timeout_s=1.0))
        loading = polls.poll()
        # Independent view of the same moment: INFO from a plain client says loading:1.
        assert server.client().info("persistence")["loading"] == 1
        assert loading.status == "loading", loading.error
        assert loading.loading_percent is not None and 0 <= loading.loading_percent < 100
        assert loading.error is not None and loading.error.startswith("loading the dataset: ")
        assert "eta" in loading.error
        with pytest.raises(redis.exceptions.BusyLoadingError):
            server.client().ping()  # what a PING health check would have called "down"
        assert target_document(loading)["status"] == "loading"
        assert str(status_text(loading)).startswith("… loading ")
        wait_until(lambda: polls.poll().status == "up", "the dataset loaded", 60.0, 0.2)
        assert polls.poll().keys == 40000
        polls.close()
    finally:
        server.close()


BUSY_SCRIPT = """
local t = redis.call('TIME')
while true do
  local n = redis.call('TIME')
  if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > tonumber(ARGV[1]) then break end
end
return 1
"""


def _busy(server: RedisServer) -> bool:
    """Whether a fresh client is told BUSY (a script has run past busy-reply-threshold)."""
    try:
        server.client().ping()
    except redis.exceptions.ResponseError as exc:
        return str(exc).startswith("BUSY")
    return False


def test_busy_script_is_busy_not_down_and_recovers(redis_server: RedisServer) -> None:
    redis_server.client().config_set("busy-reply-threshold", 100)
    polls = TwoPolls(redis_target(redis_server.port, timeout_s=1.0))
    assert polls.poll().status == "up"
    script = threading.Thread(  # 3 s: both polls below run while it does, even on a slow day
        target=lambda: redis_server.client().eval(BUSY_SCRIPT, 0, 3_000_000), daemon=True)
    script.start()
    wait_until(lambda: _busy(redis_server), "the script to make the server BUSY")
    with pytest.raises(redis.exceptions.ResponseError, match="^BUSY"):
        redis_server.client().info()
    on_open = polls.poll()    # INFO on the connection opened before the script
    reopened = polls.poll()   # a fresh connection: CLIENT SETNAME answers BUSY too
    still_running = script.is_alive()
    script.join(10)
    after = polls.poll()
    polls.close()
    assert still_running      # so the two polls above really met the running script
    for figures in (on_open, reopened):
        assert figures.status == "busy", figures.error
        assert figures.error is not None and figures.error.startswith("BUSY")
    assert after.status == "up"
    assert after.degraded == ()  # the BUSY seen by CLIENT SETNAME left no stale reason


def _stalled(server: RedisServer) -> bool:
    """Whether the server has stopped answering (paused or sleeping): a PING gets no reply."""
    try:
        server.client(socket_timeout=0.2, retry=None).ping()
    except redis.exceptions.TimeoutError:
        return True
    return False


@pytest.mark.parametrize("command", [("CLIENT", "PAUSE", "3000", "ALL"),
                                     ("DEBUG", "SLEEP", "3")])
def test_paused_server_times_out_within_the_deadline(command: tuple[str, ...]) -> None:
    """The poll of a paused server ends at its own deadline, while the server is still paused
    (a waiting client, started before the poll, has not been answered yet); the other server
    answers meanwhile; and once the pause ends the target is up again on its own."""
    paused = RedisServer("--enable-debug-command", "local")
    other = RedisServer()
    paused.start()
    other.start()
    try:
        slow, fast = TwoPolls(redis_target(paused.port, timeout_s=0.5)), \
            TwoPolls(redis_target(other.port, timeout_s=0.5))
        assert slow.poll().status == fast.poll().status == "up"
        pauser = threading.Thread(
            target=lambda: paused.client().execute_command(*command), daemon=True)
        pauser.start()
        wait_until(lambda: _stalled(paused), "the server to stop answering")
        waiter = paused.client(socket_timeout=30, retry=None)
        waiting = threading.Thread(target=waiter.ping, daemon=True)  # answered after the pause
        waiting.start()
        started = time.monotonic()
        figures = slow.poll()
        took = time.monotonic() - started
        assert figures.status == "timeout"
        assert figures.error == "timeout after 0.5s"
        assert took < 0.5 + SLACK_S
        assert fast.poll().status == "up"
        assert waiting.is_alive()  # both polls ended before the pause did
        pauser.join(10)  # DEBUG SLEEP blocks its caller; CLIENT PAUSE returns at once
        waiting.join(10)  # the pause is over
        assert not waiting.is_alive()
        assert slow.poll().status == "up"  # back on its own, no restart of anything
        slow.close()
        fast.close()
    finally:
        paused.close()
        other.close()


def test_renamed_optional_commands_degrade_with_the_reason() -> None:
    server = RedisServer("--rename-command", "SLOWLOG", "", "--rename-command", "LATENCY", "")
    server.start()
    try:
        client = server.client()
        with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
            client.slowlog_get()
        client.set("k", "v")
        polls = TwoPolls(redis_target(server.port))
        polls.poll()
        for _ in range(200):
            client.get("k")
        figures = polls.poll()
        polls.close()
        assert figures.status == "up"
        assert figures.hit_ratio == 1.0
        assert sorted(figures.degraded) == [
            "LATENCY HISTOGRAM disabled on the server (renamed or removed) (probe latency only)",
            "SLOWLOG disabled on the server (renamed or removed)",
        ]
        assert figures.probe_latency.p50_s is not None
        assert str(status_text(figures)) == "● degraded ⚠"
        assert target_document(figures)["status"] == "up"  # JSON: still up, reasons listed
        assert target_document(figures)["degraded"] == list(figures.degraded)
    finally:
        server.close()


def test_renamed_info_is_bad_data_with_the_reason() -> None:
    server = RedisServer("--rename-command", "INFO", "")
    server.start()
    try:
        polls = TwoPolls(redis_target(server.port))
        figures = polls.poll()
        polls.close()
        assert figures.status == "bad-data"
        assert figures.error == "INFO disabled on the server (renamed or removed)"
    finally:
        server.close()


@pytest.fixture
def auth_memcached(tmp_path: Path) -> Iterator[MemcachedServer]:
    authfile = tmp_path / "memcached.auth"
    authfile.write_text("ops:right-secret\n")
    server = MemcachedServer("-Y", str(authfile))
    server.start()
    yield server
    server.close()


def test_memcached_requiring_auth_says_so_at_once(auth_memcached: MemcachedServer) -> None:
    # A collector that waited for END would end in "timeout" at its deadline; the status
    # says it read the answer instead.
    polls = TwoPolls(memcached_target(auth_memcached.port, timeout_s=5.0))
    figures = polls.poll()
    polls.close()
    assert figures.status == "auth-failed"
    assert figures.error == ("memcached requires authentication (-Y): give the target a "
                             "username and password")


def test_memcached_wrong_password_is_auth_failed_without_echo(
        auth_memcached: MemcachedServer) -> None:
    target = replace(memcached_target(auth_memcached.port), username="ops",
                     password=Secret("wrong-secret"))
    polls = TwoPolls(target)
    figures = polls.poll()
    polls.close()
    assert figures.status == "auth-failed"
    assert figures.error is not None and "authentication failure" in figures.error
    assert "wrong-secret" not in figures.error


def test_memcached_with_credentials_polls_and_flushes(auth_memcached: MemcachedServer) -> None:
    target = parse_target_url(f"memcached://ops:right-secret@127.0.0.1:{auth_memcached.port}")
    assert target.password is not None and "right-secret" not in repr(target)
    polls = TwoPolls(target)
    polls.poll()
    # A workload through pymemcache with its own auth: 3 hits, 1 miss.
    from pymemcache.client.base import Client

    client = Client(("127.0.0.1", auth_memcached.port), timeout=2)
    client.set("auth", b"ops right-secret", noreply=False)
    client.set("k", b"v", noreply=False)
    for key in ("k", "k", "k", "missing"):
        client.get(key)
    figures = polls.poll()
    polls.close()
    assert figures.status == "up"
    assert (figures.hits_delta, figures.misses_delta) == (3, 1)
    assert figures.keys == 1
    result = confirmed(plan_flushdb(target))
    assert (result.status, result.deleted) == ("done", 1)
    assert client.get("k") is None
    client.close()


def _auth_failures(server: RedisServer) -> int:
    return sum(int(e["count"]) for e in server.client().acl_log() if e["reason"] == "auth")


def test_wrong_password_is_tried_once_per_retry_not_per_interval() -> None:
    """Counted in intervals of the monitor itself: a second target on the same server (the
    default user, no password) is polled every interval, so its updates are the clock."""
    from cachetop.collectors.registry import make_collector
    from cachetop.monitor import Monitor

    server = RedisServer(acl=["user default on nopass ~* &* +@all",
                              "user app on >right-password ~* &* +@all"])
    server.start()
    monitor = Monitor([make_collector(redis_target(server.port, "app", username="app",
                                                   password="wrong-password")),
                       make_collector(redis_target(server.port, "clock"))], 0.2)
    ticks: list[float] = []

    def tick() -> None:
        clock = monitor.snapshot().targets[1]
        if clock.status == "up" and (not ticks or ticks[-1] != clock.updated_at):
            ticks.append(clock.updated_at)

    monitor.subscribe(tick)
    try:
        monitor.start()
        # Ten intervals: a client that retried per interval would have tried ten times.
        wait_until(lambda: len(ticks) >= 10, "ten intervals")
        snap = monitor.snapshot()
        assert snap.targets[0].status == "auth-failed"
        assert _auth_failures(server) == 1
        monitor.poll_now()  # what the R key does: one more attempt, at once
        wait_until(lambda: _auth_failures(server) == 2, "the retry's one attempt")
        retried_at = len(ticks)
        wait_until(lambda: len(ticks) >= retried_at + 5, "five more intervals")
        assert _auth_failures(server) == 2
    finally:
        monitor.stop()
        server.close()
