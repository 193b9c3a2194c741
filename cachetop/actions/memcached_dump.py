"""Provides metadump(): the items memcached lists with `lru_crawler metadump all`, as bytes keys.

Memcached has no SCAN: the LRU crawler's metadump is the only way to list keys. It is a
point-in-time walk (items written after it passes are not listed), it cannot be pipelined, and
`memcached -X` disables it with an `ERROR metadump not allowed` line, which pymemcache's
raw_command would wait on until its timeout; so replies are read here line by line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from cachetop.actions.connect import McConnection, McError
from cachetop.actions.plan import ActionError


class MetadumpUnavailableError(ActionError):
    """The server refuses to list its keys (`-X`, crawler disabled or busy)."""


@dataclass(frozen=True, slots=True)
class MetaItem:
    """One metadump line: `exp` is a unix time (-1: never), `size` the item's bytes."""

    key: bytes
    exp: int
    last_access: int
    size: int


def parse_metadump_line(line: bytes) -> MetaItem | None:
    """Parse `key=<url-encoded> exp=.. la=.. cas=.. fetch=.. cls=.. size=..`; None if not one."""
    fields = dict(part.split(b"=", 1) for part in line.split(b" ") if b"=" in part)
    if b"key" not in fields:
        return None
    try:
        return MetaItem(key=unquote_to_bytes(fields[b"key"]), exp=int(fields.get(b"exp", -1)),
                        last_access=int(fields.get(b"la", 0)), size=int(fields.get(b"size", 0)))
    except ValueError:
        return None


def metadump(conn: McConnection, budget_s: float) -> Iterator[MetaItem]:
    """Yield every item the crawler lists, within `budget_s` in total.

    Raises:
        MetadumpUnavailableError: metadump is disabled (-X) or the crawler is busy.
        TimeoutError: the walk took longer than `budget_s`.
    """
    deadline = time.monotonic() + budget_s
    conn.send(b"lru_crawler metadump all\r\n")
    while True:
        line = conn.read_line(deadline)
        if line == b"END":
            return
        if line.startswith(b"key="):
            item = parse_metadump_line(line)
            if item is not None:
                yield item
            continue
        raise MetadumpUnavailableError(_unavailable(line))


def _unavailable(line: bytes) -> str:
    text = line.decode("utf-8", "backslashreplace")[:200]
    if b"not allowed" in line:
        return (f"memcached refuses to list keys ({text}): it runs with -X, so a pattern "
                "flush is impossible; delete single keys, or flush_all")
    if line.startswith(b"BUSY"):
        return f"the memcached LRU crawler is busy ({text}); try again in a moment"
    return f"memcached cannot list keys: {text}"


def server_time(conn: McConnection) -> tuple[int, str]:
    """(server unix time, pid) from `stats`: TTLs are relative to the server's clock."""
    stats = conn.stats()
    try:
        return int(stats.get("time", "0")), stats.get("pid", "")
    except ValueError:
        raise McError("memcached stats has no usable time") from None
