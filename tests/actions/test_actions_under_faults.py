"""Pattern flush and tag invalidation when the connection dies or the master is demoted mid-run
(reliability.md section 2 rows 7 and 20): the result is partial, and its `deleted` is what the
server really lost, counted with a direct client. Cancels are covered in test_redis_flush.py
and test_tags.py, a writable replica refused up front in test_safety.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from cachetop.actions import Progress, execute, plan_flush, plan_invalidate
from cachetop.actions.tag_dialects import TAGS_KEY, tag_set_key
from cachetop.target_url import parse_target_url
from collectors.base import Target
from tests.actions.helpers import confirmed, fill, matching, target_of
from tests.faultproxy import FaultProxy
from tests.servers import RedisServer

KEYS = 20_000
TAGGED = 6_000
Fault = Callable[[FaultProxy], None]


def lose_next_integer_reply(proxy: FaultProxy) -> None:
    """The server runs the next UNLINK, but its reply (`:n`, the run's only integer reply) is
    lost: the connection is reset instead of delivering it. One shot."""
    lost: list[bytes] = []

    def rewrite(reply: bytes) -> bytes | None:
        if lost or not reply.startswith(b":"):
            return reply
        lost.append(reply)
        return None

    proxy.rewrite_reply(rewrite)


FAULTS: dict[str, Fault] = {
    "cut": FaultProxy.cut,  # every connection reset between two batches
    "reset-mid-reply": lambda proxy: proxy.reset_after(100),  # inside the next SCAN page
    "unlink-reply-lost": lose_next_integer_reply,
}


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[FaultProxy]:
    with FaultProxy(redis_server.port) as p:
        yield p


def via(proxy: FaultProxy) -> Target:
    return parse_target_url(f"redis://{proxy.address}")


def at_half(proxy: FaultProxy, fault: Fault, total: int) -> Callable[[Progress], None]:
    """A progress callback that injects `fault` once about half the keys are deleted."""
    fired: list[bool] = []

    def progress(p: Progress) -> None:
        if not fired and p.deleted >= total // 2:
            fired.append(True)
            fault(proxy)

    return progress


@pytest.mark.parametrize("fault", FAULTS)
def test_flush_cut_mid_run_is_partial_with_the_true_count(
        redis_server: RedisServer, proxy: FaultProxy, fault: str) -> None:
    direct = redis_server.client()
    fill(direct, [b"f:%d" % i for i in range(KEYS)] + [b"keep:%d" % i for i in range(500)])
    plan = plan_flush(via(proxy), b"f:*")
    assert plan.count == KEYS
    result = execute(plan, at_half(proxy, FAULTS[fault], KEYS))
    remaining = len(matching(direct, b"f:*"))
    assert result.status == "partial", result.summary
    assert KEYS // 2 <= result.deleted == KEYS - remaining < KEYS
    assert result.errors and result.errors[0].startswith("connection failed")
    assert len(matching(direct, b"keep:*")) == 500
    proxy.heal()
    rerun = execute(plan_flush(via(proxy), b"f:*"))
    assert (rerun.status, rerun.deleted) == ("done", remaining)


def tag_keys(direct: object, tag: bytes, n: int) -> list[bytes]:
    """`n` keys tagged `tag` in the cachetop dialect (tags.md): values plus the SET index."""
    keys = [b"t:%d" % i for i in range(n)]
    fill(direct, keys, ttl=600)
    pipe = direct.pipeline(transaction=False)  # type: ignore[attr-defined]
    for start in range(0, n, 1000):
        pipe.sadd(tag_set_key(tag), *keys[start:start + 1000])
    pipe.expire(tag_set_key(tag), 600).sadd(TAGS_KEY, tag).execute()
    return keys


@pytest.mark.parametrize("fault", FAULTS)
def test_tag_invalidation_cut_mid_run_is_partial_with_the_true_count(
        redis_server: RedisServer, proxy: FaultProxy, fault: str) -> None:
    direct = redis_server.client()
    keys = tag_keys(direct, b"hot", TAGGED)
    fill(direct, [b"untagged:%d" % i for i in range(100)])
    plan = plan_invalidate(via(proxy), [b"hot"], batch=500)
    assert plan.count == TAGGED
    result = execute(plan, at_half(proxy, FAULTS[fault], TAGGED))
    remaining = direct.exists(*keys)
    assert result.status == "partial", result.summary
    assert TAGGED // 2 <= result.deleted == TAGGED - remaining < TAGGED
    # The drain put its work index back: every member is listed again, none was lost.
    assert direct.scard(tag_set_key(b"hot")) == TAGGED
    assert direct.exists(*[b"untagged:%d" % i for i in range(100)]) == 100
    proxy.heal()
    rerun = execute(plan_invalidate(via(proxy), [b"hot"]))
    assert (rerun.status, rerun.deleted, rerun.already_gone) == (
        "done", remaining, TAGGED - remaining)


def wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for replication"
        time.sleep(0.02)


def test_failover_mid_flush_stops_at_the_next_batch() -> None:
    """A real failover: the replica is promoted and the flush's target becomes its replica.
    The old master would still accept writes (replica-read-only no), so only the role check
    before each batch stops the run."""
    primary = RedisServer("--repl-diskless-sync-delay", "0", "--replica-read-only", "no")
    primary.start()
    replica = RedisServer("--replicaof", "127.0.0.1", str(primary.port),
                          "--repl-diskless-sync-delay", "0", "--replica-read-only", "no")
    try:
        replica.start()
        to_primary, to_replica = primary.client(), replica.client()
        fill(to_primary, [b"f:%d" % i for i in range(KEYS)])
        wait_for(lambda: to_replica.dbsize() == KEYS)

        def fail_over() -> None:
            to_primary.execute_command("WAIT", 1, 5000)  # the replica has every delete so far
            to_replica.execute_command("REPLICAOF", "NO", "ONE")
            to_primary.execute_command("REPLICAOF", "127.0.0.1", str(replica.port))

        result = confirmed(plan_flush(target_of(primary), b"f:*"),  # every key: the name typed
                           at_half(None, lambda _: fail_over(), KEYS))  # type: ignore[arg-type]
        remaining = len(matching(to_replica, b"f:*"))  # the new master's keys
        assert result.status == "partial", result.summary
        assert "became a replica" in result.errors[0]
        assert KEYS // 2 <= result.deleted == KEYS - remaining < KEYS
        wait_for(lambda: to_primary.info("replication")["master_link_status"] == "up")
        assert len(matching(to_primary, b"f:*")) == remaining
    finally:
        replica.close()
        primary.close()
