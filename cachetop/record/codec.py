"""Provides the frame codec: a fleet's JSON-contract figures at one moment as compact bytes.

What is stored is what `--batch --json` prints (snapshot_json), so a replay prints the same
document. Per frame, the numbers of every target go column by column as float64 (None as one
NaN pattern; JSON never holds NaN), XORed with the previous frame's (a figure that did not
change becomes zero bytes) and byte-shuffled (all first bytes, then all second bytes...: the
high bytes of slowly moving figures are runs of zeros), then zlib. The text fields (status,
error, role, version...) change rarely: a frame carries only the targets whose text changed.
A keyframe XORs with nothing and carries every target's text, so a reader starts from the
nearest keyframe at or before the time it wants.

zlib rather than zstd: stdlib, and on these shuffled columns the difference measured in
bench/record.py does not pay for a dependency (bench/README.md).
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
_NONE = struct.unpack("<q", struct.pack("<d", float.fromhex("nan")))[0] ^ 0x5EED
_NONE_BYTES = struct.pack("<q", _NONE)
LEVEL = 6


def _get(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        value = value[key]
    return value


@functools.lru_cache(maxsize=4096)
def _epoch(iso: str) -> float:
    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


@functools.lru_cache(maxsize=4096)
def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def columns(docs: Sequence[Mapping[str, Any]]) -> bytes:
    """Every numeric figure of every target, column by column, as little-endian float64."""
    out = bytearray()
    pack = struct.Struct("<d").pack
    for path in NUMERIC:
        timed = path[0] in TIMES
        for doc in docs:
            value = _get(doc, path)
            if value is None:
                out += _NONE_BYTES
            else:
                out += pack(_epoch(value) if timed else float(value))
    return bytes(out)


def shuffle(data: bytes) -> bytes:
    return b"".join(data[i::8] for i in range(8))


def unshuffle(data: bytes) -> bytes:
    n = len(data) // 8
    out = bytearray(len(data))
    for i in range(8):
        out[i::8] = data[i * n:(i + 1) * n]
    return bytes(out)


def xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        return a
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def text_of(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(_plain(doc.get(k)) for k in TEXT)


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
    """What the next frame is encoded against (writer) or decoded onto (reader)."""

    numbers: bytes = b""
    texts: list[tuple[Any, ...]] = field(default_factory=list)


def encode(head: Mapping[str, Any], docs: Sequence[Mapping[str, Any]], state: FrameState,
           key: bool) -> bytes:
    """One frame: `head` (the document's time, interval and fleet block) and the targets.
    `state` is updated to this frame."""
    numbers = columns(docs)
    texts = [text_of(d) for d in docs]
    if key or len(texts) != len(state.texts):
        changed: dict[int, tuple[Any, ...]] | list[tuple[Any, ...]] = texts
        body = numbers
    else:
        changed = {i: t for i, (t, old) in enumerate(zip(texts, state.texts, strict=True))
                   if t != old}
        body = xor(numbers, state.numbers)
    state.numbers, state.texts = numbers, texts
    meta = marshal.dumps((_plain(dict(head)), len(docs), changed))
    return struct.pack("<I", len(meta)) + zlib.compress(meta + shuffle(body), LEVEL)


def decode(blob: bytes, state: FrameState, key: bool) -> tuple[dict[str, Any], int]:
    """Apply one frame onto `state`; returns its head and target count."""
    (meta_len,) = struct.unpack_from("<I", blob)
    raw = zlib.decompress(blob[4:])
    head, count, changed = marshal.loads(raw[:meta_len])
    body = unshuffle(raw[meta_len:])
    if key or isinstance(changed, list):
        state.numbers, state.texts = body, list(changed)
    else:
        state.numbers = xor(body, state.numbers)
        texts = state.texts
        for index, text in changed.items():
            texts[index] = text
    return _json(head), count


def documents(state: FrameState, identity: Sequence[Sequence[str]],
              only: int | None = None) -> list[dict[str, Any]]:
    """The target documents of the decoded state, in snapshot_json's key order (`only`: the
    one of that index)."""
    count = len(identity)
    values = struct.unpack(f"<{len(state.numbers) // 8}q", state.numbers)
    floats = struct.unpack(f"<{len(state.numbers) // 8}d", state.numbers)
    docs = []
    for i in range(count) if only is None else (only,):
        number: dict[str, Any] = {}
        for c, path in enumerate(NUMERIC):
            at = c * count + i
            value: float | int | str | None = None if values[at] == _NONE else floats[at]
            if value is not None and path[0] in INTEGER:
                value = int(value)
            elif value is not None and path[0] in TIMES:
                value = _iso(floats[at])
            number[".".join(path)] = value
        text = dict(zip(TEXT, _json(state.texts[i]), strict=True))
        name, kind, address = identity[i]
        latency = {src: {p: number[f"latency_ms.{src}.{p}"] for p in ("p50", "p95", "p99")}
                   for src in ("server", "probe")}
        docs.append({
            "name": name, "kind": kind, "address": address, "group": text["group"],
            "status": text["status"], "error": text["error"], "role": text["role"],
            "version": text["version"],
            **{k: number[k] for k in ("ops_per_sec", "hit_ratio", "lifetime_hit_ratio",
                                      "evictions_per_sec", "expirations_per_sec",
                                      "memory_used_bytes", "memory_max_bytes", "connections",
                                      "keys")},
            "latency_ms": latency,
            "server_latency_source": text["server_latency_source"],
            "degraded": text["degraded"], "tls_insecure": text["tls_insecure"],
            "status_since": number["status_since"], "last_success": number["last_success"],
            "caches": text["caches"], "caches_total": text["caches_total"],
            "caches_cut": text["caches_cut"],
        })
    return docs

