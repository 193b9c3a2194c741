"""Provides LocalLRU: the demo application's in-process cache, bounded in bytes, with TTLs and tags.

The first layer of the demo's two-layer cache: a process-level cache for the hottest data, in
front of Redis. It counts what the `cachetop` metrics convention exposes (hits, misses,
evictions, expirations, entries, bytes) so the endpoint can publish them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

ENTRY_OVERHEAD_BYTES = 100  # dict slot, tuple, key object: a rough per-entry cost


@dataclass(frozen=True, slots=True)
class LruCounts:
    """One consistent reading of the cache's counters and gauges."""

    hits: int
    misses: int
    evictions: int
    expirations: int
    entries: int
    memory_bytes: int
    max_memory_bytes: int


class LocalLRU:
    """A thread-safe LRU bounded by `max_bytes`; expired entries count as misses."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, size in bytes, expires at, tags)
        self._entries: OrderedDict[str, tuple[bytes, int, float, tuple[str, ...]]] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self._bytes = 0
        self._hits = self._misses = self._evictions = self._expirations = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            if entry[2] <= self._clock():
                self._drop(key)
                self._expirations += 1
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[0]

    def set(self, key: str, value: bytes, ttl_s: float, tags: Iterable[str] = ()) -> None:
        size = len(key) + len(value) + ENTRY_OVERHEAD_BYTES
        if size > self.max_bytes:
            return
        tags = tuple(tags)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (value, size, self._clock() + ttl_s, tags)
            self._bytes += size
            for tag in tags:
                self._by_tag.setdefault(tag, set()).add(key)
            self._make_room()

    def delete(self, key: str) -> bool:
        with self._lock:
            if key not in self._entries:
                return False
            self._drop(key)
            return True

    def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Drop every entry carrying one of the tags; returns how many were dropped."""
        dropped = 0
        with self._lock:
            for tag in tags:
                for key in list(self._by_tag.get(tag, ())):
                    if key in self._entries:
                        self._drop(key)
                        dropped += 1
        return dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_tag.clear()
            self._bytes = 0

    def counts(self) -> LruCounts:
        with self._lock:
            return LruCounts(self._hits, self._misses, self._evictions, self._expirations,
                             len(self._entries), self._bytes, self.max_bytes)

    def _make_room(self) -> None:
        """Pop least recently used entries until the bytes fit; an expired one is an
        expiration, a live one an eviction."""
        now = self._clock()
        while self._bytes > self.max_bytes and self._entries:
            key, entry = next(iter(self._entries.items()))
            self._drop(key)
            if entry[2] <= now:
                self._expirations += 1
            else:
                self._evictions += 1

    def _drop(self, key: str) -> None:
        _value, size, _expires, tags = self._entries.pop(key)
        self._bytes -= size
        for tag in tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
