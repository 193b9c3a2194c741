"""Provides the frame codec: a fleet's JSON-contract figures at one moment as compact bytes.

What is stored is what `--batch --json` prints (snapshot_json), so a replay prints the same
document. Per frame, the numbers of every target go column by column as float64 (None as one
NaN pattern; JSON never holds NaN), XORed with the previous frame's (a figure that did not
change becomes zero bytes) and byte-shuffled (all first bytes, then all second bytes...: the
high bytes of slowly moving figures are runs of zeros), then zlib. The text fields (status,
error, role, version...) change rarely: a frame carries only the targets whose text differs
from the keyframe's. Every frame is encoded against the last keyframe (not the previous
frame), so a reader decodes two frames to show any moment: the keyframe at or before it, then
that frame.

zlib rather than zstd: stdlib, and on these frames zstd level 3 wrote the same bytes (1.00x)
and level 19 0.96x, lzma 0.94x at 4x zlib's CPU (bench/README.md, "record.py").
"""

from __future__ import annotations

import datetime as dt
import functools
import marshal
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Numeric fields of a target document, by path; ints print as ints.
NUMERIC: tuple[tuple[str, ...], ...] = (
    ("ops_per_sec",), ("hit_ratio",), ("lifetime_hit_ratio",), ("evictions_per_sec",),
    ("expirations_per_sec",), ("memory_used_bytes",), ("memory_max_bytes",), ("connections",),
    ("keys",),
    ("latency_ms", "server", "p50"), ("latency_ms", "server", "p95"),
    ("latency_ms", "server", "p99"),
    ("latency_ms", "probe", "p50"), ("latency_ms", "probe", "p95"),
    ("latency_ms", "probe", "p99"), ("status_since",), ("last_success",),
)
TIMES = frozenset({"status_since", "last_success"})  # ISO seconds in JSON, epoch here
INTEGER = frozenset({"memory_used_bytes", "memory_max_bytes", "connections", "keys"})
# Text (and everything else) of a target document, stored when it changes.
TEXT = ("status", "error", "role", "version", "server_latency_source", "degraded",
        "tls_insecure", "caches", "caches_total", "caches_cut", "group")
IDENTITY = ("name", "kind", "address")
_NONE_BITS = 0x7FF8_DEAD_5EED_0000  # float64 mode: a NaN pattern JSON never holds
_NONE_Q = -(2 ** 62)  # decimal mode
_POW = [10.0 ** k for k in range(8)]
_F64 = struct.Struct("<d")
LEVEL = 6
FLOAT, DECIMAL = 0, 1
Column = tuple[int, list[int]]  # (mode, one int per target)


@functools.lru_cache(maxsize=4096)
def _epoch(iso: str) -> float:
    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


@functools.lru_cache(maxsize=4096)
def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        value = value[key]
    return value


def _decimal(values: Sequence[float | None]) -> list[int] | None:
    """Each value as m * 8 + k meaning m / 10**k exactly, or None when one is not such a
    short decimal (a rate divided by a jittered interval): latency (3 digits), byte counts,
    keys and times are; their differences from one frame to the next are small integers."""
    out = []
    for v in values:
        if v is None:
            out.append(_NONE_Q)
            continue
        for k in range(8):
            m = round(v * _POW[k])
            if m / _POW[k] == v:
                break
        else:
            return None
        if abs(m) >= 2 ** 58:
            return None
        out.append(m * 8 + k)
    return out


def _float_bits(values: Sequence[float | None]) -> list[int]:
    unpack = struct.Struct("<q").unpack
    return [_NONE_BITS if v is None else unpack(_F64.pack(v))[0] for v in values]


def columns(docs: Sequence[Mapping[str, Any]]) -> list[Column]:
    """Every numeric figure of every target, column by column, in the cheaper mode."""
    out: list[Column] = []
    for path in NUMERIC:
        timed = path[0] in TIMES
        values: list[float | None] = []
        for doc in docs:
            value = _get(doc, path)
            values.append(None if value is None else _epoch(value) if timed else float(value))
        decimal = _decimal(values)
        out.append((DECIMAL, decimal) if decimal is not None else (FLOAT, _float_bits(values)))
    return out


