"""Provides MemcachedStatsCollector: one memcached's `stats` (+ slabs/items/settings) -> Sample.

A poll script for the event loop (netloop.py) speaking the text protocol; the poll's
deadline bounds the whole exchange. pymemcache remains what the actions use.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Mapping
from typing import Any

from cachetop.collectors import memcached_wire
from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.driver import LoopCollector
from cachetop.collectors.framing import MemcachedFraming
from cachetop.collectors.name_trie import name_alternation
from cachetop.collectors.netloop import Script
from cachetop.collectors.sample import (
    CONNECTIONS,
    EVICTIONS,
    EXPIRATIONS,
    HITS,
    INSTANCE_ID,
    KEYS,
    MAX_CONNECTIONS,
    MAX_MEMORY_BYTES,
    MISSES,
    OPS,
    ROLE,
    UPTIME_S,
    USED_MEMORY_BYTES,
    VERSION,
    Sample,
)
from cachetop.collectors.tls import tls_error
from cachetop.collectors.wire import Conn, Connect, Request, target_conn

# metrics.md: ops/s sums every command counter (cmd_get counts the keys of a multi-get).
_OPS_FIELDS = (
    "cmd_get", "cmd_set", "cmd_touch", "cmd_flush", "delete_hits", "delete_misses",
    "incr_hits", "incr_misses", "decr_hits", "decr_misses", "cas_hits", "cas_misses", "cas_badval",
)
_EXPIRATION_FIELDS = ("reclaimed", "expired_unfetched")
_GAUGES = {
    "bytes": USED_MEMORY_BYTES, "limit_maxbytes": MAX_MEMORY_BYTES, "curr_items": KEYS,
    "curr_connections": CONNECTIONS, "max_connections": MAX_CONNECTIONS, "uptime": UPTIME_S,
}


_WANTED = (*_OPS_FIELDS, *_EXPIRATION_FIELDS, *_GAUGES, "get_hits", "get_misses", "evictions",
           "version", "pid")
# One pass for every wanted field, anchored at a line start, so a value (say a hostile
# `version`) cannot fake another field.
_WANTED_RE = re.compile(rb"\nSTAT (" + name_alternation(_WANTED) + rb") ([^\n]*)")
MAX_VALUE_BYTES = 4096  # a longer value is garbage: dropped, never cut into a wrong number
MAX_LINES = 20_000  # all_stats: lines read from one reply (memcached sends ~100)
_MAX_NUMBER_CHARS = 64
_MAX_SLAB_CLASSES = 1024  # memcached has at most 63 (MAX_NUMBER_OF_SLAB_CLASSES - 1)


def stats_fields(raw: bytes) -> dict[str, bytes]:
    """The `stats` fields cachetop polls, found in one regex pass over the raw reply.

    pymemcache's `stats()` reads and type-converts ~95 lines one at a time; this takes the ~25
    fields a poll needs at a fraction of the CPU (bench/README.md). Values stay bytes; the first
    occurrence of a field counts.
    """
    if not raw.startswith(b"\n"):
        raw = b"\n" + raw
    fields: dict[str, bytes] = {}
    for raw_name, value in _WANTED_RE.findall(raw):
        name = raw_name.decode()
        if name in fields:
            continue
        value = value.removesuffix(b"\r")
        if len(value) <= MAX_VALUE_BYTES:
            fields[name] = value
        else:
            fields[name] = b""  # garbage: the field is dropped below, and stays dropped
    return {name: value for name, value in fields.items() if value}


_NAME_OF = {name.encode(): name for name in _WANTED}
_TEXT_FIELDS = (b"version", b"pid")  # info strings (pid is a number too)
_INF = math.inf


def poll_parts(raw: bytes) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """`stats_parts(stats_fields(raw))` in one pass: the hot path of every memcached poll
    (tests hold it equal to the two steps on real, mutated and arbitrary replies)."""
    if not raw.startswith(b"\n"):
        raw = b"\n" + raw
    seen: set[bytes] = set()
    numbers: dict[str, float] = {}
    texts: dict[bytes, bytes] = {}
    for raw_name, value in _WANTED_RE.findall(raw):
        if raw_name in seen:
            continue
        seen.add(raw_name)
        value = value.removesuffix(b"\r")
        if len(value) > MAX_VALUE_BYTES:
            continue
        if raw_name in _TEXT_FIELDS:
            texts[raw_name] = value
        if 0 < len(value) <= _MAX_NUMBER_CHARS:
            try:
                number = float(value)
            except ValueError:
                continue
            if -_INF < number < _INF:
                numbers[_NAME_OF[raw_name]] = number
    return _parts(numbers, _text(texts.get(b"version", b"")), _text(texts.get(b"pid", b"")))


def all_stats(raw: bytes) -> dict[str, str]:
    """Every `STAT name value` line, for the drill-down view: at most MAX_LINES lines are read
    (the rest is never split), names cut at 128 characters and values at 1024."""
    out = {}
    for line in raw.split(b"\n", MAX_LINES)[:MAX_LINES]:
        parts = line.removesuffix(b"\r").split(b" ", 2)
        if len(parts) == 3 and parts[0] == b"STAT":
            out[parts[1][:128].decode("utf-8", "backslashreplace")[:128]] = (
                parts[2][:1024].decode("utf-8", "backslashreplace")[:1024])
    return out


def _number_bytes(value: bytes) -> float | None:
    """_number's fast path for the raw bytes a poll reads."""
    if len(value) > _MAX_NUMBER_CHARS:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _number(value: Any) -> float | None:
    """A finite float, or None: stats values come off the wire (`nan`, `1e999`, a 400-digit
    int that float() cannot hold, `1.2.3`) and a non-finite figure would poison every sum."""
    if isinstance(value, bool):
        return None
    if isinstance(value, bytes | str) and len(value) > _MAX_NUMBER_CHARS:
        return None
    try:
        if isinstance(value, int | float):
            number = float(value)
        else:
            number = float(value.decode() if isinstance(value, bytes) else value)
    except (ValueError, TypeError, AttributeError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if isinstance(value, bytes):  # invalid UTF-8 stays visible as \xNN, as plain() shows it
        return value[:256].decode("utf-8", "backslashreplace")[:256]
    return str(value)[:256]


def sample_from_stats(
    target: Target, stats: Mapping[str, Any], *, taken_at: float, rtt_s: float,
    probes_s: tuple[float, ...] = (),
) -> Sample:
    """Map `stats` to a Sample; a field that is missing or garbled is left out, never fatal."""
    counters, gauges, info = stats_parts(stats)
    return Sample(target.name, "memcached", taken_at, rtt_s, counters=counters, gauges=gauges,
                  info=info, probes_s=probes_s)


def stats_parts(stats: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float],
                                                   dict[str, str]]:
    """The counters, gauges and info strings of `stats`."""
    numbers = {name: n for name, value in stats.items()
               if (n := _number_bytes(value) if type(value) is bytes else _number(value))
               is not None}
    return _parts(numbers, _text(stats.get("version", "")), _text(stats.get("pid", "")))


