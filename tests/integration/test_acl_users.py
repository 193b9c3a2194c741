"""The README's least-privilege ACL users, exactly as written there, on a real redis-server.

The lines are parsed out of README.md, so the documentation cannot drift from what is tested.
Facts are read independently with the default user: key counts, what the workload did, the
server's own ACL LOG (a permission cachetop needed but lacked shows up there as a denial).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from cachetop.actions import (
    ActionError,
    plan_delete,
    plan_flush,
    plan_flushdb,
    plan_invalidate,
)
from cachetop.actions.tag_dialects import TAGS_KEY, tag_set_key
from cachetop.actions.tagging import tag_cache
from cachetop.collectors.base import Target
from tests.actions.helpers import confirmed, fill
from tests.integration.helpers import TwoPolls, redis_target
from tests.servers import RedisServer

README = Path(__file__).resolve().parents[2] / "README.md"
PASSWORDS = {"MONITOR_SECRET": "mon-pw-4821", "OPS_SECRET": "ops-pw-9177",
             "FLUSH_SECRET": "flush-pw-3306"}
USERS = {"monitor": "cachetop_monitor", "ops": "cachetop_ops", "flush": "cachetop_flush"}
MAXMEMORY = 64 * 1024 * 1024
SLOWLOG_US = 10_000


def readme_acl_lines() -> dict[str, list[str]]:
    """`ACL SETUSER` lines of the README's least-privilege section: user -> the words after it."""
    text = README.read_text()
    section = text.split("## Least-privilege Redis users", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None, "the README's ACL section has no code block"
    lines: dict[str, list[str]] = {}
    for line in block.group(1).splitlines():
        words = line.split()
        if words[:2] == ["ACL", "SETUSER"]:
            lines[words[2]] = words[3:]
    assert set(USERS.values()) <= lines.keys(), f"README users: {sorted(lines)}"
    return lines


def with_password(rules: list[str]) -> list[str]:
    out = []
    for rule in rules:
        for placeholder, password in PASSWORDS.items():
            rule = rule.replace(placeholder, password)
        out.append(rule)
    return out


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server with the README users set by the default user, a memory limit (so memory
    has a ratio), and DEBUG SLEEP to put a known entry in the slowlog."""
    srv = RedisServer("--slowlog-log-slower-than", str(SLOWLOG_US), "--maxmemory", str(MAXMEMORY),
                      "--enable-debug-command", "local")
    srv.start()
    admin = srv.client()
    for user, rules in readme_acl_lines().items():
        admin.execute_command("ACL", "SETUSER", user, *with_password(rules))
    admin.execute_command("ACL", "LOG", "RESET")
    yield srv
    srv.close()


def as_user(server: RedisServer, role: str) -> Target:
    """A cachetop Target for the README user of `role` ("monitor", "ops", "flush")."""
    return redis_target(server.port, name=role, username=USERS[role],
                        password=PASSWORDS[f"{role.upper()}_SECRET"])


def every_poll_detailed(target: Target) -> Target:
    return dataclasses.replace(target, detail_every_s=0.0)


def denials(server: RedisServer) -> list[str]:
    """ACL LOG entries as `user reason object`: what the server refused since the reset."""
    return [f"{e['username']} {e['reason']} {e['object']}" for e in server.client().acl_log()]


def reset_acl_log(server: RedisServer) -> None:
    server.client().execute_command("ACL", "LOG", "RESET")


def count(client: Any, pattern: str) -> int:
    return len(set(client.scan_iter(match=pattern, count=1000)))  # SCAN may repeat a key


# -- the monitor ------------------------------------------------------------------------------


def test_monitor_gets_every_figure_the_default_user_gets(server: RedisServer) -> None:
    admin = server.client()
    fill(admin, [b"app:k%d" % i for i in range(100)])
    default = TwoPolls(every_poll_detailed(redis_target(server.port)))
    monitor = TwoPolls(every_poll_detailed(as_user(server, "monitor")))

    def workload() -> None:  # known: 800 hits, 200 misses, nothing else from outside
        pipe = admin.pipeline(transaction=False)
        for i in range(800):
            pipe.get(f"app:k{i % 100}")
        for i in range(200):
            pipe.get(f"missing{i}")
        pipe.execute()
        admin.execute_command("DEBUG", "SLEEP", str(2 * SLOWLOG_US / 1e6))  # one slowlog entry

    both: list[tuple[Any, Any]] = []
    for _ in range(3):
        first = (default.poll(), monitor.poll())
        workload()
        both.append((default.poll(), monitor.poll()))
    default.close()
    monitor.close()
    assert first[1].status == "up"
    for mine, theirs in both:
        assert (theirs.status, theirs.degraded, theirs.error) == ("up", (), None)
        assert (theirs.hits_delta, theirs.misses_delta) == (800, 200)
        assert theirs.hit_ratio == pytest.approx(0.8) == mine.hit_ratio
        assert theirs.ops_per_s is not None and theirs.ops_per_s * theirs.interval_s >= 1000
        assert theirs.keys == 100 == admin.dbsize()
        assert theirs.memory_max_bytes == MAXMEMORY
        assert theirs.memory_used_bytes is not None and theirs.memory_used_bytes > 0
        assert theirs.connections is not None and theirs.connections >= 3
        assert (theirs.role, theirs.version) == ("master", admin.info("server")["redis_version"])
        assert theirs.server_latency.known and theirs.server_latency.source == "interval"
        assert theirs.probe_latency.known
        assert mine.server_latency.known and mine.degraded == ()
        # every figure the default user has, the monitor has too
        for name in ("ops_per_s", "hit_ratio", "lifetime_hit_ratio", "evictions_per_s",
                     "expirations_per_s", "memory_used_bytes", "memory_max_bytes",
                     "memory_system_bytes", "connections", "max_connections", "keys"):
            assert (getattr(mine, name) is None) == (getattr(theirs, name) is None), name
    detail = both[-1][1].detail
    assert detail is not None
    # INFO all: the same fields as the default user's (per-command lines depend on what ran)
    per_command = ("cmdstat_", "latency_percentiles_usec_", "errorstat_")
    assert ({f for f in detail.info if not f.startswith(per_command)}
            == {f for f in both[-1][0].detail.info if not f.startswith(per_command)})
    assert {"redis_version", "maxmemory", "keyspace_hits", "db0", "cmdstat_get",
            "latency_percentiles_usec_get"} <= set(detail.info)
    slow = [e for e in detail.slowlog or () if e.args[:2] == ("DEBUG", "SLEEP")]
    assert slow and slow[0].duration_us >= SLOWLOG_US
    assert denials(server) == []  # nothing the collector asked for was refused


def test_monitor_connection_is_named_while_polling(server: RedisServer) -> None:
    monitor = TwoPolls(as_user(server, "monitor"))
    assert monitor.poll().status == "up"
    clients = [c for c in server.client().client_list() if c["user"] == USERS["monitor"]]
    monitor.close()
    assert [c["name"] for c in clients] == ["cachetop"]


def test_monitor_cannot_write_read_values_or_config(server: RedisServer) -> None:
    admin = server.client()
    fill(admin, [b"app:k%d" % i for i in range(10)])
    raw = server.client(username=USERS["monitor"], password=PASSWORDS["MONITOR_SECRET"])
    for command in (("SET", "app:x", "1"), ("UNLINK", "app:k1"), ("DEL", "app:k1"),
                    ("FLUSHDB",), ("FLUSHALL",), ("GET", "app:k1"), ("CONFIG", "GET", "*"),
                    ("KEYS", "*"), ("CLIENT", "LIST"), ("EXPIRE", "app:k1", "1")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            raw.execute_command(*command)
    assert admin.dbsize() == 10 and admin.ttl("app:k1") == -1


def test_monitor_preview_of_a_whole_db_estimate_needs_no_more_rights(server: RedisServer) -> None:
    """An estimated count cannot prove a pattern takes the whole db; RANDOMKEY probes do, and
    the README's monitor may send them."""
    admin = server.client()
    fill(admin, [b"app:e:%d" % i for i in range(20000)])
    plan = plan_flush(as_user(server, "monitor"), b"app:*", scan_count=100, count_budget_s=0.005)
    assert not plan.count_exact and plan.wipes_all and plan.confirm_name == "monitor"
    assert denials(server) == []


def assert_refused_by_acl(result: Any, keys_before: int, admin: Any) -> None:
    assert result.status == "failed"
    assert result.deleted == 0
    assert "NOPERM" in result.errors[0] and "\n" not in result.summary
    assert admin.dbsize() == keys_before


def test_monitor_actions_fail_clearly_and_delete_nothing(server: RedisServer) -> None:
    admin = server.client()
    fill(admin, [b"app:k%d" % i for i in range(50)])
    tag_cache(admin).set("app:t1", b"v", ttl=600, tags=["news"])
    before = admin.dbsize()
    monitor = as_user(server, "monitor")
    plan = plan_flush(monitor, b"app:k*")
    assert plan.count == 50  # the monitor may preview: SCAN, PTTL, MEMORY USAGE
    assert_refused_by_acl(confirmed(plan), before, admin)
    assert_refused_by_acl(confirmed(plan_flushdb(monitor)), before, admin)
    assert_refused_by_acl(confirmed(plan_delete(monitor, b"app:k1")), before, admin)
    with pytest.raises(ActionError, match="NOPERM") as info:
        confirmed(plan_invalidate(monitor, [b"news"]))
    assert "\n" not in str(info.value)
    assert admin.dbsize() == before and admin.exists(tag_set_key(b"news")) == 1


# -- the operator -----------------------------------------------------------------------------


def seed_namespaces(admin: Any) -> None:
    fill(admin, [b"app:user:%d" % i for i in range(300)], ttl=600)
    fill(admin, [b"app:page:%d" % i for i in range(120)])
    fill(admin, [b"other:user:%d" % i for i in range(200)])


def test_operator_deletes_by_pattern_inside_its_namespace(server: RedisServer) -> None:
    admin = server.client()
    seed_namespaces(admin)
    plan = plan_flush(as_user(server, "ops"), b"app:user:*", scan_count=50)
    assert (plan.count, plan.count_exact) == (300, True)
    assert all(s.ttl_s is not None and s.size_bytes for s in plan.sample)  # PTTL, MEMORY USAGE
    result = confirmed(plan)
    assert (result.status, result.deleted, result.already_gone) == ("done", 300, 0)
    assert count(admin, "app:user:*") == 0
    assert (count(admin, "app:page:*"), count(admin, "other:user:*")) == (120, 200)
    one = confirmed(plan_delete(as_user(server, "ops"), b"app:page:7"))
    assert (one.status, one.deleted) == ("done", 1) and admin.exists("app:page:7") == 0
    assert denials(server) == []


def test_operator_cannot_flushdb(server: RedisServer) -> None:
    admin = server.client()
    seed_namespaces(admin)
    before = admin.dbsize()
    plan = plan_flushdb(as_user(server, "ops"))
    assert plan.count == before
    result = confirmed(plan)
    assert_refused_by_acl(result, before, admin)
    assert "flushdb" in result.errors[0].lower()


def test_operator_pattern_outside_its_namespace_deletes_nothing(server: RedisServer) -> None:
    admin = server.client()
    seed_namespaces(admin)
    ops = as_user(server, "ops")
    result = confirmed(plan_flush(ops, b"other:*"))
    assert_refused_by_acl(result, 620, admin)
    assert count(admin, "other:user:*") == 200
    single = confirmed(plan_delete(ops, b"other:user:3"))
    assert_refused_by_acl(single, 620, admin)


def test_operator_mixed_pattern_reports_the_true_count(server: RedisServer) -> None:
    admin = server.client()
    fill(admin, [b"app:mix:%d" % i for i in range(200)])
    fill(admin, [b"other:mix:%d" % i for i in range(200)])
    # Small batches: some hold only app: keys (deleted), some a mix (the whole UNLINK refused).
    result = confirmed(plan_flush(as_user(server, "ops"), b"*:mix:*", scan_count=5))
    gone = 200 - count(admin, "app:mix:*")
    assert count(admin, "other:mix:*") == 200
    assert result.deleted == gone
    assert result.status == ("partial" if gone else "failed")
    assert "NOPERM" in result.errors[0]


def test_operator_invalidates_a_tag_cachetop_dialect(server: RedisServer) -> None:
    admin = server.client()
    cache = tag_cache(admin)
    for i in range(150):
        cache.set(f"app:post:{i}", b"p", ttl=600, tags=["post", "even"] if i % 2 == 0
                  else ["post"])
    fill(admin, [b"other:post:%d" % i for i in range(20)])
    plan = plan_invalidate(as_user(server, "ops"), [b"even"])
    assert plan.count == 75
    result = confirmed(plan)
    assert (result.status, result.deleted, result.already_gone) == ("done", 75, 0)
    assert count(admin, "app:post:*") == 75 and count(admin, "other:post:*") == 20
    assert admin.exists(tag_set_key(b"even")) == 0
    assert not admin.sismember(TAGS_KEY, b"even") and admin.sismember(TAGS_KEY, b"post")
    assert denials(server) == []


def test_operator_tag_with_members_outside_namespace_is_kept(server: RedisServer) -> None:
    admin = server.client()
    cache = tag_cache(admin)
    for i in range(30):
        cache.set(f"other:x:{i}", b"v", ttl=600, tags=["foreign"])
    result = confirmed(plan_invalidate(as_user(server, "ops"), [b"foreign"]))
    assert (result.status, result.deleted) == ("failed", 0)
    assert "NOPERM" in result.errors[0]
    assert count(admin, "other:x:*") == 30
    # the index was put back under its name, whole: a later run by a wider user still works
    assert admin.scard(tag_set_key(b"foreign")) == 30


def test_operator_invalidates_a_tag_laravel_dialect_in_its_namespace(server: RedisServer) -> None:
    admin = server.client()
    prefix = b"app:"
    now = int(admin.time()[0])
    for i in range(40):
        admin.set(prefix + b"item:%d" % i, b"v", ex=600)
        admin.zadd(prefix + b"tag:news:entries", {b"item:%d" % i: now + 600 if i % 4 else -1})
    plan = plan_invalidate(as_user(server, "ops"), [b"news"], dialect="laravel", prefix=prefix)
    assert plan.count == 40
    result = confirmed(plan)
    assert (result.status, result.deleted) == ("done", 40)
    assert count(admin, "app:item:*") == 0 and admin.exists(b"app:tag:news:entries") == 0
    assert denials(server) == []


# -- the flusher ------------------------------------------------------------------------------


def test_flusher_can_flushdb_and_nothing_else(server: RedisServer) -> None:
    admin = server.client()
    seed_namespaces(admin)
    flusher = as_user(server, "flush")
    assert_refused_by_acl(confirmed(plan_flush(flusher, b"app:user:*")), 620, admin)
    reset_acl_log(server)
    plan = plan_flushdb(flusher)
    assert plan.count == 620
    result = confirmed(plan)
    assert (result.status, result.deleted) == ("done", 620)
    assert admin.dbsize() == 0
    assert denials(server) == []
    raw = server.client(username=USERS["flush"], password=PASSWORDS["FLUSH_SECRET"])
    for command in (("SET", "a", "1"), ("UNLINK", "a"), ("GET", "a"), ("FLUSHALL",),
                    ("CONFIG", "GET", "*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            raw.execute_command(*command)


def test_readme_users_grant_no_config_and_no_values(server: RedisServer) -> None:
    """Static facts of the README lines, checked by the server itself with ACL DRYRUN."""
    admin = server.client()

    def allowed(user: str, *command: str) -> bool:
        return bool(admin.execute_command("ACL", "DRYRUN", user, *command) == b"OK")

    for user in USERS.values():
        for command in (("config", "get", "masterauth"), ("get", "app:1"),
                        ("hgetall", "app:1"), ("smembers", "app:1"), ("keys", "*"),
                        ("flushall",), ("del", "app:1"), ("eval", "return 1", "0"),
                        ("client", "list"), ("monitor",), ("debug", "sleep", "0")):
            assert not allowed(user, *command), (user, command)
    assert not allowed(USERS["ops"], "flushdb")
    assert not allowed(USERS["ops"], "unlink", "other:1")
    assert allowed(USERS["ops"], "unlink", "app:1")
    assert not allowed(USERS["monitor"], "unlink", "app:1")
    assert allowed(USERS["flush"], "flushdb")
