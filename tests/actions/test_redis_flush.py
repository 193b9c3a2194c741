"""Flush by pattern on a real Redis: exactly the matching keys go, counted from UNLINK replies."""

from __future__ import annotations

import threading
import time

import pytest

from cachetop.actions import ActionArgumentError, Progress, execute, plan_flush
from cachetop.actions.redis_flush import run_flush
from tests.actions.helpers import confirmed, fill, matching, target_of
from tests.servers import RedisServer


def test_deletes_exactly_the_matching_keys(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"user:%d" % i for i in range(1000)])
    fill(client, [b"other:%d" % i for i in range(1000)] + [b"user", b"xuser:1", b"User:1"])
    plan = plan_flush(target_of(redis_server), b"user:*")
    assert (plan.count, plan.count_exact) == (1000, True)
    assert len(plan.sample) == 20 and all(s.key.startswith(b"user:") for s in plan.sample)
    assert plan.memory_bytes is not None and plan.memory_bytes > 0
    result = execute(plan)
    assert result.status == "done"
    assert (result.deleted, result.already_gone, result.planned) == (1000, 0, 1000)
    assert matching(client, b"user:*") == set()
    assert client.dbsize() == 1003
    assert client.exists(b"user", b"xuser:1", b"User:1") == 3
    assert result.summary.endswith(
        "deleted 1000 of 1000 planned (scanned 1000: 1000 deleted, 0 already gone, 0 skipped) "
        f"in {result.duration_s:.1f}s: done")


def test_binary_keys_are_bytes_end_to_end(redis_server: RedisServer) -> None:
    client = redis_server.client()
    odd = [b"k:\x00nul", b"k:\xff\xfe", b"k:new\nline", b"k:sp ace", b"k:\x1b]0;PWNED\x07",
           b"k:caf\xc3\xa9", b"k:*star", b"k:[br]"]
    fill(client, odd + [b"keep\xff", b"keep:k:\x00"])
    plan = plan_flush(target_of(redis_server), b"k:*")
    assert plan.count == len(odd)
    shown = " ".join(s.display for s in plan.sample)
    assert "\x1b" not in shown and "\\x1b" in shown and "\n" not in shown
    result = execute(plan)
    assert (result.status, result.deleted) == ("done", len(odd))
    assert client.exists(*odd) == 0
    assert client.exists(b"keep\xff", b"keep:k:\x00") == 2


def test_escaped_glob_deletes_only_the_literal_key(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"a*b", b"axb", b"a?b", b"aab"])
    result = execute(plan_flush(target_of(redis_server), b"a\\*b"))
    assert result.deleted == 1
    assert client.exists(b"a*b") == 0 and client.exists(b"axb", b"a?b", b"aab") == 3


def test_type_filter_deletes_only_that_type(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"t:s%d" % i for i in range(10)])
    for i in range(7):
        client.sadd(b"t:set%d" % i, b"m")
    plan = plan_flush(target_of(redis_server), b"t:*", type_name="set")
    assert plan.count == 7
    assert execute(plan).deleted == 7
    assert len(matching(client, b"t:*")) == 10


def test_unknown_type_and_empty_patterns_are_refused(redis_server: RedisServer) -> None:
    target = target_of(redis_server)
    with pytest.raises(ActionArgumentError, match="give a pattern"):
        plan_flush(target, b"")
    with pytest.raises(ActionArgumentError, match="unknown key type"):
        plan_flush(target, b"a*", type_name="sett")


def test_dry_run_plan_deletes_nothing(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"d:%d" % i for i in range(300)], ttl=500)
    plan = plan_flush(target_of(redis_server), b"d:*")
    assert plan.count == 300 and plan.count_exact
    assert all(s.ttl_s is not None and 400 < s.ttl_s <= 500 for s in plan.sample)
    assert client.dbsize() == 300


def test_a_bounded_count_says_it_is_an_estimate(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"e:%d" % i for i in range(20000)] + [b"f:%d" % i for i in range(20000)])
    plan = plan_flush(target_of(redis_server), b"e:*", scan_count=100, count_budget_s=0.01)
    assert not plan.count_exact and "estimate" in plan.count_note
    assert plan.count is not None and 12000 <= plan.count <= 28000