def _parts(numbers: Mapping[str, float], version: str, pid: str
           ) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    counters: dict[str, float] = {}
    if "get_hits" in numbers:
        counters[HITS] = numbers["get_hits"]
    if "get_misses" in numbers:
        counters[MISSES] = numbers["get_misses"]
    if "evictions" in numbers:
        counters[EVICTIONS] = numbers["evictions"]
    if "cmd_get" in numbers:
        counters[OPS] = sum(numbers.get(name, 0.0) for name in _OPS_FIELDS)
    if any(name in numbers for name in _EXPIRATION_FIELDS):
        counters[EXPIRATIONS] = sum(numbers.get(name, 0.0) for name in _EXPIRATION_FIELDS)
    # Each value is finite, but a sum of huge ones (1e308 + 1e308) is not: drop such a figure.
    counters = {name: value for name, value in counters.items() if math.isfinite(value)}
    gauges = {name: numbers[raw] for raw, name in _GAUGES.items() if raw in numbers}
    return counters, gauges, {VERSION: version, ROLE: "", INSTANCE_ID: pid}


def slab_table(slabs: Mapping[str, Any], items: Mapping[str, Any]) -> dict[int, dict[str, float]]:
    """Per-slab-class figures merged from `stats slabs` ("1:chunk_size") and `stats items`
    ("items:1:evicted"), so the drill-down table needs no knowledge of either format."""
    table: dict[int, dict[str, float]] = {}
    for source, prefix in ((slabs, ""), (items, "items:")):
        for key, value in source.items():
            if not key.startswith(prefix):
                continue
            slab_id, sep, field = key[len(prefix):].partition(":")
            number = _number(value)
            # isascii: "²".isdigit() is True but int("²") raises.
            if not sep or not (slab_id.isascii() and slab_id.isdigit()) or number is None:
                continue
            if len(slab_id) <= 4 and int(slab_id) < _MAX_SLAB_CLASSES:
                table.setdefault(int(slab_id), {})[field[:128]] = number
    return table


