"""Provides live counts of tag indexes: how many of the keys an index lists still exist.

An index outlives its keys (they expire, or are deleted without untagging), so its size
overstates what an invalidation deletes: a tag listing 100 keys may hold 14 live ones. The
preview walks the index and asks EXISTS per page (pipelined, one round trip a page) within a
time budget, then extrapolates and says so; the tag list samples up to LIVE_SAMPLE random
members per tag instead (exact for smaller indexes), in two round trips for all tags.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from cachetop.actions.tag_dialects import RedisDialect
from cachetop.actions.tags_redis import zset_pairs

LIVE_SAMPLE = 200  # random members per tag when listing tags
PAGE = 500  # members per SSCAN/ZSCAN page of a preview's walk
DEAD_SHOWN = 3  # keys that are gone, kept in a preview's sample to show the index is stale


@dataclass(slots=True)
class LiveCount:
    """One preview's walk over one or more indexes; `exact` until the budget cut a walk."""

    live: int = 0
    members: int = 0
    exact: bool = True
    indexes_found: int = 0
    live_keys: list[bytes] = field(default_factory=list)
    dead_keys: list[bytes] = field(default_factory=list)


def _members(dialect: RedisDialect, pairs: list[tuple[bytes, bytes | None]],
             now: float) -> list[bytes]:
    """The keys of the members a run would delete (not those whose score says expired)."""
    return [dialect.member_key(m) for m, score in pairs if not dialect.skip(score, now)]


def _exists_each(client: redis.Redis, keys: list[bytes]) -> list[bool]:
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("EXISTS", key)
    return [bool(n) for n in pipe.execute()]


def count_live(client: redis.Redis, dialect: RedisDialect, index_key: bytes, now: float,
               deadline: float, out: LiveCount, sample_size: int) -> None:
    """Walk one index, adding its live members to `out` (and a sample of live keys first);
    past `deadline`, extrapolate the rest of this index from the share walked."""
    size = int(client.execute_command(dialect.card, index_key))
    if not size:
        return
    out.indexes_found += 1
    command = "ZSCAN" if dialect.kind == "zset" else "SSCAN"
    cursor, seen, live = 0, 0, 0
    while True:
        raw_cursor, raw = client.execute_command(command, index_key, cursor, "COUNT", PAGE)
        cursor = int(raw_cursor)
        pairs: list[tuple[bytes, bytes | None]] = (
            zset_pairs(raw) if dialect.kind == "zset" else [(m, None) for m in raw])
        keys = _members(dialect, pairs, now)
        exists = _exists_each(client, keys)
        seen += len(pairs)
        live += sum(exists)
        for key, there in zip(keys, exists, strict=True):
            if there and len(out.live_keys) < sample_size:
                out.live_keys.append(key)
            elif not there and len(out.dead_keys) < DEAD_SHOWN:
                out.dead_keys.append(key)
        if cursor == 0:
            break
        if time.monotonic() >= deadline:
            out.exact = False
            live = round(live / seen * size) if seen else 0
            seen = size
            break
    out.live += live
    out.members += seen


def sampled_live(client: redis.Redis, dialect: RedisDialect, index_keys: list[bytes],
                 sizes: list[int], now: float) -> list[tuple[int | None, bool]]:
    """(live, exact) per index from up to LIVE_SAMPLE random members each: exact when the
    index holds no more than that; live None where the server could not say (no
    ZRANDMEMBER before Redis 6.2, an ACL)."""
    if not index_keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in index_keys:
        if dialect.kind == "zset":
            pipe.execute_command("ZRANDMEMBER", key, LIVE_SAMPLE, "WITHSCORES")
        else:
            pipe.execute_command("SRANDMEMBER", key, LIVE_SAMPLE)
    picks = pipe.execute(raise_on_error=False)
    samples: list[list[bytes] | None] = []
    for pick in picks:
        if isinstance(pick, Exception) or pick is None:
            samples.append(None)
            continue
        pairs = zset_pairs(pick) if dialect.kind == "zset" else [(m, None) for m in pick]
        samples.append([dialect.member_key(m) for m, s in pairs if not dialect.skip(s, now)]
                       + [b""] * sum(1 for _, s in pairs if dialect.skip(s, now)))
    flat = [key for keys in samples for key in keys or () if key]
    found = iter(_exists_each(client, flat))
    out: list[tuple[int | None, bool]] = []
    for keys, size in zip(samples, sizes, strict=True):
        if keys is None:
            out.append((None, False))
            continue
        picked = len(keys)
        live = sum(next(found) for key in keys if key)
        if not picked:
            out.append((0, size == 0))
            continue
        out.append((live if picked >= size else round(live / picked * size), picked >= size))
    return out