def test_cancel_after_the_first_batch_reports_the_true_count(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"c:%d" % i for i in range(5000)] + [b"o:%d" % i for i in range(100)])
    cancel = threading.Event()
    seen: list[Progress] = []

    def progress(p: Progress) -> None:
        seen.append(p)
        cancel.set()

    result = run_flush(plan_flush(target_of(redis_server), b"c:*", scan_count=200),
                       progress, cancel)
    assert result.status == "cancelled"
    gone = 5000 - len(matching(client, b"c:*"))
    assert 0 < result.deleted == gone < 5000
    assert client.dbsize() == 5100 - result.deleted
    assert seen[0].deleted > 0


def test_rate_limit_is_honoured(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"r:%d" % i for i in range(2000)])
    started = time.monotonic()
    result = confirmed(plan_flush(target_of(redis_server), b"r:*", rate_keys_per_s=1000))
    took = time.monotonic() - started
    assert result.deleted == 2000
    # 2,000 keys at 1,000/s cannot take less than about 2 s (a load can only slow it down);
    # the upper bound only says the limit is the rate asked for, not some far slower one.
    assert 1.8 <= took < 2.0 * 5


def test_writer_during_the_run_loses_no_non_matching_key(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"w:%d" % i for i in range(20000)] + [b"n:%d" % i for i in range(2000)])
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        other = redis_server.client()
        i = 0
        while not stop.is_set():
            other.set(b"w:new:%d" % i, b"v")
            other.set(b"n:new:%d" % i, b"v")
            i += 1
        written.append(i)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = execute(plan_flush(target_of(redis_server), b"w:*", scan_count=500))
    finally:
        stop.set()
        thread.join()
    survivors = matching(client, b"w:*")
    assert not any(k.startswith(b"w:") and k[2:].isdigit() for k in survivors)  # all old gone
    assert len(matching(client, b"n:*")) == 2000 + written[0]  # not one other key lost
    assert result.deleted == 20000 + written[0] - len(survivors)
    assert result.status == "done"


# -- "everything" is what the preview finds, not what the pattern looks like ------------------


def test_a_pattern_that_takes_the_whole_db_needs_flushdbs_confirmation(
        redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"a:%d" % i for i in range(50)] + [b"b"])
    target = target_of(redis_server)
    for pattern in (b"?*", b"*", b"[ab]*", b"*[^z]"):
        plan = plan_flush(target, pattern)
        assert plan.wipes_all and plan.count == 51, pattern
        assert plan.confirm_name == f"127.0.0.1:{redis_server.port}"
        assert "matches every key of db 0 (51 of 51)" in plan.confirm_why
        for typed in (None, "", "yes"):
            assert execute(plan, confirmation=typed).status == "refused"
        assert client.dbsize() == 51
    result = execute(plan_flush(target, b"?*"), confirmation=f"127.0.0.1:{redis_server.port}")
    assert (result.status, result.deleted, client.dbsize()) == ("done", 51, 0)


def test_a_leading_space_pattern_is_an_ordinary_pattern(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b" lead:1", b" lead:2", b"lead:3", b"  two"])
    plan = plan_flush(target_of(redis_server), b" *")
    assert (plan.count, plan.wipes_all, plan.confirm_name) == (3, False, None)
    result = execute(plan)
    assert (result.status, result.deleted) == ("done", 3)
    assert matching(client, b"*") == {b"lead:3"}


def test_an_estimate_of_the_whole_db_needs_flushdbs_confirmation_too(
        redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"e:%d" % i for i in range(20000)])
    whole = plan_flush(target_of(redis_server), b"e*", scan_count=100, count_budget_s=0.005)
    assert not whole.count_exact and whole.wipes_all and whole.confirm_name is not None
    fill(client, [b"f:%d" % i for i in range(20000)])
    half = plan_flush(target_of(redis_server), b"e*", scan_count=100, count_budget_s=0.005)
    assert not half.count_exact and not half.wipes_all and half.confirm_name is None


def test_rate_must_be_positive_and_finite(redis_server: RedisServer) -> None:
    for rate in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ActionArgumentError, match="positive number of keys per second"):
            plan_flush(target_of(redis_server), b"a*", rate_keys_per_s=rate)
