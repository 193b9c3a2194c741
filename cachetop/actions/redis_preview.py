"""Provides the Redis preview pieces: a time-bounded counting SCAN, and sample-key details.

A preview must say how many keys an action will delete without blocking the server (never
KEYS) and without taking forever on a big keyspace: it scans with MATCH/COUNT until the cursor
returns to 0 (exact) or a time budget runs out (then extrapolates from the share of the hash
table the cursor has covered, and says it is an estimate).
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from cachetop.actions.glob import glob_match
from cachetop.actions.plan import SampleKey
from cachetop.text_safety import plain

DEDUPE_CAP = 250_000  # distinct keys remembered to drop SCAN's duplicates; then raw counting


@dataclass(frozen=True, slots=True)
class ScanCount:
    count: int
    exact: bool
    note: str
    sample: tuple[bytes, ...]


def scan_args(cursor: int, pattern: bytes, count: int, type_name: str | None,
              native_type: bool) -> list[object]:
    """SCAN's arguments; the TYPE option only where the server has it (Redis >= 6)."""
    args: list[object] = [b"SCAN", b"%d" % cursor, b"MATCH", pattern, b"COUNT", b"%d" % count]
    if type_name and native_type:
        args += [b"TYPE", type_name.encode()]
    return args


def filter_type(client: redis.Redis, keys: list[bytes], type_name: str | None,
                native_type: bool) -> list[bytes]:
    """Keys of TYPE `type_name` when the server could not filter them (Redis < 6)."""
    if not type_name or native_type or not keys:
        return keys
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    types = pipe.execute()
    return [k for k, t in zip(keys, types, strict=True) if t == type_name.encode()]


def scan_page(client: redis.Redis, cursor: int, pattern: bytes, count: int,
              type_name: str | None, native_type: bool) -> tuple[int, list[bytes]]:
    """One SCAN call; TYPE filtered by the server on Redis >= 6, else by a TYPE pipeline."""
    raw_cursor, keys = client.execute_command(*scan_args(cursor, pattern, count, type_name,
                                                         native_type))
    return int(raw_cursor), filter_type(client, list(keys), type_name, native_type)


def scan_fraction(cursor: int, table_bits: int) -> float:
    """Share of the hash table a SCAN has covered at `cursor`: Redis walks buckets in
    reversed-bit order, so reversing the cursor's bits gives the position in the walk."""
    if table_bits <= 0:
        return 1.0
    reversed_bits = int(format(cursor & ((1 << table_bits) - 1), f"0{table_bits}b")[::-1], 2)
    return reversed_bits / (1 << table_bits)


def count_matches(client: redis.Redis, pattern: bytes, *, type_name: str | None,
                  native_type: bool, scan_count: int, budget_s: float,
                  sample_size: int = 20, max_pages: int | None = None) -> ScanCount:
    """Count keys matching `pattern` (and TYPE), exactly if the scan ends within `budget_s`
    and `max_pages` SCAN calls (a page budget is the same on a loaded machine)."""
    deadline = time.monotonic() + budget_s
    seen: set[bytes] = set()
    raw = 0
    sample: list[bytes] = []
    cursor = 0
    started = time.monotonic()
    pages = 0
    while True:
        pages += 1
        cursor, keys = scan_page(client, cursor, pattern, scan_count, type_name, native_type)
        raw += len(keys)
        for key in keys:
            if len(seen) < DEDUPE_CAP:
                seen.add(key)
            if len(sample) < sample_size and key not in sample:
                sample.append(key)
        if cursor == 0:
            break
        if time.monotonic() >= deadline or (max_pages is not None and pages >= max_pages):
            return _estimate(client, cursor, raw, time.monotonic() - started, tuple(sample))
    if raw <= DEDUPE_CAP:
        return ScanCount(len(seen), True, "exact: a full SCAN", tuple(sample))
    return ScanCount(raw, True, f"full SCAN; over {DEDUPE_CAP} keys, duplicates that SCAN "
                     "returns while the table is resized are not removed", tuple(sample))


def _estimate(client: redis.Redis, cursor: int, matched: int, took_s: float,
              sample: tuple[bytes, ...]) -> ScanCount:
    dbsize = int(client.execute_command("DBSIZE"))
    bits = max(cursor.bit_length(), max(dbsize - 1, 1).bit_length())
    share = scan_fraction(cursor, bits)
    estimate = round(matched / share) if share > 0 else matched
    estimate = max(matched, min(estimate, dbsize))
    note = (f"estimate: the {took_s:.1f}s counting scan covered about {share:.0%} of the "
            f"keyspace and found {matched}")
    return ScanCount(estimate, False, note, sample)


RANDOM_PROBES = 64


def random_keys_all_match(client: redis.Redis, pattern: bytes,
                          probes: int = RANDOM_PROBES) -> bool:
    """Whether `probes` RANDOMKEYs all match `pattern` (glob.glob_match is SCAN MATCH's own
    rule): the check an *estimated* count cannot make, that a pattern takes the whole db. A
    db with 1 % of other keys passes it one time in two; 10 %, once in 850. False when the
    server does not allow RANDOMKEY (an ACL) or the db is empty."""
    pipe = client.pipeline(transaction=False)
    for _ in range(probes):
        pipe.execute_command("RANDOMKEY")
    replies = pipe.execute(raise_on_error=False)
    if any(not isinstance(key, bytes) for key in replies):
        return False
    return all(glob_match(pattern, key) for key in replies)


def describe_keys(client: redis.Redis, keys: Iterable[bytes],
                  with_memory: bool) -> tuple[tuple[SampleKey, ...], list[int], str]:
    """TTL (and MEMORY USAGE) of sample keys in one pipeline; TYPE/PTTL/MEMORY USAGE do not
    touch the LRU. Returns the samples, the memory sizes found, and why memory is missing."""
    keys = list(keys)
    if not keys:
        return (), [], ""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("PTTL", key)
        if with_memory:
            pipe.execute_command("MEMORY", "USAGE", key)
    replies = pipe.execute(raise_on_error=False)
    step = 2 if with_memory else 1
    samples, sizes, memory_note = [], [], "" if with_memory else "MEMORY USAGE needs Redis 4"
    for index, key in enumerate(keys):
        pttl = replies[index * step]
        size = replies[index * step + 1] if with_memory else None
        if isinstance(size, Exception):
            memory_note, size = f"no memory estimate: {plain(str(size))[:120]}", None
        if isinstance(pttl, Exception):
            pttl = None
        exists = None if pttl is None else pttl != -2
        ttl = pttl / 1000 if isinstance(pttl, int) and pttl >= 0 else None
        if isinstance(size, int):
            sizes.append(size)
        samples.append(SampleKey(key=key, display=plain(key, 200), ttl_s=ttl, exists=exists,
                                 size_bytes=size if isinstance(size, int) else None))
    return tuple(samples), sizes, memory_note
