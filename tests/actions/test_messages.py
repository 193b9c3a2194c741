"""What actions say, checked against known workloads (issue 20.3, 20.4, 20.8): previews that
count live keys, summaries whose figures add up, refusals said once and before any scan, and
"no such key/tag" instead of a successful nothing."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from cachetop.actions import (
    execute,
    list_tags,
    plan_delete,
    plan_flush,
    plan_flushdb,
    plan_invalidate,
)
from cachetop.actions.describe import plan_lines
from cachetop.actions.tag_dialects import tag_set_key
from cachetop.actions.tagging import tag_cache
from tests.actions.helpers import fill, target_of
from tests.actions.test_cli import cachetop
from tests.servers import MemcachedServer, RedisServer
from tests.wait import wait_until

ACCOUNT = re.compile(r"scanned (\d+): (\d+) deleted, (\d+) already gone, (\d+) skipped")


def _accounting(summary: str) -> tuple[int, int, int, int]:
    match = ACCOUNT.search(summary)
    assert match, summary
    scanned, deleted, gone, skipped = (int(g) for g in match.groups())
    return scanned, deleted, gone, skipped


def _dead_tag(server: RedisServer, live: int, dead: int) -> None:
    """Tag "category:0" lists live + dead keys; only `live` of them exist (value 'x' * 500)."""
    client = server.client()
    cache = tag_cache(client)
    for i in range(live + dead):
        cache.set(f"item:{i}", b"x" * 500, ttl=600, tags=["category:0"])
    client.delete(*[f"item:{i}".encode() for i in range(live, live + dead)])


def test_tag_preview_counts_live_members_and_their_memory(redis_server: RedisServer) -> None:
    _dead_tag(redis_server, live=14, dead=86)
    client = redis_server.client()
    assert client.scard(tag_set_key(b"category:0")) == 100
    plan = plan_invalidate(target_of(redis_server), [b"category:0"])
    assert (plan.count, plan.count_exact) == (14, True)
    live_bytes = sum(client.memory_usage(f"item:{i}".encode()) for i in range(14))
    assert plan.memory_bytes == pytest.approx(live_bytes, rel=0.02)    # not 100 keys' worth
    listed = {t.tag: t for t in list_tags(target_of(redis_server))}
    assert (listed[b"category:0"].size, listed[b"category:0"].live) == (100, 14)
    result = execute(plan)
    assert (result.deleted, result.already_gone, result.scanned) == (14, 86, 100)
    assert _accounting(result.summary) == (100, 14, 86, 0)
    assert result.summary.startswith("invalidate ") and "deleted 14 of 14 planned" in (
        result.summary)


def test_big_tag_preview_says_it_estimates_from_a_sample(redis_server: RedisServer) -> None:
    _dead_tag(redis_server, live=1500, dead=1500)
    listed = {t.tag: t for t in list_tags(target_of(redis_server))}
    tag = listed[b"category:0"]
    assert tag.size == 3000 and not tag.live_exact
    assert tag.live is not None and 1000 < tag.live < 2000          # half of 3000, sampled
    plan = plan_invalidate(target_of(redis_server), [b"category:0"])
    assert plan.count == 1500                     # the preview walks it all in its budget


def test_flush_summary_adds_up_when_keys_go_between_preview_and_run(
        redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"user:%d" % i for i in range(500)] + [b"other:%d" % i for i in range(100)])
    plan = plan_flush(target_of(redis_server), b"user:*")
    assert plan.count == 500
    client.delete(*[b"user:%d" % i for i in range(45)])          # expired meanwhile
    result = execute(plan)
    assert (result.status, result.deleted, result.scanned) == ("done", 455, 455)
    assert _accounting(result.summary) == (455, 455, 0, 0)
    assert "deleted 455 of 500 planned" in result.summary
    assert "45 planned keys not found by the run" in result.summary


def test_cancelled_flush_accounts_for_every_scanned_key(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"user:%d" % i for i in range(5000)] + [b"other:%d" % i for i in range(1000)])
    cancel = threading.Event()

    def cancel_after_the_first_batch() -> None:
        wait_until(lambda: redis_server.client().dbsize() < 6000, "the first batch")
        cancel.set()

    # One SCAN page holds every key (COUNT 10000); at 2000 keys/s it is deleted in batches
    # of 200 over 2.5 s, so the cancel lands inside the page: keys scanned and never sent.
    plan = plan_flush(target_of(redis_server), b"user:*", rate_keys_per_s=2000,
                      scan_count=10000)
    canceller = threading.Thread(target=cancel_after_the_first_batch)
    canceller.start()
    result = execute(plan, None, cancel)
    canceller.join()
    assert result.status == "cancelled"
    scanned, deleted, gone, skipped = _accounting(result.summary)
    assert deleted == 6000 - client.dbsize()                     # the server's own count
    assert scanned == deleted + gone + skipped and skipped > 0
    assert result.skipped == skipped and "not sent" in result.summary


def test_a_replica_is_refused_before_any_scan_and_said_once(tmp_path: Path) -> None:
    master = RedisServer("--repl-diskless-sync-delay", "0")
    master.start()
    fill(master.client(), [b"k:%d" % i for i in range(50)])
    replica = RedisServer("--replicaof", "127.0.0.1", str(master.port))
    replica.start()
    try:
        client = replica.client()
        wait_until(lambda: client.dbsize() == 50, "the replica to sync")
        client.config_resetstat()
        flush = plan_flush(target_of(replica), b"k:*")
        flushdb = plan_flushdb(target_of(replica))
        stats = client.info("commandstats")
        assert not any(name in stats for name in ("cmdstat_scan", "cmdstat_dbsize",
                                                  "cmdstat_pttl", "cmdstat_randomkey"))
        for plan in (flush, flushdb):
            assert plan.refusal is not None and plan.refusal.count("refused") == 1
            assert plan.count is None and plan.sample == ()
        out = cachetop("flush", replica.url, "--pattern", "k:*", "--yes", state=tmp_path)
        assert out.returncode == 2
        assert "refused: refused" not in out.stdout + out.stderr
        assert out.stdout.splitlines()[-1].endswith(
            "refused: " + f"127.0.0.1:{replica.port} is a replica (role:slave); write actions "
            "go to its master")
    finally:
        replica.close()
        master.close()


def test_deleting_a_missing_key_says_no_such_key_and_exits_1(redis_server: RedisServer,
                                                             state_home: Path) -> None:
    fill(redis_server.client(), [b"there"])
    out = cachetop("delete", redis_server.url, "gone", "--yes", state=state_home)
    assert out.returncode == 1
    assert out.stdout.splitlines()[-1].endswith("no such key 'gone' in db 0")
    assert "done" not in out.stdout
    assert redis_server.client().exists(b"there") == 1


def test_a_dry_run_of_an_unknown_tag_says_no_such_tag_and_exits_1(
        redis_server: RedisServer, state_home: Path) -> None:
    tag_cache(redis_server.client()).set("a", b"v", ttl=60, tags=["known"])
    out = cachetop("invalidate", redis_server.url, "--tag", "nope", "--dry-run", state=state_home)
    assert out.returncode == 1
    assert "no such tag 'nope'" in out.stdout.splitlines()[-1]
    assert "would be deleted" not in out.stdout


def test_memory_line_has_no_empty_parentheses(redis_server: RedisServer) -> None:
    fill(redis_server.client(), [b"k"], value=b"v" * 400)
    lines = plan_lines(plan_delete(target_of(redis_server), b"k"))
    memory = [line for line in lines if line.startswith("memory:")]
    assert len(memory) == 1 and "()" not in memory[0]


def test_delete_takes_several_keys_and_skips_the_missing_one(redis_server: RedisServer,
                                                             state_home: Path) -> None:
    client = redis_server.client()
    fill(client, [b"a", b"b", b"keep"])
    out = cachetop("delete", redis_server.url, "a", "b", "nope", "--yes", state=state_home)
    assert out.returncode == 0, out.stderr
    assert "warning: no such key 'nope' now: sent anyway, it counts as already gone" in out.stderr
    last = out.stdout.splitlines()[-1]
    assert last.startswith(f"delete 127.0.0.1:{redis_server.port} 3 keys 'a', 'b', 'nope'") or (
        last.startswith(f"delete 127.0.0.1:{redis_server.port} keys 'a', 'b', 'nope'"))
    assert "deleted 2 of 2 planned (scanned 3: 2 deleted, 1 already gone, 0 skipped)" in last
    assert client.exists(b"a", b"b") == 0 and client.exists(b"keep") == 1
    plan = plan_delete(target_of(redis_server), [b"keep", b"keep"])
    assert plan.spec.keys == (b"keep",) and plan.count == 1      # each key once



def test_memcached_several_keys_and_a_pattern_that_matches_nothing(
        mc_server: MemcachedServer) -> None:
    client = mc_server.client()
    client.set_many({b"user:1": b"v", b"user:2": b"v", b"keep": b"v"}, noreply=False)
    plan = plan_delete(target_of(mc_server), [b"user:1", b"user:2", b"nope"])
    assert (plan.count, plan.count_exact) == (2, True)
    assert plan.warnings == ("no such key 'nope' now: sent anyway, it counts as already gone",)
    result = execute(plan)
    assert (result.deleted, result.already_gone, result.scanned) == (2, 1, 3)
    assert client.get(b"user:1") is None and client.get(b"keep") == b"v"
    assert plan_delete(target_of(mc_server), b"nope").nothing == "no such key 'nope'"
    empty = plan_flush(target_of(mc_server), b"usr:*")
    assert empty.count == 0
    assert empty.warnings[0] == "no key matches 'usr:*'; keys here look like: 'keep'"


def test_memcached_unknown_tag_is_no_such_tag(mc_server: MemcachedServer,
                                              state_home: Path) -> None:
    from cachetop.actions.tagging import tag_cache as tagged

    tagged(mc_server.client()).set("a", b"v", ttl=60, tags=["known"])
    out = cachetop("invalidate", mc_server.url, "--tag", "nope", "--yes", state=state_home)
    assert out.returncode == 1
    assert "no such tag 'nope'" in out.stdout.splitlines()[-1]
    known = plan_invalidate(target_of(mc_server), [b"known"])
    assert known.nothing == "" and known.refusal is None


def test_whole_instance_flushes_add_up_too(redis_server: RedisServer,
                                           mc_server: MemcachedServer) -> None:
    fill(redis_server.client(), [b"k:%d" % i for i in range(300)])
    mc_server.client().set_many({b"m:%d" % i: b"v" for i in range(200)}, noreply=False)
    for plan in (plan_flushdb(target_of(redis_server)), plan_flushdb(target_of(mc_server))):
        result = execute(plan, confirmation=plan.confirm_name)
        assert result.status == "done", result.summary
        assert result.deleted in (300, 200)                # DBSIZE / curr_items just before
        assert _accounting(result.summary) == (result.deleted, result.deleted, 0, 0)
    fill(redis_server.client(), [b"k:%d" % i for i in range(100)])
    plan = plan_flushdb(target_of(redis_server))
    fill(redis_server.client(), [b"late:%d" % i for i in range(20)])
    result = execute(plan, confirmation=plan.confirm_name)
    assert "deleted 120 of ~100 planned" in result.summary
    assert "20 written since the preview counted 100" in result.summary
