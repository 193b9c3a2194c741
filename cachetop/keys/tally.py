"""Provides KeyTally: the running totals of one key analysis, and the KeysReport they give.

Rows come in pages: the keys SCAN returned and, per key, what the server said about it
(RowFacts: type code, encoding, MEMORY USAGE, PTTL, element count, LFU counter; -1 where not
read). Full mode reports the sums as exact figures; sampled mode scales them to the keyspace
with the margins of estimate.py. Pure: no I/O, tested without a server.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from cachetop.keys.estimate import Z_95, total_estimate, unseen_bound
from cachetop.keys.model import (
    BigKey,
    EncodingRow,
    Figure,
    HotKey,
    KeysReport,
    Mode,
    PrefixRow,
    SizeDistribution,
    Status,
    TypeRow,
)
from cachetop.keys.prefixes import TTL_CLASSES, prefix_of, size_bucket, ttl_class

# Type codes of the analysis script (redis_script.py); 0 is a key that is gone.
TYPE_NAMES = ("gone", "string", "list", "set", "zset", "hash", "stream", "other")
SIZE_UNITS = {"string": "bytes"}
MAX_PREFIXES = 50_000
OVERFLOW = b""  # the row of keys whose prefix came after MAX_PREFIXES (no prefix is empty)
# One key's facts: (type code, encoding, memory bytes, pttl ms, elements, lfu counter).
RowFacts = tuple[int, bytes, int, int, int, int]
_Entry = TypeVar("_Entry", bound=tuple[Any, ...])


class KeyTally:
    """Mutable totals; lives in the worker thread only (KeysReport is the copy that leaves)."""

    def __init__(self, *, delimiter: bytes = b":", depth: int = 1, top: int = 10,
                 max_prefixes: int = MAX_PREFIXES) -> None:
        self.delimiter, self.depth, self.top = delimiter, depth, top
        self.max_prefixes = max_prefixes
        # prefix -> [keys, memory, memory², ttl none, < 1 min, < 1 h, longer]
        self.prefixes: dict[bytes | None, list[int]] = {}
        self.types: dict[int, list[int]] = {}  # type code -> [keys, memory, memory²]
        self.encodings: dict[tuple[int, bytes], list[int]] = {}
        self.sizes: dict[int, dict[int, int]] = {}  # type code -> size bucket -> keys
        self.biggest: list[tuple[int, int, bytes, RowFacts]] = []
        self.type_biggest: dict[int, list[tuple[int, int, bytes, RowFacts]]] = {}
        self.type_most: dict[int, tuple[int, bytes, RowFacts]] = {}
        self.hot: list[tuple[int, int, bytes]] = []
        self.seen: set[int] = set()
        self.keys = 0  # distinct keys read that existed
        self.gone = 0  # keys SCAN listed that were gone when read
        self.duplicates = 0  # keys read twice (SCAN after a table shrink, overlapping pages)
        self.overflow_keys = 0
        self.memory_read = False
        self.elements_read = False
        self.freq_read = False
        self._seq = itertools.count()

    def add(self, keys: Sequence[bytes], facts: Iterable[RowFacts]) -> None:
        """Count one page: `facts` holds one RowFacts per key of `keys`, in order."""
        prefixes, delimiter, depth = self.prefixes, self.delimiter, self.depth
        seen = self.seen
        for key, row in zip(keys, facts, strict=True):
            code = row[0]
            if code == 0:
                self.gone += 1
                continue
            fingerprint = hash(key)
            if fingerprint in seen:
                self.duplicates += 1
                continue
            seen.add(fingerprint)
            self.keys += 1
            memory = row[2]
            squared = memory * memory if memory > 0 else 0
            prefix = prefix_of(key, delimiter, depth)
            stat = prefixes.get(prefix)
            if stat is None:
                if len(prefixes) >= self.max_prefixes:
                    self.overflow_keys += 1
                    prefix = OVERFLOW
                    stat = prefixes.get(OVERFLOW)
                if stat is None:
                    stat = prefixes[prefix] = [0, 0, 0, 0, 0, 0, 0]
            stat[0] += 1
            if memory >= 0:
                stat[1] += memory
                stat[2] += squared
            stat[3 + ttl_class(row[3])] += 1
            self._by_type(key, row, squared)

    def _by_type(self, key: bytes, row: RowFacts, squared: int) -> None:
        code, encoding, memory, _, elements, freq = row
        kind = self.types.get(code)
        if kind is None:
            kind = self.types[code] = [0, 0, 0]
        kind[0] += 1
        enc = self.encodings.get((code, encoding))
        if enc is None:
            enc = self.encodings[(code, encoding)] = [0, 0, 0]
        enc[0] += 1
        if memory >= 0:
            self.memory_read = True
            kind[1] += memory
            kind[2] += squared
            enc[1] += memory
            enc[2] += squared
            entry = (memory, next(self._seq), key, row)
            _keep_top(self.biggest, entry, self.top)
            _keep_top(self.type_biggest.setdefault(code, []), entry, self.top)
        if elements >= 0:
            self.elements_read = True
            most = self.type_most.get(code)
            if most is None or elements > most[0]:
                self.type_most[code] = (elements, key, row)
            buckets = self.sizes.setdefault(code, {})
            bucket = size_bucket(elements)
            buckets[bucket] = buckets.get(bucket, 0) + 1
        if freq >= 0:
            self.freq_read = True
            _keep_top(self.hot, (freq, next(self._seq), key), self.top)

    # -- the report ---------------------------------------------------------------------------

    def report(self, *, target: str, kind: str, db: int | None, mode: Mode, status: Status,
               keys_total: int, elapsed_s: float, progress: float,
               hot: tuple[HotKey, ...] | None = None, hot_unavailable: str | None = None,
               hot_source: str | None = None, sizes: SizeDistribution | None = None,
               notes: Iterable[str] = (), error: str | None = None) -> KeysReport:
        """The figures so far. Sampled: scaled to `keys_total` with 95 % margins."""
        scale = _Scale(mode, self.keys, keys_total)
        if hot is None and self.freq_read:
            hot = tuple(HotKey(key, freq, "lfu")
                        for freq, _, key in sorted(self.hot, reverse=True))
            hot_source = hot_source or ("OBJECT FREQ of every key" if mode == "full"
                                        else f"OBJECT FREQ of the {self.keys} sampled keys")
        memory = None
        if self.memory_read:
            memory = scale.total(sum(t[1] for t in self.types.values()),
                                 sum(t[2] for t in self.types.values()))
        return KeysReport(
            target=target, kind=kind, db=db, mode=mode, status=status,
            keys_scanned=self.keys, keys_total=keys_total, delimiter=self.delimiter,
            depth=self.depth, prefixes=self._prefix_rows(scale),
            overflow_keys=self.overflow_keys,
            biggest=tuple(_big(entry) for entry in sorted(self.biggest, reverse=True)),
            types=self._type_rows(scale), encodings=self._encoding_rows(scale),
            memory_bytes=memory, sizes=sizes or self._sizes(scale, mode),
            hot=hot, hot_unavailable=hot_unavailable, hot_source=hot_source,
            elapsed_s=elapsed_s, progress=progress,
            confidence=None if scale.exact else 0.95,
            unseen_bound=None if scale.exact else unseen_bound(self.keys, keys_total),
            notes=tuple(notes), error=error)

    def _prefix_rows(self, scale: _Scale) -> tuple[PrefixRow, ...]:
        rows = []
        for prefix, s in self.prefixes.items():
            ttl = {name: scale.count(s[3 + i]) for i, name in enumerate(TTL_CLASSES)}
            rows.append(PrefixRow(
                prefix=prefix, keys=scale.keys(s[0]),
                memory_bytes=scale.total(s[1], s[2]) if self.memory_read else None,
                ttl=ttl, seen=s[0]))
        rows.sort(key=lambda r: (r.memory_bytes.value if r.memory_bytes else 0, r.keys.value),
                  reverse=True)
        return tuple(rows)

    def _type_rows(self, scale: _Scale) -> tuple[TypeRow, ...]:
        rows = []
        for code, t in self.types.items():
            most = self.type_most.get(code)
            rows.append(TypeRow(
                type=TYPE_NAMES[code], keys=scale.keys(t[0]),
                memory_bytes=scale.total(t[1], t[2]) if self.memory_read else None,
                biggest=tuple(_big(e) for e in sorted(self.type_biggest.get(code, []),
                                                      reverse=True)),
                most_elements=_big((most[0], 0, most[1], most[2])) if most else None))
        rows.sort(key=lambda r: (r.memory_bytes.value if r.memory_bytes else 0, r.keys.value),
                  reverse=True)
        return tuple(rows)

    def _encoding_rows(self, scale: _Scale) -> tuple[EncodingRow, ...]:
        rows = [EncodingRow(TYPE_NAMES[code], encoding.decode("ascii", "replace"),
                            scale.keys(e[0]),
                            scale.total(e[1], e[2]) if self.memory_read else None)
                for (code, encoding), e in self.encodings.items()]
        rows.sort(key=lambda r: r.keys.value, reverse=True)
        return tuple(rows)

    def _sizes(self, scale: _Scale, mode: Mode) -> SizeDistribution | None:
        if not self.sizes:
            return None
        by_type = {TYPE_NAMES[code]: {b: scale.count(n) for b, n in sorted(buckets.items())}
                   for code, buckets in self.sizes.items()}
        units = {name: SIZE_UNITS.get(name, "items") for name in by_type}
        source = "every key (scan)" if mode == "full" else "the sample, scaled to the keyspace"
        return SizeDistribution(source, by_type, units)


class _Scale:
    """Turns sample sums into figures: as they are (full), or scaled with margins."""

    def __init__(self, mode: Mode, n: int, population: int) -> None:
        self.exact = mode == "full"
        self.n, self.population = n, population

    def count(self, value: int) -> float:
        if self.exact or self.n <= 0:
            return float(value)
        return value * self.population / self.n

    def keys(self, count: int) -> Figure:
        # A key count is a total of 0/1 values: its squares are the count itself.
        return self.total(count, count)

    def total(self, value: int, squares: int) -> Figure:
        if self.exact:
            return Figure(float(value))
        estimate, margin = total_estimate(value, squares, self.n, self.population, Z_95)
        return Figure(estimate, margin)


def _keep_top(heap: list[_Entry], entry: _Entry, top: int) -> None:
    """Keep the `top` largest entries (by their first field) in a min-heap."""
    if len(heap) < top:
        heapq.heappush(heap, entry)
    elif entry[0] > heap[0][0]:
        heapq.heapreplace(heap, entry)


def _big(entry: tuple[int, int, bytes, RowFacts]) -> BigKey:
    _, _, key, (code, encoding, memory, pttl, elements, _) = entry
    return BigKey(key=key, type=TYPE_NAMES[code], memory_bytes=memory if memory >= 0 else None,
                  elements=elements if elements >= 0 else None, ttl_ms=pttl,
                  encoding=encoding.decode("ascii", "replace"))


def merge_notes(*groups: Iterable[str]) -> tuple[str, ...]:
    """Notes in order, each once."""
    return tuple(dict.fromkeys(note for group in groups for note in group))


def ttl_totals(rows: Iterable[PrefixRow]) -> Mapping[str, float]:
    out = dict.fromkeys(TTL_CLASSES, 0.0)
    for row in rows:
        for name, value in row.ttl.items():
            out[name] += value
    return out
