"""Provides the memcached tag dialect (cachetop): tags are version keys, invalidation is a bump.

Memcached has no sets, so nothing lists a tag's keys: a tagged value records its tags'
versions when written (cachetop.actions.tagging), and a reader treats it as a miss once a
version has moved. Invalidating is `incr cachetop:tagv:<tag>`, creating the key when it is
missing; the stale values age out by TTL or LRU. The preview says so instead of pretending to
count keys.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cachetop.actions.connect import McConnection, valid_memcached_key
from cachetop.actions.memcached_dump import metadump
from cachetop.actions.plan import ActionArgumentError, ActionError
from cachetop.actions.tag_dialects import TagIndex, tag_version_key

VERSION_PREFIX = tag_version_key(b"")
WALK_PAUSE_S = 0.02


def new_version() -> int:
    """A fresh version for a missing version key: time-based, so a key that was evicted and
    recreated never repeats a version some stale value recorded."""
    return time.time_ns() // 1000


def check_tag(tag: bytes) -> bytes:
    key = tag_version_key(tag)
    problem = valid_memcached_key(key)
    if problem:
        shown = tag.decode("utf-8", "backslashreplace")
        raise ActionArgumentError(f"tag '{shown}' cannot be a memcached key: {problem}")
    return key


def get_versions(conn: McConnection, keys: Sequence[bytes]) -> dict[bytes, int | None]:
    """Current value of each version key (None: missing, or not a number)."""
    found: dict[bytes, int | None] = dict.fromkeys(keys)
    if not keys:
        return found
    conn.send(b"get " + b" ".join(keys) + b"\r\n")
    while (line := conn.read_line()) != b"END":
        parts = line.split(b" ")
        if parts[0] != b"VALUE" or len(parts) < 4:
            raise ActionError(f"unexpected reply to get: {line[:100]!r}")
        value = conn.read_line()
        found[parts[1]] = int(value) if value.isdigit() else None
    return found


def bump(conn: McConnection, key: bytes) -> tuple[int | None, int]:
    """Move a version key on: (old version or None, new version). `incr`, or `add` a fresh
    version when missing; if another writer added it first, `incr` that one."""
    for _ in range(3):
        reply = conn.command(b"incr " + key + b" 1")
        if reply.isdigit():
            return int(reply) - 1, int(reply)
        version = b"%d" % new_version()
        conn.send(b"add " + key + b" 0 0 %d\r\n" % len(version) + version + b"\r\n")
        if conn.read_line() == b"STORED":
            return None, int(version)
    raise ActionError(f"could not bump the version key {key!r}")


def list_version_tags(conn: McConnection, limit: int) -> list[TagIndex]:
    """Version keys found by metadump. Two walks, united: the crawler can miss items that the
    LRU maintainer is moving between segments (recently read ones) in one walk."""
    found: set[bytes] = set()
    for walk in range(2):
        if walk:
            time.sleep(WALK_PAUSE_S)  # let the maintainer finish moving what it was moving
        found |= {item.key for item in metadump(conn, 60.0)
                  if item.key.startswith(VERSION_PREFIX)}
    keys = sorted(found)[:limit]
    versions = get_versions(conn, keys)
    return [TagIndex(k[len(VERSION_PREFIX):], k, "version", None,
                     detail=f"version {versions.get(k)}") for k in keys]