def _values(column: Column) -> list[float | int | None]:
    mode, ints = column
    if mode == DECIMAL:
        return [None if q == _NONE_Q else (q >> 3) / _POW[q & 7] for q in ints]
    unpack = struct.Struct("<d").unpack
    pack = struct.Struct("<q").pack
    return [None if b == _NONE_BITS else unpack(pack(b))[0] for b in ints]


def _body(cols: Sequence[Column], prev: Sequence[Column] | None) -> bytes:
    """Mode bytes, then each column as 8-byte lanes: a float column XORed with the previous
    frame's, a decimal one as the zigzagged difference (small integers either way)."""
    modes = bytes(mode for mode, _ in cols)
    lanes = []
    for c, (mode, ints) in enumerate(cols):
        old = prev[c] if prev is not None and prev[c][0] == mode and len(
            prev[c][1]) == len(ints) else None
        if old is None:
            lanes.append(struct.pack(f"<{len(ints)}q", *ints))
        elif mode == FLOAT:
            lanes.append(struct.pack(f"<{len(ints)}q", *(a ^ b for a, b in zip(ints, old[1],
                                                                             strict=True))))
        else:
            lanes.append(struct.pack(f"<{len(ints)}Q", *(_zigzag(a - b) for a, b in zip(
                ints, old[1], strict=True))))
    return modes + shuffle(b"".join(lanes))


def _unbody(data: bytes, count: int, prev: Sequence[Column] | None) -> list[Column]:
    ncols = len(NUMERIC)
    modes, lanes = data[:ncols], unshuffle(data[ncols:])
    out: list[Column] = []
    for c in range(ncols):
        mode = modes[c]
        raw = lanes[c * count * 8:(c + 1) * count * 8]
        old = prev[c] if prev is not None and prev[c][0] == mode and len(
            prev[c][1]) == count else None
        if old is None:
            ints = list(struct.unpack(f"<{count}q", raw))
        elif mode == FLOAT:
            ints = [a ^ b for a, b in zip(struct.unpack(f"<{count}q", raw), old[1],
                                          strict=True)]
        else:
            ints = [_unzigzag(d) + b for d, b in zip(struct.unpack(f"<{count}Q", raw), old[1],
                                                     strict=True)]
        out.append((mode, ints))
    return out


def _zigzag(n: int) -> int:
    return ((n << 1) ^ (n >> 63)) & 0xFFFF_FFFF_FFFF_FFFF


def _unzigzag(z: int) -> int:
    return (z >> 1) ^ -(z & 1)


def shuffle(data: bytes) -> bytes:
    return b"".join(data[i::8] for i in range(8))


def unshuffle(data: bytes) -> bytes:
    n = len(data) // 8
    out = bytearray(len(data))
    for i in range(8):
        out[i::8] = data[i * n:(i + 1) * n]
    return bytes(out)


ABSENT = "\x00absent"  # a TEXT key the document does not have (a cluster node's caches)
_KNOWN = frozenset({*TEXT, *IDENTITY, *(p[0] for p in NUMERIC)})


