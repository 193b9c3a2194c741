"""Provides the application-side tagged cache of the `cachetop` dialect (tags.md), headless.

    cache = tag_cache(redis.Redis(...))            # or a pymemcache Client
    cache.set("user:123", data, ttl=3600, tags=["user", "profile"])
    cache.get("user:123")                          # bytes, or None on a miss
    cache.invalidate_tags(["user"])

Redis: the value is a plain key, and each tag keeps a SET index `cachetop:tag:{<tag>}` whose
TTL covers its longest-lived member; `cachetop:tags` lists the tag names. Invalidation is the
same drain cachetop's own action runs (RENAME aside, SSCAN, UNLINK members, drop the index).
Memcached: each tag has a version key `cachetop:tagv:<tag>`; a value records its tags'
versions when written, and get() treats it as a miss once any of them has moved.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cachetop.actions.tag_dialects import TAGS_KEY, CachetopDialect, tag_set_key, tag_version_key
from cachetop.actions.tags_memcached import new_version
from cachetop.actions.tags_redis import drain_index

# SADD the key to a tag's index and make the index outlive its members: a new index takes the
# member's TTL; an index with a TTL is extended, never shortened; a member without TTL (or an
# index that already lives forever) makes the index live forever. One script: atomic per tag.
_INDEX_SCRIPT = """
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl <= 0 then
  redis.call('PERSIST', KEYS[1])
elseif existed == 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
else
  local current = redis.call('TTL', KEYS[1])
  if current >= 0 and current < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
end
return 1
"""
_ENVELOPE = b"\x00cachetop-tags:1\n"
_DRAIN_BATCH = 500


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


class RedisTagCache:
    """The cachetop tag dialect on a redis-py client (any decode_responses setting)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def set(self, key: str | bytes, value: Any, ttl: int | None = None,
            tags: Iterable[str | bytes] = ()) -> None:
        """SET the value (EX ttl), then index it under each tag (tags.md order: a crash in
        between leaves an untagged value, never an index entry without its write)."""
        key = _bytes(key)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, value, ex=ttl)
        for tag in map(_bytes, tags):
            pipe.eval(_INDEX_SCRIPT, 1, tag_set_key(tag), key, ttl or 0)
            pipe.sadd(TAGS_KEY, tag)
        pipe.execute()

    def get(self, key: str | bytes) -> Any:
        return self.client.get(_bytes(key))

    def delete(self, key: str | bytes) -> bool:
        """Delete one key; its index entries stay and count as already gone later."""
        return bool(self.client.unlink(_bytes(key)))

    def invalidate_tags(self, tags: Iterable[str | bytes]) -> int:
        """Delete every key indexed under the tags; returns how many existed. Keys tagged
        while this runs go to a fresh index and are kept."""
        dialect, deleted = CachetopDialect(), 0
        for tag in map(_bytes, tags):
            outcome = drain_index(self.client, dialect, tag, tag_set_key(tag),
                                  batch=_DRAIN_BATCH, delete=self._unlink, stop=lambda: False)
            deleted += outcome.deleted
        return deleted

    def _unlink(self, keys: list[bytes]) -> int:
        return int(self.client.execute_command("UNLINK", *keys))


class MemcachedTagCache:
    """The cachetop tag dialect on a pymemcache client: version keys, checked on read."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def set(self, key: str | bytes, value: str | bytes, ttl: int | None = None,
            tags: Iterable[str | bytes] = ()) -> None:
        versions = self._versions([_bytes(t) for t in tags], create=True)
        header = json.dumps({t.decode("latin-1"): v for t, v in versions.items()})
        data = _ENVELOPE + header.encode() + b"\n" + _bytes(value)
        self.client.set(_bytes(key), data, expire=ttl or 0, noreply=False)

    def get(self, key: str | bytes) -> bytes | None:
        """The value, or None if missing or if any of its tags was invalidated since."""
        raw: bytes | None = self.client.get(_bytes(key))
        if raw is None or not raw.startswith(_ENVELOPE):
            return raw
        header, _, payload = raw[len(_ENVELOPE):].partition(b"\n")
        recorded = {t.encode("latin-1"): v for t, v in json.loads(header).items()}
        current = self._versions(list(recorded), create=False)
        if any(current.get(tag) != version for tag, version in recorded.items()):
            return None
        return bytes(payload)

    def delete(self, key: str | bytes) -> bool:
        return bool(self.client.delete(_bytes(key), noreply=False))

    def invalidate_tags(self, tags: Iterable[str | bytes]) -> int:
        """Bump each tag's version (create it when missing); returns the number bumped."""
        count = 0
        for tag in map(_bytes, tags):
            key = tag_version_key(tag)
            if self.client.incr(key, 1) is None and not self.client.add(
                    key, b"%d" % new_version(), noreply=False):
                self.client.incr(key, 1)  # another writer created it first
            count += 1
        return count

    def _versions(self, tags: list[bytes], create: bool) -> dict[bytes, int | None]:
        keys = {tag_version_key(t): t for t in tags}
        found = self.client.get_many(list(keys)) if keys else {}
        versions: dict[bytes, int | None] = {}
        for key, tag in keys.items():
            raw = found.get(key)
            if raw is None and create:
                self.client.add(key, b"%d" % new_version(), noreply=False)
                raw = self.client.get(key)
            versions[tag] = int(raw) if raw is not None else None
        return versions


def tag_cache(client: Any) -> RedisTagCache | MemcachedTagCache:
    """The tagged cache for a redis-py or pymemcache client."""
    module = type(client).__module__
    if module.startswith("redis"):
        return RedisTagCache(client)
    if module.startswith("pymemcache"):
        return MemcachedTagCache(client)
    raise TypeError(f"tag_cache needs a redis-py or pymemcache client, not {type(client)!r}")
