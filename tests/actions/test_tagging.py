"""cachetop.actions.tagging, the application-side helper, on real Redis and memcached."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cachetop.actions.tag_dialects import TAGS_KEY, tag_set_key, tag_version_key
from cachetop.actions.tagging import MemcachedTagCache, RedisTagCache, tag_cache
from tests.servers import MemcachedServer, RedisServer


def test_helper_imports_without_the_ui() -> None:
    code = ("import sys, cachetop.actions.tagging, cachetop.actions, cachetop.cli.actions; "
            "print([m for m in ('textual', 'rich', 'plotext') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_redis_index_ttl_covers_its_longest_member(redis_server: RedisServer) -> None:
    client = redis_server.client()
    cache = tag_cache(client)
    assert isinstance(cache, RedisTagCache)
    cache.set("a", b"1", ttl=100, tags=["t"])
    assert 90 < client.ttl(tag_set_key(b"t")) <= 100  # a new index takes the member's TTL
    cache.set("b", b"2", ttl=500, tags=["t"])
    assert 490 < client.ttl(tag_set_key(b"t")) <= 500  # extended to the longest member
    cache.set("c", b"3", ttl=10, tags=["t"])
    assert client.ttl(tag_set_key(b"t")) > 490  # never shortened
    cache.set("d", b"4", tags=["t"])
    assert client.ttl(tag_set_key(b"t")) == -1  # a member without TTL: the index persists
    cache.set("e", b"5", ttl=5, tags=["t"])
    assert client.ttl(tag_set_key(b"t")) == -1
    assert client.smembers(tag_set_key(b"t")) == {b"a", b"b", b"c", b"d", b"e"}
    assert client.smembers(TAGS_KEY) == {b"t"}
    assert cache.get("b") == b"2" and client.ttl(b"b") > 490


def test_redis_invalidate_and_delete(redis_server: RedisServer) -> None:
    client = redis_server.client(decode_responses=True)  # the helper works either way
    cache = tag_cache(client)
    for i in range(700):
        cache.set(f"x:{i}", "v", ttl=60, tags=["x"] if i % 7 else ["x", "seventh"])
    cache.set("y", "v", ttl=60, tags=["y"])
    assert cache.delete("x:1") and not cache.delete("x:1")
    assert cache.invalidate_tags(["seventh"]) == 100
    assert cache.invalidate_tags(["x"]) == 599  # 700 - 100 already gone - 1 deleted
    assert client.dbsize() == 3  # y, its index, and cachetop:tags
    assert cache.get("y") == "v"


def test_memcached_values_miss_after_their_tag_moves(mc_server: MemcachedServer) -> None:
    client = mc_server.client()
    cache = tag_cache(client)
    assert isinstance(cache, MemcachedTagCache)
    cache.set("a", b"A", ttl=60, tags=["t1", "t2"])
    cache.set("b", b"B", ttl=60, tags=["t2"])
    cache.set("c", b"C", ttl=60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"A", b"B", b"C")
    assert cache.invalidate_tags(["t1"]) == 1
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, b"B", b"C")
    client.delete(tag_version_key(b"t2"))  # an evicted version key must not resurrect values
    assert cache.get("b") is None
    cache.set("b", b"B2", ttl=60, tags=["t2"])
    assert cache.get("b") == b"B2"
    assert cache.delete("b") and cache.get("b") is None
    assert cache.get("never") is None


def test_unknown_clients_are_rejected() -> None:
    with pytest.raises(TypeError):
        tag_cache(object())