def classify(exc: BaseException, timeout_s: float) -> CollectError:
    """Turn a wire or protocol failure into a status and one sanitized line."""
    if (tls := tls_error(exc, timeout_s)) is not None:
        return tls
    lines = str(exc).strip().splitlines()
    message = lines[0][:200] if lines else type(exc).__name__
    if isinstance(exc, TimeoutError):
        return CollectError("timeout", f"timeout after {timeout_s:g}s")
    if isinstance(exc, socket.gaierror):
        return CollectError("down", f"name resolution failed: {exc.strerror or exc}"[:200])
    if isinstance(exc, ConnectionRefusedError):
        return CollectError("down", "connection refused")
    if isinstance(exc, memcached_wire.ReplyError):
        return memcached_wire.error_status(exc)
    if "unauthenticated" in message.lower():
        return CollectError("auth-failed", message)
    if isinstance(exc, OSError) and exc.strerror:
        return CollectError("down", exc.strerror[:200].lower())
    return CollectError("down", message or "connection closed")


_STATS = b"stats\r\n"
_VERSION = b"version\r\n"


class MemcachedStatsCollector(LoopCollector):
    """Polls one memcached: `stats` and `version` probes every poll, slabs/items/settings slowly."""

    kind = "memcached"

    def __init__(self, target: Target) -> None:
        self.target = target
        self._conn = target_conn(target)
        self._degraded: dict[str, str] = {}

    def connections(self) -> tuple[Conn, ...]:
        return (self._conn,) if self._conn.sock is not None else ()

    def close(self) -> None:
        self._conn.close()

    def classify(self, exc: BaseException, timeout_s: float) -> CollectError:
        return classify(exc, timeout_s)

    def _request(self, command: bytes, end: bytes = b"END\r\n") -> Script:
        return (yield Request(self._conn, command, MemcachedFraming(end)))

    def _connect(self) -> Script:
        yield Connect(self._conn)
        if self.target.password is not None:
            try:
                reply = yield from self._request(memcached_wire.auth_request(self.target),
                                                 b"\r\n")
            except memcached_wire.ReplyError as exc:
                raise CollectError("auth-failed",
                                   f"memcached refused the credentials: {exc.line}") from None
            if reply.value != b"STORED\r\n":
                raise CollectError("bad-data", "memcached answered the authentication with "
                                   f"{reply.value[:60].decode('ascii', 'backslashreplace')!r}")

    def _poll(self) -> Script:
        if not self._conn.is_open:
            yield from self._connect()
        reply = yield from self._request(_STATS)
        raw, taken_at = reply.value, reply.arrived_monotonic
        probes = []
        for _ in range(self.target.probes_per_poll):
            probe = yield from self._request(_VERSION, b"\r\n")
            probes.append(probe.rtt_s)
        counters, gauges, info = poll_parts(raw)
        detail = None
        if self.detail_due(taken_at):
            detail = yield from self._fetch_detail(all_stats(raw))
        return Sample(self.target.name, "memcached", taken_at, reply.rtt_s, counters=counters,
                      gauges=gauges, info=info, probes_s=tuple(probes), detail=detail,
                      degraded=tuple(self._degraded.values()))

    def _fetch_detail(self, stats: Mapping[str, Any]) -> Script:
        slabs = all_stats((yield from self._request(b"stats slabs\r\n")).value)
        items = all_stats((yield from self._request(b"stats items\r\n")).value)
        try:
            settings = all_stats((yield from self._request(b"stats settings\r\n")).value)
            self._degraded.pop("settings", None)
        except memcached_wire.ReplyError as exc:
            settings = {}
            self._degraded["settings"] = f"stats settings refused: {exc.line[:120]}"
        return {"stats": dict(stats),
                "settings": {k: _text(v) for k, v in settings.items()},
                "slabs": slab_table(slabs, items),
                "slab_totals": {k: _number(v) for k, v in slabs.items() if ":" not in k}}
