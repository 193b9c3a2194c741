"""Provides prefix_of(), ttl_class() and size_bucket(): how one key is classified.

A prefix is the key up to and including its `depth`-th delimiter; a key with fewer delimiters
is classified by the ones it has (its last segment is its own name, not a prefix), and a key
with none has no prefix (None). So at depth 2, `user:1:cart` is under `user:1:` and `user:7`
under `user:`.
"""

from __future__ import annotations

TTL_CLASSES = ("none", "under_1m", "under_1h", "longer")
MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def prefix_of(key: bytes, delimiter: bytes, depth: int) -> bytes | None:
    """The key's prefix at `depth` (1..3) levels, delimiter included; None without one."""
    end = 0
    step = len(delimiter)
    for _ in range(depth):
        at = key.find(delimiter, end)
        if at < 0:
            break
        end = at + step
    return key[:end] if end else None


def ttl_class(pttl_ms: int) -> int:
    """Index into TTL_CLASSES of a PTTL reply (-1: no TTL)."""
    if pttl_ms < 0:
        return 0
    if pttl_ms < MINUTE_MS:
        return 1
    if pttl_ms < HOUR_MS:
        return 2
    return 3


def size_bucket(value: int) -> int:
    """The power-of-two bucket a size falls in, by its lower bound (0, 1, 2, 4, 8, ...), as
    INFO KEYSIZES (Redis 8) reports its histograms."""
    if value <= 0:
        return 0
    return 1 << (value.bit_length() - 1)


def check_delimiter(delimiter: bytes, depth: int) -> str | None:
    """Why a delimiter/depth pair cannot be used (None if it can)."""
    if not delimiter:
        return "the delimiter cannot be empty"
    if len(delimiter) > 8:
        return "the delimiter is at most 8 bytes"
    if not 1 <= depth <= 3:
        return "the depth is 1, 2 or 3"
    return None
