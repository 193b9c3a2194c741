"""Provides pure parsers of Redis replies: INFO fields and LATENCY HISTOGRAM, tolerant per field.

The INFO parser looks up only the fields cachetop needs with `bytes.find`, which costs a fraction
of redis-py's generic `parse_info` (every line split and type-guessed). A garbled or missing field
is skipped, never fatal: INFO is untrusted input (redis_exporter#1115 panicked on one odd line).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from collectors.sample import Histogram

_NUMERIC_FIELDS = (
    "uptime_in_seconds", "connected_clients", "maxclients", "used_memory", "maxmemory",
    "total_system_memory", "total_commands_processed", "keyspace_hits", "keyspace_misses",
    "evicted_keys", "expired_keys", "loading", "loading_loaded_perc", "loading_eta_seconds",
    "mem_fragmentation_ratio", "connected_slaves", "master_link_down_since_seconds",
    "rdb_changes_since_last_save", "instantaneous_ops_per_sec",
)
_STRING_FIELDS = ("redis_version", "run_id", "role", "maxmemory_policy", "master_link_status",
                  "redis_mode", "os", "process_id", "master_host", "master_port")
_MARKERS = {name: b"\n" + name.encode() + b":" for name in _NUMERIC_FIELDS + _STRING_FIELDS}
_KEYSPACE = re.compile(rb"\ndb(\d+):keys=(\d+),expires=(\d+)(?:,avg_ttl=(\d+))?")
_MAX_STRING = 256


def _value_at(raw: bytes, marker: bytes) -> bytes | None:
    start = raw.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = raw.find(b"\n", start)
    value = raw[start:] if end < 0 else raw[start:end]
    return value.rstrip(b"\r")


def info_fields(raw: bytes) -> dict[str, float | str]:
    """The INFO fields cachetop uses: numbers as float, strings decoded and length-capped.

    Args:
        raw: the INFO reply body, as bytes.

    Returns:
        Only the fields present and well-formed; a field whose value does not parse is absent.
    """
    if not raw.startswith(b"\n"):
        raw = b"\n" + raw
    fields: dict[str, float | str] = {}
    for name in _NUMERIC_FIELDS:
        value = _value_at(raw, _MARKERS[name])
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            fields[name] = number
    for name in _STRING_FIELDS:
        value = _value_at(raw, _MARKERS[name])
        if value is not None:
            fields[name] = value[:_MAX_STRING].decode("utf-8", "replace")
    return fields


def keyspace(raw: bytes) -> dict[int, tuple[int, int, int]]:
    """Per-db (keys, expires, avg_ttl_ms) from INFO keyspace lines."""
    if not raw.startswith(b"\n"):
        raw = b"\n" + raw
    return {
        int(db): (int(keys), int(expires), int(avg_ttl or 0))
        for db, keys, expires, avg_ttl in _KEYSPACE.findall(raw)
    }


def info_all(raw: bytes, max_lines: int = 5000) -> dict[str, str]:
    """Every `field:value` line of an INFO reply, as strings, for the raw drill-down view."""
    out: dict[str, str] = {}
    for line in raw.split(b"\n")[:max_lines]:
        line = line.rstrip(b"\r")
        if not line or line.startswith(b"#"):
            continue
        name, sep, value = line.partition(b":")
        if sep:
            out[name[:_MAX_STRING].decode("utf-8", "replace")] = value[:4096].decode(
                "utf-8", "replace"
            )
    return out


def _pairs(flat: object) -> Iterable[tuple[object, object]]:
    """Pairs of a RESP2 flat list [k1, v1, k2, v2, ...] or of a RESP3 map."""
    if isinstance(flat, Mapping):
        return flat.items()
    if isinstance(flat, list | tuple):
        return zip(flat[::2], flat[1::2], strict=False)
    return ()


def latency_histogram(
    reply: object, exclude: frozenset[str] = frozenset()
) -> tuple[Histogram, int] | None:
    """Sum of the per-command cumulative histograms of `LATENCY HISTOGRAM`, in seconds.

    Redis sends, per command, cumulative counts at power-of-two microsecond bounds, omitting
    empty buckets; a bound a command omits takes that command's count at the next lower bound it
    lists. Calls slower than its highest bucket are counted in +Inf (the command's `calls`).

    Args:
        reply: the raw reply, [name, [b"calls", n, b"histogram_usec", [bound, count, ...]], ...].
        exclude: lower-case command names left out (cachetop's own INFO, PING, ...).

    Returns:
        (histogram, total calls), or None when the reply has an unexpected shape.
    """
    # Per-bucket (non-cumulative) counts summed over commands; a running sum over the union of
    # bounds then gives the fleet-of-commands cumulative histogram in one pass.
    per_bound: dict[int, int] = {}
    calls_total = 0
    try:
        for name, body in _pairs(reply):
            command = name.decode() if isinstance(name, bytes) else str(name)
            if command.lower() in exclude:
                continue
            fields = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in _pairs(body)}
            calls_total += int(str(fields.get("calls", 0)))
            previous = 0
            for bound, count in sorted((int(str(b)), int(str(c))) for b, c in
                                       _pairs(fields.get("histogram_usec", []))):
                per_bound[bound] = per_bound.get(bound, 0) + count - previous
                previous = count
    except (TypeError, ValueError, AttributeError):
        return None
    buckets: list[tuple[float, float]] = []
    running = 0
    for bound in sorted(per_bound):
        running += per_bound[bound]
        buckets.append((bound / 1e6, float(running)))
    buckets.append((math.inf, float(max(calls_total, running))))
    return Histogram(tuple(buckets)), calls_total
