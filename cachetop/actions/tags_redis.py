"""Provides drain_index(): invalidate one Redis tag index the way tags.md says, never losing a key.

The index is first RENAMEd to a unique work name, so writers that tag new keys meanwhile start
a fresh index (their keys are neither lost nor wrongly deleted). The work index is then read
in batches (SSCAN/ZSCAN, never SMEMBERS), its members deleted in batches, and only then is the
work index itself deleted: never the index before its members. Only index members are ever
deleted. A stop (cancel, refusal, error) puts the unprocessed members back under the live name.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from cachetop.actions.tag_dialects import RedisDialect, server_now, work_key

DeleteFn = Callable[[list[bytes]], int]


class DrainStoppedError(Exception):
    """Raised by a `delete` callback that stopped part-way (cancel): the drain puts the
    members back in the index and returns an incomplete outcome."""


@dataclass(slots=True)
class DrainOutcome:
    members: int = 0
    deleted: int = 0
    skipped: int = 0
    complete: bool = False
    work_key: bytes = b""


def drain_index(client: redis.Redis, dialect: RedisDialect, tag: bytes, index_key: bytes, *,
                batch: int, delete: DeleteFn, stop: Callable[[], bool],
                on_batch: Callable[[DrainOutcome], None] | None = None,
                out: DrainOutcome | None = None) -> DrainOutcome:
    """Invalidate one index: RENAME, scan members, `delete` their keys, then drop the index.

    Args:
        client: A connection on the index's db.
        dialect: Maps members to keys and says which to skip.
        tag, index_key: The tag and the key of its index.
        batch: Members read per SSCAN/ZSCAN call (a COUNT hint).
        delete: Deletes a batch of keys and returns how many existed; it may raise to stop
            (a failed role check, a server error).
        stop: Polled between batches; True stops early (the members go back to the index).
        on_batch: Called after each batch with the running outcome.
        out: Filled in as the drain goes; pass one to read the counts after an exception.
    """
    out = out if out is not None else DrainOutcome()
    out.work_key = work_key(index_key)
    try:
        client.execute_command("RENAME", index_key, out.work_key)
    except redis.ResponseError as exc:
        if "no such key" in str(exc).lower():
            out.complete = True  # nothing indexed (never tagged, or invalidated meanwhile)
            dialect.after(client, tag, index_key)
            return out
        raise
    now = server_now(client)
    cursor = 0
    try:
        while True:
            cursor, members = _scan(client, dialect.kind, out.work_key, cursor, batch)
            keys = []
            for member, score in members:
                if dialect.skip(score, now):
                    out.skipped += 1
                else:
                    keys.append(dialect.member_key(member))
            out.members += len(members)
            if keys:
                try:
                    out.deleted += delete(keys)
                except DrainStoppedError:
                    _restore(client, dialect.kind, index_key, out.work_key)
                    return out
            if on_batch is not None:
                on_batch(out)
            if cursor == 0:
                break
            if stop():
                _restore(client, dialect.kind, index_key, out.work_key)
                return out
    except BaseException:
        _restore_quietly(client, dialect.kind, index_key, out.work_key)
        raise
    client.execute_command("UNLINK", out.work_key)
    dialect.after(client, tag, index_key)
    out.complete = True
    return out


def _scan(client: redis.Redis, kind: str, key: bytes, cursor: int,
          count: int) -> tuple[int, list[tuple[bytes, bytes | None]]]:
    if kind == "zset":
        raw_cursor, raw = client.execute_command("ZSCAN", key, cursor, "COUNT", count)
        return int(raw_cursor), zset_pairs(raw)
    raw_cursor, members = client.execute_command("SSCAN", key, cursor, "COUNT", count)
    return int(raw_cursor), [(m, None) for m in members]


def zset_pairs(raw: Sequence[Any]) -> list[tuple[bytes, bytes | None]]:
    """(member, score) pairs of a ZSCAN reply: redis-py pairs them up (scores as floats) on
    some versions and protocols, and returns the flat RESP list on others."""
    items = list(raw)
    if items and isinstance(items[0], list | tuple):
        return [(m, str(s).encode()) for m, s in items]
    return list(zip(items[::2], items[1::2], strict=True))


def _restore(client: redis.Redis, kind: str, index_key: bytes, work: bytes) -> None:
    """Put the work index back under the live name, merging with a fresh index if writers
    made one; members already deleted stay listed, harmlessly (they are already gone)."""
    if client.execute_command("RENAMENX", work, index_key):
        return
    ttls = [int(client.execute_command("PTTL", k)) for k in (index_key, work)]
    if kind == "zset":
        client.execute_command("ZUNIONSTORE", index_key, 2, index_key, work,
                               "AGGREGATE", "MAX")
    else:
        client.execute_command("SUNIONSTORE", index_key, index_key, work)
    if all(t > 0 for t in ttls):  # the merged index lives as long as the longer of the two
        client.execute_command("PEXPIRE", index_key, max(ttls))
    client.execute_command("UNLINK", work)


def _restore_quietly(client: redis.Redis, kind: str, index_key: bytes, work: bytes) -> None:
    # The caller reports the original error, and the work key's name in its notes.
    with contextlib.suppress(redis.RedisError, OSError):
        _restore(client, kind, index_key, work)
