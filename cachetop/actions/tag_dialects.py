"""Provides the Redis tag-index dialects of tags.md: where each framework keeps a tag's index.

A dialect answers: which key holds tag T's index (`cachetop`, `laravel`), or which keys do
(`symfony`: one per namespace), how to list tags, which data key a member names, which members
to skip, and what to tidy after the index is drained. The drain itself is tags_redis.py.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal

import redis

from cachetop.actions.glob import escape_glob

TAGS_KEY = b"cachetop:tags"
SYMFONY_MARK = b"\x01tags\x01"
WORK_MARK = b":invalidating:"
LIST_SCAN_COUNT = 1000


def tag_set_key(tag: bytes) -> bytes:
    """The cachetop dialect's index of `tag`: braces keep it on one cluster slot."""
    return b"cachetop:tag:{" + tag + b"}"


def tag_version_key(tag: bytes) -> bytes:
    """The memcached version key of `tag` (cachetop dialect)."""
    return b"cachetop:tagv:" + tag


@dataclass(frozen=True, slots=True)
class TagIndex:
    """One tag's index as found on the server. `size` None: not counted (memcached); `live`
    the keys it lists that still exist (None: not known), exact or sampled (`live_exact`)."""

    tag: bytes
    index_key: bytes
    kind: Literal["set", "zset", "version"]
    size: int | None
    detail: str = ""
    live: int | None = None
    live_exact: bool = False


def _scan_all(client: redis.Redis, pattern: bytes, type_name: str, limit: int) -> list[bytes]:
    cursor, found = 0, []
    while True:
        cursor, keys = client.execute_command("SCAN", cursor, "MATCH", pattern, "COUNT",
                                              LIST_SCAN_COUNT, "TYPE", type_name)
        found += [k for k in keys if k not in found]
        if int(cursor) == 0 or len(found) >= limit:
            return found[:limit]


def _sizes(client: redis.Redis, keys: list[bytes], command: str) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command(command, key)
    return [int(n) for n in pipe.execute()]


class CachetopDialect:
    """`cachetop:tag:{T}` SETs of full keys; `cachetop:tags` lists the tag names."""

    name, kind, card = "cachetop", "set", "SCARD"

    def index_keys(self, client: redis.Redis, tag: bytes) -> list[bytes]:
        return [tag_set_key(tag)]

    def list_tags(self, client: redis.Redis, limit: int) -> list[TagIndex]:
        cursor, names = 0, []
        while True:
            cursor, batch = client.execute_command("SSCAN", TAGS_KEY, cursor, "COUNT", 1000)
            names += list(batch)
            if int(cursor) == 0 or len(names) >= limit:
                break
        names = sorted(set(names))[:limit]
        sizes = _sizes(client, [tag_set_key(t) for t in names], self.card)
        return [TagIndex(t, tag_set_key(t), "set", n) for t, n in zip(names, sizes, strict=True)]

    def member_key(self, member: bytes) -> bytes:
        return member

    def skip(self, score: bytes | None, now: float) -> bool:
        return False

    def after(self, client: redis.Redis, tag: bytes, index_key: bytes) -> None:
        """Unlist the tag, unless a writer already started a fresh index for it."""
        if not client.execute_command("EXISTS", index_key):
            client.execute_command("SREM", TAGS_KEY, tag)


class LaravelDialect(CachetopDialect):
    """Laravel 10+: ZSET `<prefix>tag:<T>:entries`, member = key without prefix, score =
    expiry unix time or -1 (forever)."""

    name, kind, card = "laravel", "zset", "ZCARD"

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix

    def _index(self, tag: bytes) -> bytes:
        return self.prefix + b"tag:" + tag + b":entries"

    def index_keys(self, client: redis.Redis, tag: bytes) -> list[bytes]:
        return [self._index(tag)]

    def list_tags(self, client: redis.Redis, limit: int) -> list[TagIndex]:
        head = self.prefix + b"tag:"
        keys = _scan_all(client, escape_glob(head) + b"*:entries", "zset", limit)
        keys = sorted(k for k in keys if WORK_MARK not in k)
        sizes = _sizes(client, keys, self.card)
        return [TagIndex(k[len(head):-len(b":entries")], k, "zset", n)
                for k, n in zip(keys, sizes, strict=True)]

    def member_key(self, member: bytes) -> bytes:
        return self.prefix + member

    def skip(self, score: bytes | None, now: float) -> bool:
        """Members whose score is past have expired: their key may since have been rewritten
        without this tag, so it is not the tag's to delete."""
        try:
            value = float(score) if score is not None else -1.0
        except ValueError:
            return False
        return 0 < value < now

    def after(self, client: redis.Redis, tag: bytes, index_key: bytes) -> None:
        return None


class SymfonyDialect(CachetopDialect):
    """Symfony RedisTagAwareAdapter: SET `<namespace>:\\x01tags\\x01<T>` of full item ids,
    one per namespace using the tag."""

    name, kind, card = "symfony", "set", "SCARD"

    def index_keys(self, client: redis.Redis, tag: bytes) -> list[bytes]:
        keys = _scan_all(client, b"*" + escape_glob(SYMFONY_MARK + tag), "set", 10_000)
        return sorted(k for k in keys if k.endswith(SYMFONY_MARK + tag) and WORK_MARK not in k)

    def list_tags(self, client: redis.Redis, limit: int) -> list[TagIndex]:
        keys = _scan_all(client, b"*" + escape_glob(SYMFONY_MARK) + b"*", "set", limit)
        keys = sorted(k for k in keys if WORK_MARK not in k)
        sizes = _sizes(client, keys, self.card)
        return [TagIndex(k.rpartition(SYMFONY_MARK)[2], k, "set", n,
                         detail=k.rpartition(SYMFONY_MARK)[0].decode("utf-8", "replace"))
                for k, n in zip(keys, sizes, strict=True)]

    def after(self, client: redis.Redis, tag: bytes, index_key: bytes) -> None:
        return None


RedisDialect = CachetopDialect | LaravelDialect | SymfonyDialect


def redis_dialect(name: str, prefix: bytes = b"") -> RedisDialect:
    if name == "cachetop":
        return CachetopDialect()
    if name == "laravel":
        return LaravelDialect(prefix)
    if name == "symfony":
        return SymfonyDialect()
    raise ValueError(f"unknown tag dialect {name!r} (use cachetop, laravel or symfony)")


def work_key(index_key: bytes) -> bytes:
    """A unique name to RENAME an index to before draining it. It keeps the index's cluster
    hash tag (`{...}`) by extending the name, and no dialect's listing matches it."""
    return index_key + WORK_MARK + uuid.uuid4().hex.encode()


def server_now(client: redis.Redis) -> float:
    try:
        seconds, micros = client.execute_command("TIME")
        return int(seconds) + int(micros) / 1e6
    except redis.ResponseError:  # TIME not permitted: the local clock is close enough
        return time.time()
