"""Tag invalidation per dialect (tags.md) on real servers: exactly the indexed keys go."""

from __future__ import annotations

import threading
import time

from cachetop.actions import Progress, execute, list_tags, plan_invalidate
from cachetop.actions.tag_dialects import TAGS_KEY, tag_set_key
from cachetop.actions.tagging import tag_cache
from tests.actions.helpers import fill, target_of
from tests.servers import MemcachedServer, RedisServer

LARAVEL_PREFIX = b"laravel_database_laravel_cache_"


def test_cachetop_dialect_deletes_exactly_the_tagged_keys(redis_server: RedisServer) -> None:
    client = redis_server.client()
    cache = tag_cache(client)
    for i in range(300):
        cache.set(f"user:{i}", b"u", ttl=600, tags=["user", "profile"] if i % 2 else ["user"])
    for i in range(100):
        cache.set(f"post:{i}", b"p", ttl=600, tags=["post"])
    fill(client, [b"untagged:%d" % i for i in range(50)])
    tags = {t.tag: t.size for t in list_tags(target_of(redis_server))}
    assert tags == {b"user": 300, b"profile": 150, b"post": 100}
    plan = plan_invalidate(target_of(redis_server), [b"profile"])
    assert plan.count == 150 and len(plan.sample) == 20
    assert all(s.exists and s.key.startswith(b"user:") for s in plan.sample)
    result = execute(plan)
    assert (result.status, result.deleted, result.already_gone) == ("done", 150, 0)
    odd = [f"user:{i}".encode() for i in range(1, 300, 2)]
    even = [f"user:{i}".encode() for i in range(0, 300, 2)]
    assert client.exists(*odd) == 0 and client.exists(*even) == 150
    assert client.exists(tag_set_key(b"profile")) == 0
    assert not client.sismember(TAGS_KEY, b"profile") and client.sismember(TAGS_KEY, b"user")
    assert client.exists(*[b"untagged:%d" % i for i in range(50)]) == 50
    again = execute(plan_invalidate(target_of(redis_server), [b"user"]))
    # The odd ones went with "profile": still listed in "user", they count as already gone.
    assert (again.deleted, again.already_gone) == (150, 150)


def test_key_tagged_during_the_invalidation_survives(redis_server: RedisServer) -> None:
    client = redis_server.client()
    cache = tag_cache(client)
    for i in range(3000):
        cache.set(f"k:{i}", b"v", ttl=600, tags=["hot"])
    writer = tag_cache(redis_server.client())
    written = threading.Event()

    def progress(p: Progress) -> None:  # after the RENAME: the first batch is done
        if not written.is_set():
            written.set()
            writer.set("k:new", b"fresh", ttl=600, tags=["hot"])

    result = execute(plan_invalidate(target_of(redis_server), [b"hot"], batch=200), progress)
    assert written.is_set() and result.status == "done" and result.deleted == 3000
    assert client.get(b"k:new") == b"fresh"
    assert client.smembers(tag_set_key(b"hot")) == {b"k:new"}
    assert client.sismember(TAGS_KEY, b"hot")  # still listed: its fresh index exists
    assert client.exists(*[f"k:{i}".encode() for i in range(3000)]) == 0


def test_cancelled_invalidation_puts_unprocessed_members_back(redis_server: RedisServer) -> None:
    client = redis_server.client()
    cache = tag_cache(client)
    for i in range(3000):
        cache.set(f"k:{i}", b"v", ttl=600, tags=["t"])
    cancel = threading.Event()
    result = execute(plan_invalidate(target_of(redis_server), [b"t"], batch=200),
                     lambda p: cancel.set(), cancel)
    left = client.exists(*[f"k:{i}".encode() for i in range(3000)])
    assert result.status == "cancelled" and 0 < result.deleted == 3000 - left
    assert client.scard(tag_set_key(b"t")) == 3000  # the index is whole again
    assert 0 < client.ttl(tag_set_key(b"t")) <= 600
    rerun = execute(plan_invalidate(target_of(redis_server), [b"t"]))
    assert (rerun.deleted, rerun.already_gone) == (left, 3000 - left)


def test_laravel_dialect(redis_server: RedisServer) -> None:
    client = redis_server.client()
    p = LARAVEL_PREFIX
    now = int(time.time())
    fill(client, [p + b"forever", p + b"later", p + b"expired-then-rewritten", p + b"other"])
    client.zadd(p + b"tag:users:entries",
                {b"forever": -1, b"later": now + 600, b"expired-then-rewritten": now - 60,
                 b"already-gone": -1})
    client.zadd(p + b"tag:posts:entries", {b"other": -1})
    target = target_of(redis_server, dialect="laravel")
    found = {t.tag: t.size for t in list_tags(target, prefix=p)}
    assert found == {b"users": 4, b"posts": 1}
    plan = plan_invalidate(target, [b"users"], prefix=p)
    # Live keys only: not the member whose score is past, nor the one whose key is gone.
    assert plan.count == 2
    result = execute(plan)
    assert (result.status, result.deleted, result.already_gone) == ("done", 2, 1)
    assert (result.scanned, result.skipped) == (4, 1)  # 4 = 2 deleted + 1 gone + 1 skipped
    assert client.exists(p + b"forever", p + b"later") == 0
    assert client.exists(p + b"expired-then-rewritten", p + b"other") == 2
    assert client.exists(p + b"tag:users:entries") == 0
    assert client.exists(p + b"tag:posts:entries") == 1


def test_symfony_dialect_with_binary_index_names(redis_server: RedisServer) -> None:
    client = redis_server.client()
    items = [b"app:item%d" % i for i in range(40)]
    fill(client, items + [b"app:untagged", b"other:item1"])
    client.sadd(b"app:\x01tags\x01users", *items[:30])
    client.sadd(b"other:\x01tags\x01users", b"other:item1")
    client.sadd(b"app:\x01tags\x01posts", *items[30:])
    target = target_of(redis_server, dialect="symfony")
    listed = sorted((t.tag, t.size) for t in list_tags(target))
    assert listed == [(b"posts", 10), (b"users", 1), (b"users", 30)]
    plan = plan_invalidate(target, [b"users"])
    assert plan.count == 31
    result = execute(plan)
    assert (result.status, result.deleted) == ("done", 31)
    assert client.exists(*items[:30], b"other:item1") == 0
    assert client.exists(*items[30:], b"app:untagged") == 11
    assert client.exists(b"app:\x01tags\x01users", b"other:\x01tags\x01users") == 0
    assert client.scard(b"app:\x01tags\x01posts") == 10


def test_memcached_version_bump(mc_server: MemcachedServer) -> None:
    cache = tag_cache(mc_server.client())
    cache.set("u:1", b"one", ttl=600, tags=["user"])
    cache.set("p:1", b"post", ttl=600, tags=["post"])
    target = target_of(mc_server)
    assert {t.tag for t in list_tags(target)} == {b"user", b"post"}
    assert cache.get("u:1") == b"one"
    plan = plan_invalidate(target, [b"user"])
    assert plan.count is None and "version bump" in plan.description
    result = execute(plan)
    assert result.status == "done" and "version" in result.notes[0]
    assert cache.get("u:1") is None and cache.get("p:1") == b"post"
    missing = execute(plan_invalidate(target, [b"never-used"]))
    assert missing.status == "done" and "none ->" in missing.notes[0]
