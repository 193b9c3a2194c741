"""Provides KeyTally: the running totals of one key analysis, and the KeysReport they give.

Rows come in pages, one Row per key: the key and what the server said about it (type code,
encoding, MEMORY USAGE, PTTL, element count, LFU counter; -1 where not read). Full mode
reports the sums as exact figures; sampled mode scales them to the keyspace with the margins
of estimate.py. Pure: no I/O, tested without a server.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping
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
from cachetop.keys.prefixes import HOUR_MS, MINUTE_MS, TTL_CLASSES, prefix_of

# Type codes of the analysis script (redis_script.py); 0 is a key that is gone.
TYPE_NAMES = ("gone", "string", "list", "set", "zset", "hash", "stream", "other", "item")
ITEM = 8  # a memcached item
SIZE_UNITS = {"string": "bytes"}
MAX_PREFIXES = 50_000
OVERFLOW = b""  # the row of keys whose prefix came after MAX_PREFIXES (no prefix is empty)
# One key: (key, type code, encoding, memory bytes, pttl ms, elements, lfu counter).
Row = tuple[bytes, int, bytes, int, int, int, int]
_Entry = TypeVar("_Entry", bound=tuple[Any, ...])


class KeyTally:
    """Mutable totals; lives in the worker thread only (KeysReport is the copy that leaves)."""

    def __init__(self, *, delimiter: bytes = b":", depth: int = 1, top: int = 10,
                 max_prefixes: int = MAX_PREFIXES, memory: bool = True) -> None:
        """`memory`: rows carry MEMORY USAGE (else -1 each, and the report has no bytes)."""
        self.delimiter, self.depth, self.top = delimiter, depth, top
        self.max_prefixes = max_prefixes
        # prefix -> [keys, memory, memory², ttl none, < 1 min, < 1 h, longer]
        self.prefixes: dict[bytes | None, list[int]] = {}
        # (type code, encoding) -> [keys, memory, memory², the type's _TypeState]
        self.encodings: dict[tuple[int, bytes], list[Any]] = {}
        self.type_states: dict[int, _TypeState] = {}
        self.biggest: list[tuple[int, int, Row]] = []
        self.hot: list[tuple[int, int, Row]] = []
        self.seen: set[int] = set()
        self.keys = 0  # distinct keys read that existed
        self.gone = 0  # keys SCAN listed that were gone when read
        self.duplicates = 0  # keys read twice (SCAN after a table shrink, overlapping pages)
        self.overflow_keys = 0
        self.memory_read = memory
        self._seq = itertools.count()

    def add(self, rows: Iterable[Row]) -> None:
        """Count one page of rows. The loop is inlined (it runs once per key of a keyspace):
        one dict lookup for the prefix, one for the (type, encoding), whose entry carries its
        type's state (biggest keys, most elements, sizes) so the type needs no lookup."""
        prefixes, delimiter, depth = self.prefixes, self.delimiter, self.depth
        step = len(delimiter)
        seen, top, seq = self.seen, self.top, self._seq
        biggest = self.biggest
        floor = biggest[0][0] if len(biggest) >= top else -1
        for row in rows:
            key, code, encoding, memory, pttl, elements, freq = row
            fingerprint = hash(key)
            if fingerprint in seen:
                self.duplicates += 1
                continue
            seen.add(fingerprint)
            if depth == 1:  # prefixes.prefix_of, inlined
                at = key.find(delimiter)
                prefix = key[:at + step] if at >= 0 else None
            else:
                prefix = prefix_of(key, delimiter, depth)
            stat = prefixes.get(prefix)
            if stat is None:
                stat = self._new_prefix(prefix)
            squared = memory * memory if memory > 0 else 0
            stat[0] += 1
            stat[1] += memory
            stat[2] += squared
            stat[3 if pttl < 0 else 4 if pttl < MINUTE_MS else 5 if pttl < HOUR_MS else 6] += 1
            enc = self.encodings.get((code, encoding))
            if enc is None:
                enc = self._new_encoding(code, encoding)
            enc[0] += 1
            enc[1] += memory
            enc[2] += squared
            state: _TypeState = enc[3]
            if memory > floor:
                _keep_top(biggest, (memory, next(seq), row), top)
                floor = biggest[0][0] if len(biggest) >= top else -1
            if memory > state.floor:
                _keep_top(state.biggest, (memory, next(seq), row), top)
                state.floor = state.biggest[0][0] if len(state.biggest) >= top else -1
            if elements >= 0:
                if elements > state.most_elements:
                    state.most_elements, state.most = elements, row
                bucket = 1 << (elements.bit_length() - 1) if elements > 0 else 0
                state.sizes[bucket] = state.sizes.get(bucket, 0) + 1
            if freq >= 0:
                _keep_top(self.hot, (freq, next(seq), row), top)
        self.keys = len(seen)

    def _new_encoding(self, code: int, encoding: bytes) -> list[Any]:
        state = self.type_states.get(code)
        if state is None:
            state = self.type_states[code] = _TypeState()
        enc = self.encodings[(code, encoding)] = [0, 0, 0, state]
        return enc

    def _new_prefix(self, prefix: bytes | None) -> list[int]:
        if len(self.prefixes) >= self.max_prefixes:
            prefix = OVERFLOW
            self.overflow_keys += 1  # counted per key: the overflow row may exist already
            stat = self.prefixes.get(OVERFLOW)
            if stat is not None:
                return stat
        stat = self.prefixes[prefix] = [0, 0, 0, 0, 0, 0, 0]
        return stat

    # -- the report ---------------------------------------------------------------------------

    def report(self, *, target: str, kind: str, db: int | None, mode: Mode, status: Status,
               keys_total: int, elapsed_s: float, progress: float,
               hot: tuple[HotKey, ...] | None = None, hot_unavailable: str | None = None,
               hot_source: str | None = None, sizes: SizeDistribution | None = None,
               notes: Iterable[str] = (), error: str | None = None) -> KeysReport:
        """The figures so far. Sampled: scaled to `keys_total` with 95 % margins."""
        scale = _Scale(mode, self.keys, keys_total)
        if hot is None and self.hot:
            hot = tuple(HotKey(row[0], freq, "lfu")
                        for freq, _, row in sorted(self.hot, reverse=True))
            hot_source = hot_source or ("OBJECT FREQ of every key" if mode == "full"
                                        else f"OBJECT FREQ of the {self.keys} sampled keys")
        memory = None
        if self.memory_read:
            memory = scale.total(sum(e[1] for e in self.encodings.values()),
                                 sum(e[2] for e in self.encodings.values()))
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
        totals: dict[int, list[int]] = {}
        for (code, _), e in self.encodings.items():
            total = totals.setdefault(code, [0, 0, 0])
            for i in range(3):
                total[i] += e[i]
        rows = []
        for code, t in totals.items():
            state = self.type_states[code]
            rows.append(TypeRow(
                type=TYPE_NAMES[code], keys=scale.keys(t[0]),
                memory_bytes=scale.total(t[1], t[2]) if self.memory_read else None,
                biggest=tuple(_big(e) for e in sorted(state.biggest, reverse=True)),
                most_elements=(_big((state.most_elements, 0, state.most))
                               if state.most is not None else None)))
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
        by_type = {TYPE_NAMES[code]: {b: scale.count(n) for b, n in sorted(state.sizes.items())}
                   for code, state in self.type_states.items() if state.sizes}
        if not by_type:
            return None
        units = {name: SIZE_UNITS.get(name, "items") for name in by_type}
        source = "every key (scan)" if mode == "full" else "the sample, scaled to the keyspace"
        return SizeDistribution(source, by_type, units)


class _TypeState:
    """One type's biggest keys (a min-heap and its floor), key with the most elements, and
    element-count histogram."""

    __slots__ = ("biggest", "floor", "most", "most_elements", "sizes")

    def __init__(self) -> None:
        self.biggest: list[tuple[int, int, Row]] = []
        self.floor = -1
        self.most: Row | None = None
        self.most_elements = -1
        self.sizes: dict[int, int] = {}


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


def _big(entry: tuple[int, int, Row]) -> BigKey:
    key, code, encoding, memory, pttl, elements, _ = entry[2]
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