def text_of(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    """The non-numeric fields, and any key this codec does not know (a cluster's `topology`
    and `nodes`) in a dict at the end, so a document of a newer shape still round-trips."""
    extra = {k: _plain(v) for k, v in doc.items() if k not in _KNOWN}
    return (*(_plain(doc.get(k, ABSENT)) for k in TEXT), extra or None)


def _plain(value: Any) -> Any:
    """Lists to tuples, recursively: marshal then round-trips and equality is by value."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


@dataclass
class FrameState:
    """The last keyframe, which every frame until the next one is encoded against (writer)
    or decoded with (reader), and the frame decoded last (reader)."""

    base_numbers: list[Column] = field(default_factory=list)
    base_texts: list[tuple[Any, ...]] = field(default_factory=list)
    numbers: list[Column] = field(default_factory=list)
    texts: list[tuple[Any, ...]] = field(default_factory=list)


def encode(head: Mapping[str, Any], docs: Sequence[Mapping[str, Any]], state: FrameState,
           key: bool) -> bytes:
    """One frame: `head` (the document's time, interval and fleet block) and the targets.
    `state` is updated to this frame."""
    numbers = columns(docs)
    texts = [text_of(d) for d in docs]
    if key or len(texts) != len(state.base_texts):
        changed: dict[int, tuple[Any, ...]] | list[tuple[Any, ...]] = texts
        body = _body(numbers, None)
        state.base_numbers, state.base_texts = numbers, texts
    else:
        changed = {i: t for i, (t, old) in enumerate(zip(texts, state.base_texts, strict=True))
                   if t != old}
        body = _body(numbers, state.base_numbers)
    state.numbers, state.texts = numbers, texts
    meta = marshal.dumps((_plain(dict(head)), len(docs), changed))
    return struct.pack("<I", len(meta)) + zlib.compress(meta + body, LEVEL)


def decode(blob: bytes, state: FrameState, key: bool) -> tuple[dict[str, Any], int]:
    """Apply one frame onto `state`; returns its head and target count."""
    (meta_len,) = struct.unpack_from("<I", blob)
    raw = zlib.decompress(blob[4:])
    head, count, changed = marshal.loads(raw[:meta_len])
    if key or isinstance(changed, list):
        state.numbers = state.base_numbers = _unbody(raw[meta_len:], count, None)
        state.texts = state.base_texts = list(changed)
    else:
        state.numbers = _unbody(raw[meta_len:], count, state.base_numbers)
        texts = list(state.base_texts)
        for index, text in changed.items():
            texts[index] = text
        state.texts = texts
    return _json(head), count


def _final(path: tuple[str, ...], values: list[float | int | None]) -> list[Any]:
    """A column's values as the JSON document has them: ints, ISO times or floats."""
    if path[0] in INTEGER:
        return [None if v is None else int(v) for v in values]
    if path[0] in TIMES:
        return [None if v is None else _iso(float(v)) for v in values]
    return values


_AT = {".".join(path): c for c, path in enumerate(NUMERIC)}
_PLAIN_FIGURES = ("ops_per_sec", "hit_ratio", "lifetime_hit_ratio", "evictions_per_sec",
                  "expirations_per_sec", "memory_used_bytes", "memory_max_bytes", "connections",
                  "keys")
_TEXT_AT = {k: i for i, k in enumerate(TEXT)}


def documents(state: FrameState, identity: Sequence[Sequence[str]],
              only: int | None = None) -> list[dict[str, Any]]:
    """The target documents of the decoded state, in snapshot_json's key order (`only`: the
    one of that index). Built column by column: at 1,000 targets this is most of a seek."""
    count = len(identity)
    rows = range(count) if only is None else range(only, only + 1)
    cols = [_final(path, _values((mode, ints[rows.start:rows.stop])))
            for path, (mode, ints) in zip(NUMERIC, state.numbers, strict=True)]
    plain = [(name, cols[_AT[name]]) for name in _PLAIN_FIGURES]
    lat = [(src, [(p, cols[_AT[f"latency_ms.{src}.{p}"]]) for p in ("p50", "p95", "p99")])
           for src in ("server", "probe")]
    since, success = cols[_AT["status_since"]], cols[_AT["last_success"]]
    t = _TEXT_AT
    docs = []
    for j, i in enumerate(rows):
        text = state.texts[i]
        name, kind, address = identity[i]
        doc: dict[str, Any] = {
            "name": name, "kind": kind, "address": address, "group": text[t["group"]],
            "status": text[t["status"]], "error": text[t["error"]], "role": text[t["role"]],
            "version": text[t["version"]]}
        for key, column in plain:
            doc[key] = column[j]
        doc["latency_ms"] = {src: {p: column[j] for p, column in ps} for src, ps in lat}
        doc["server_latency_source"] = text[t["server_latency_source"]]
        doc["degraded"] = list(text[t["degraded"]])
        doc["tls_insecure"] = text[t["tls_insecure"]]
        doc["status_since"] = since[j]
        doc["last_success"] = success[j]
        caches = text[t["caches"]]
        if caches != ABSENT:
            doc["caches"] = _json(caches) if caches else []
        for key in ("caches_total", "caches_cut"):
            if text[t[key]] != ABSENT:
                doc[key] = text[t[key]]
        extra = text[-1]
        if extra:
            doc.update(_json(extra))
        docs.append(doc)
    return docs
