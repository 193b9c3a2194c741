"""Provides the frozen results of a key analysis: KeysReport and its rows, and KeysProgress.

They cross from the worker thread to the screen, so they are immutable. Keys and prefixes are
the server's raw bytes; every view escapes them (text_safety) where it shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["sampled", "full"]
Status = Literal["running", "done", "cancelled", "failed"]


@dataclass(frozen=True, slots=True)
class Figure:
    """A count or a byte total: exact (margin None) or an estimate with its 95 % margin."""

    value: float
    margin: float | None = None

    @property
    def exact(self) -> bool:
        return self.margin is None


@dataclass(frozen=True, slots=True)
class PrefixRow:
    """One prefix (None: keys without the delimiter) and what its keys hold."""

    prefix: bytes | None
    keys: Figure
    memory_bytes: Figure | None
    ttl: Mapping[str, float]  # TTL class -> keys (scaled to the keyspace when sampled)
    seen: int  # keys of this prefix actually read
    # memcached only: interval figures from `stats detail dump`
    hit_ratio: float | None = None
    gets_per_s: float | None = None
    sets_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class BigKey:
    key: bytes
    type: str
    memory_bytes: int | None
    elements: int | None  # bytes for a string, members/fields/items otherwise
    ttl_ms: int  # -1: no TTL
    encoding: str


@dataclass(frozen=True, slots=True)
class TypeRow:
    """One key type: its share, its biggest keys by memory, its key with the most elements."""

    type: str
    keys: Figure
    memory_bytes: Figure | None
    biggest: tuple[BigKey, ...]
    most_elements: BigKey | None


@dataclass(frozen=True, slots=True)
class EncodingRow:
    type: str
    encoding: str
    keys: Figure
    memory_bytes: Figure | None


@dataclass(frozen=True, slots=True)
class HotKey:
    """A hot key and its measure: `lfu` (OBJECT FREQ counter, 0-255, logarithmic),
    `cpu_us` or `net_bytes` (HOTKEYS, Redis 8.6)."""

    key: bytes
    score: float
    measure: str


@dataclass(frozen=True, slots=True)
class SizeDistribution:
    """Keys per power-of-two size bucket (lower bound -> keys), per type; `source` says
    whether the server counted them (INFO KEYSIZES) or the scan did."""

    source: str
    by_type: Mapping[str, Mapping[int, float]]
    unit: Mapping[str, str]  # type -> "bytes" | "items"


@dataclass(frozen=True, slots=True)
class KeysReport:
    target: str
    kind: str
    db: int | None
    mode: Mode
    status: Status
    keys_scanned: int  # distinct keys read
    keys_total: int  # DBSIZE (Redis) or curr_items (memcached) when the analysis started
    delimiter: bytes
    depth: int
    prefixes: tuple[PrefixRow, ...]  # by memory (or keys), largest first
    overflow_keys: int  # keys whose prefix came after the tracking limit (in the b"" row)
    biggest: tuple[BigKey, ...]
    types: tuple[TypeRow, ...]
    encodings: tuple[EncodingRow, ...]
    memory_bytes: Figure | None
    sizes: SizeDistribution | None
    hot: tuple[HotKey, ...] | None
    hot_unavailable: str | None
    hot_source: str | None
    elapsed_s: float
    progress: float  # 0..1
    confidence: float | None  # 0.95 for estimates, None when exact
    unseen_bound: int | None  # sampled: a kind of key rarer than this may be unseen
    notes: tuple[str, ...] = ()
    error: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)  # memcached: stats detail state

    @property
    def keys_per_s(self) -> float:
        return self.keys_scanned / self.elapsed_s if self.elapsed_s > 0 else 0.0
