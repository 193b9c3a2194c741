"""Provides fill_known_keyspace(): a Redis keyspace whose prefixes, sizes and TTLs are known.

The key analysis is checked against it (tests at ~50 k keys, bench/keys.py at 1 M): every
prefix's key count and TTL mix follow from `keys`, each type has one key with clearly the
most elements, and one 5 MB string stands alone. Keys are written by server-side scripts in
chunks (a million keys in a few seconds, no DEBUG POPULATE needed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

BIG_KEY = b"big:blob"
BIG_BYTES = 5 * 1024 * 1024
TTL_UNDER_1M_S = 59  # set last, after every other key: the checks have ~a minute
TTL_UNDER_1H_S = 1800
TTL_LONGER_S = 7200
CHUNK = 10_000

# name, share of the keys, type, elements per key, TTL rule by key index
_PLAN = (
    ("user:", 0.50, "string", 20, "mixed"),
    ("session:", 0.20, "hash", 5, "longer"),
    ("feed:", 0.15, "list", 10, "none"),
    ("tag:", 0.10, "set", 8, "none"),
    ("rank:", 0.05, "zset", 6, "under_1h"),
)
# The key of each type with the most elements (and the most memory of its type).
MAX_KEYS = {"list": (b"feed:max", 500), "hash": (b"session:max", 300),
            "set": (b"tag:max", 400), "zset": (b"rank:max", 200)}
STREAM_KEY, STREAM_ENTRIES = b"events:stream", 100

_FILL = """
local prefix, first, last, kind, n, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  ARGV[4], tonumber(ARGV[5]), ARGV[6]
local value = string.rep('v', n)
for i = first, last do
  local k = prefix .. i
  if kind == 'string' then redis.call('SET', k, value)
  elseif kind == 'hash' then
    for f = 1, n do redis.call('HSET', k, 'f' .. f, 'x') end
  elseif kind == 'list' then
    for f = 1, n do redis.call('RPUSH', k, 'i' .. f) end
  elseif kind == 'set' then
    for f = 1, n do redis.call('SADD', k, 'm' .. f) end
  elseif kind == 'zset' then
    for f = 1, n do redis.call('ZADD', k, f, 'm' .. f) end
  end
  local t = ttl
  if ttl == 'mixed' then  -- i % 4 == 2 gets its short TTL in the last pass (_SHORT)
    t = (i % 4 == 3 and 'under_1h') or 'none'
  end
  if t == 'under_1m' then redis.call('EXPIRE', k, TTL_UNDER_1M)
  elseif t == 'under_1h' then redis.call('EXPIRE', k, TTL_UNDER_1H)
  elseif t == 'longer' then redis.call('EXPIRE', k, TTL_LONGER) end
end
return last - first + 1
"""
for _name, _seconds in (("TTL_UNDER_1M", TTL_UNDER_1M_S), ("TTL_UNDER_1H", TTL_UNDER_1H_S),
                        ("TTL_LONGER", TTL_LONGER_S)):
    _FILL = _FILL.replace(_name, str(_seconds))


@dataclass(frozen=True)
class KnownKeyspace:
    """What was written: keys and TTL mix per prefix, and the keys every report must find."""

    keys: dict[bytes | None, int] = field(default_factory=dict)
    ttl: dict[bytes | None, dict[str, int]] = field(default_factory=dict)
    total: int = 0
    short_ttl_at: float = 0.0  # time.monotonic() when the TTLs under a minute were set


def _ttl_mix(rule: str, count: int) -> dict[str, int]:
    mix = dict.fromkeys(("none", "under_1m", "under_1h", "longer"), 0)
    if rule != "mixed":
        mix[rule] = count
        return mix
    for r in range(4):  # indexes 0 .. count-1, by i % 4
        share = count // 4 + (1 if r < count % 4 else 0)
        mix["under_1m" if r == 2 else "under_1h" if r == 3 else "none"] += share
    return mix


_SHORT = """
local prefix, first, last = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = first, last do
  if i % 4 == 2 then redis.call('EXPIRE', prefix .. i, tonumber(ARGV[4])) end
end
return 1
"""


def fill_known_keyspace(client: Any, keys: int) -> KnownKeyspace:
    """Write about `keys` keys (plus the special ones) into `client`'s db; return the truth."""
    sha = client.script_load(_FILL)
    counts: dict[bytes | None, int] = {}
    ttl: dict[bytes | None, dict[str, int]] = {}
    for prefix, share, kind, elements, rule in _PLAN:
        count = max(1, int(keys * share))
        for first in range(0, count, CHUNK):
            last = min(count, first + CHUNK) - 1
            client.evalsha(sha, 0, prefix, first, last, kind, elements, rule)
        counts[prefix.encode()] = count
        ttl[prefix.encode()] = _ttl_mix(rule, count)
    for kind, (key, elements) in MAX_KEYS.items():
        prefix = key.split(b":")[0] + b":"
        _write_max(client, kind, key, elements)
        counts[prefix] += 1
        ttl[prefix]["none"] += 1
    client.set(BIG_KEY, b"b" * BIG_BYTES)
    counts[b"big:"] = 1
    ttl[b"big:"] = {"none": 1, "under_1m": 0, "under_1h": 0, "longer": 0}
    client.xadd(STREAM_KEY, {"e": "0"})
    for i in range(1, STREAM_ENTRIES):
        client.xadd(STREAM_KEY, {"e": str(i)})
    counts[b"events:"] = 1
    ttl[b"events:"] = {"none": 1, "under_1m": 0, "under_1h": 0, "longer": 0}
    short = client.script_load(_SHORT)
    for prefix, share, _, _, rule in _PLAN:
        if rule != "mixed":
            continue
        count = max(1, int(keys * share))
        for first in range(0, count, CHUNK * 5):
            client.evalsha(short, 0, prefix, first, min(count, first + CHUNK * 5) - 1,
                           TTL_UNDER_1M_S)
    return KnownKeyspace(counts, ttl, sum(counts.values()), time.monotonic())


def _write_max(client: Any, kind: str, key: bytes, elements: int) -> None:
    if kind == "list":
        client.rpush(key, *[f"item-{i}" for i in range(elements)])
    elif kind == "hash":
        client.hset(key, mapping={f"field-{i}": "x" * 20 for i in range(elements)})
    elif kind == "set":
        client.sadd(key, *[f"member-{i}" for i in range(elements)])
    else:
        client.zadd(key, {f"member-{i}": i for i in range(elements)})
