"""Pattern flush, tag invalidation and delete when the connection dies, the master is demoted or
the server restarts mid-run (reliability.md section 2 rows 7 and 20): the result is partial (or
refused), and its `deleted` is what the server really lost, counted with a direct client.
Cancels are covered in test_redis_flush.py and test_tags.py, a writable replica refused up
front in test_safety.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from cachetop.actions import Progress, execute, plan_delete, plan_flush, plan_invalidate
from cachetop.actions.tag_dialects import TAGS_KEY, tag_set_key
from cachetop.collectors.base import Target
from cachetop.target_url import parse_target_url
from tests.actions.helpers import confirmed, fill, matching, restart_at_once, target_of
from tests.faultproxy import FaultProxy
from tests.servers import MemcachedServer, RedisServer, free_port

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


@pytest.fixture
def demotable() -> Iterator[RedisServer]:
    """A master that stays writable once demoted (replica-read-only no): only cachetop's own
    role check can stop a run on it."""
    server = RedisServer("--replica-read-only", "no")
    server.start()
    yield server
    server.close()


def demote(client: object) -> None:
    """A real REPLICAOF, to a port nobody listens on: the server is a replica from now on,
    and no sync ever wipes its data."""
    client.execute_command("REPLICAOF", "127.0.0.1", free_port())  # type: ignore[attr-defined]
    assert client.info("replication")["role"] == "slave"  # type: ignore[attr-defined]


def test_tag_invalidation_stops_at_the_next_batch_when_the_master_is_demoted(
        demotable: RedisServer) -> None:
    direct = demotable.client()
    keys = tag_keys(direct, b"hot", TAGGED)
    untagged = [b"untagged:%d" % i for i in range(100)]
    fill(direct, untagged)
    plan = plan_invalidate(target_of(demotable), [b"hot"], batch=500)
    assert plan.count == TAGGED
    result = execute(plan, at_half(None, lambda _: demote(direct), TAGGED))  # type: ignore[arg-type]
    remaining = direct.exists(*keys)
    assert result.status == "partial", result.summary
    assert "became a replica" in result.errors[0]
    assert TAGGED // 2 <= result.deleted == TAGGED - remaining < TAGGED
    assert direct.exists(*untagged) == len(untagged)


def test_delete_is_refused_when_the_master_was_demoted_after_the_preview(
        demotable: RedisServer) -> None:
    direct = demotable.client()
    direct.set(b"k", b"v")
    plan = plan_delete(target_of(demotable), b"k")
    assert (plan.refusal, plan.count) == (None, 1)
    demote(direct)  # while the person reads the preview
    result = execute(plan)
    assert (result.status, result.deleted) == ("refused", 0), result.summary
    assert "replica" in result.summary
    assert direct.get(b"k") == b"v"


def _memcached_keys(server: MemcachedServer, keys: list[bytes]) -> None:
    server.client().set_many(dict.fromkeys(keys, b"v"), noreply=False)


def test_memcached_flush_stops_when_the_server_restarts_mid_run(
        mc_server: MemcachedServer) -> None:
    """The restarted memcached is another instance: the run stops with the count the old one
    really lost, and never goes on deleting on the new one."""
    keys = [b"f:%d" % i for i in range(KEYS // 4)]
    _memcached_keys(mc_server, keys)
    plan = plan_flush(target_of(mc_server), b"f:*")
    # The preview's walk can miss items the LRU maintainer is moving (test_memcached.py):
    # the count is not this test's subject.
    assert 0 < plan.count <= len(keys)
    lost_before_restart: list[int] = []
    written_after = [b"f:new:%d" % i for i in range(50)]

    def restart(p: Progress) -> None:
        if not lost_before_restart and p.deleted >= len(keys) // 2:
            found = mc_server.client().get_many(keys)
            lost_before_restart.append(len(keys) - len(found))
            restart_at_once(mc_server)
            _memcached_keys(mc_server, written_after)

    result = confirmed(plan, restart)  # f:* is every item: a whole-instance flush
    assert lost_before_restart, "the restart never happened"
    assert result.status == "partial", result.summary
    assert len(keys) // 2 <= result.deleted == lost_before_restart[0] < len(keys)
    assert len(mc_server.client().get_many(written_after)) == len(written_after)


def test_memcached_flush_is_refused_when_the_server_restarted_after_the_preview(
        mc_server: MemcachedServer) -> None:
    _memcached_keys(mc_server, [b"f:%d" % i for i in range(100)])
    plan = plan_flush(target_of(mc_server), b"f:*")
    assert 0 < plan.count <= 100  # a walk may miss an item being moved
    restart_at_once(mc_server)
    written_after = [b"f:new:%d" % i for i in range(50)]
    _memcached_keys(mc_server, written_after)
    result = confirmed(plan)
    assert (result.status, result.deleted) == ("refused", 0), result.summary
    assert "restarted" in result.summary
    assert len(mc_server.client().get_many(written_after)) == len(written_after)
