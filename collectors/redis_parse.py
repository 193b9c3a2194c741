"""Provides pure parsers of Redis replies: INFO fields and LATENCY HISTOGRAM, tolerant per field.

The INFO parser looks up only the fields cachetop needs with `bytes.find`, which costs a fraction
of redis-py's generic `parse_info` (every line split and type-guessed). A garbled or missing field
is skipped, never fatal: INFO is untrusted input (redis_exporter#1115 panicked on one odd line).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from cachetop.collectors.name_trie import name_alternation
from cachetop.collectors.sample import Histogram

# Commands cachetop itself sends: left out of the server latency so a quiet instance's p99 is
# not cachetop's own INFO, and greyed in the drill-down's commands table.
OWN_COMMANDS = frozenset({
    "info", "ping", "latency|histogram", "client|setname", "client|list", "slowlog|get", "auth",
    "hello",
    "select", "latency", "client", "slowlog",
})
# Only what a poll turns into figures; the drill-down reads every field through info_all().
_NUMERIC_FIELDS = (
    "uptime_in_seconds", "connected_clients", "maxclients", "used_memory", "maxmemory",
    "total_system_memory", "total_commands_processed", "keyspace_hits", "keyspace_misses",
    "evicted_keys", "expired_keys", "loading", "loading_loaded_perc", "loading_eta_seconds",
    "master_port", "master_last_io_seconds_ago", "master_repl_offset", "mvcc_depth",
)
# The server's own name and version where it is not Redis (Valkey keeps redis_version at 7.2.4,
# Dragonfly says 7.4.0 whatever its own version), and KeyDB's markers.
_STRING_FIELDS = ("redis_version", "run_id", "role", "master_host", "master_link_status",
                  "server_name", "valkey_version", "dragonfly_version", "executable", "features",
                  "master_global_link_status")
_NUMERIC_NAMES = {name.encode(): name for name in _NUMERIC_FIELDS}
_STRING_NAMES = {name.encode(): name for name in _STRING_FIELDS}
# One pass over the reply for every wanted field (a `find` per field scanned it once each); a
# field counts only where its name starts a line, so a value cannot fake another field.
_WANTED = re.compile(rb"\n(" + name_alternation(_NUMERIC_FIELDS + _STRING_FIELDS)
                     + rb"):([^\n]*)")
_INF = math.inf
# Digit runs are bounded: Python refuses int() of more than 4300 digits, and no real count needs
# more than 19 (int64). A longer run does not match, so that db line is skipped, not fatal.
_KEYSPACE = re.compile(
    rb"\ndb(\d{1,9}):keys=(\d{1,19}),expires=(\d{1,19})(?:,avg_ttl=(\d{1,19}))?(?=[,\r\n]|$)")
_MAX_STRING = 256
_MAX_NUMBER_CHARS = 64  # a longer "number" is garbage; float() of it would only waste time
MAX_DBS = 1024  # keyspace lines kept (Redis's `databases` is 16 by default)
MAX_LINES = 20_000  # info_all: lines read from one INFO reply
MAX_VALUE_CHARS = 4096  # info_all: a value longer than this is cut
_MAX_HISTOGRAM_COUNT = 2**62  # a larger latency count is garbage (and float() would round it)


def _text(value: bytes, max_chars: int) -> str:
    """Decoded with invalid bytes kept visible as `\\xNN` (reliability.md 4.6), then cut."""
    return value[:max_chars].decode("utf-8", "backslashreplace")[:max_chars]


def info_fields(raw: bytes) -> dict[str, float | str]:
    """The INFO fields cachetop uses: numbers as float, strings decoded and length-capped.

    Args:
        raw: the INFO reply body, as bytes.

    Returns:
        Only the fields present and well-formed; a field whose value does not parse is absent.
    """
    # The hot path of every Redis poll, so the per-field work is inlined: one regex pass, a
    # float() per number, a decode per string. The first occurrence of a field counts (a
    # garbled one makes the field absent, not a later duplicate present).
    if not raw.startswith(b"\n"):
        raw = b"\n" + raw
    seen: set[bytes] = set()
    fields: dict[str, float | str] = {}
    for raw_name, value in _WANTED.findall(raw):
        if raw_name in seen:
            continue
        seen.add(raw_name)
        value = value.rstrip(b"\r")
        name = _NUMERIC_NAMES.get(raw_name)
        if name is not None:
            if len(value) <= _MAX_NUMBER_CHARS:
                try:
                    number = float(value)
                except ValueError:
                    continue
                if -_INF < number < _INF:
                    fields[name] = number
        else:
            fields[_STRING_NAMES[raw_name]] = _text(value, _MAX_STRING)
    return fields


def engine_of(fields: Mapping[str, float | str]) -> tuple[str, str]:
    """(engine, its own version) from INFO fields: redis, valkey, dragonfly or keydb.

    Valkey: `valkey_version` (`server_name:valkey` on releases without it); Dragonfly:
    `dragonfly_version` (`df-v1.2.3`); KeyDB keeps its own version in redis_version and is
    known by its `# KeyDB` section (mvcc_depth), its `features:cluster_mget`, its multi-master
    replication fields or its executable's name.
    """
    redis_version = str(fields.get("redis_version", ""))
    if fields.get("dragonfly_version"):
        return "dragonfly", str(fields["dragonfly_version"]).removeprefix("df-").lstrip("v")
    if fields.get("valkey_version"):
        return "valkey", str(fields["valkey_version"])
    name = str(fields.get("server_name", "")).lower()
    if name in ("valkey", "keydb", "dragonfly"):
        return name, redis_version
    if ("mvcc_depth" in fields or "cluster_mget" in str(fields.get("features", ""))
            or "master_global_link_status" in fields
            or "keydb" in str(fields.get("executable", "")).lower().rpartition("/")[2]):
        return "keydb", redis_version
    return "redis", redis_version


def keyspace(raw: bytes) -> dict[int, tuple[int, int, int]]:
    """Per-db (keys, expires, avg_ttl_ms) from INFO keyspace lines, at most MAX_DBS of them.

    A db line that does not match exactly (garbled, or a count too long to be real) is skipped.
    """
    # Every poll reads this: scan from the section's header when there is one (the last few
    # lines of a 5 KB reply), else the whole reply (a bare list of db lines).
    start = raw.find(b"# Keyspace")
    if start > 0:
        raw = raw[start - 1:] if raw[start - 1:start] == b"\n" else raw
    if not raw.startswith(b"\n"):
        raw = b"\n" + raw
    out: dict[int, tuple[int, int, int]] = {}
    for match in _KEYSPACE.finditer(raw):
        db, keys, expires, avg_ttl = match.groups()
        out.setdefault(int(db), (int(keys), int(expires), int(avg_ttl or 0)))
        if len(out) >= MAX_DBS:
            break
    return out


def info_all(raw: bytes, max_lines: int = MAX_LINES) -> dict[str, str]:
    """Every `field:value` line of an INFO reply, as strings, for the raw drill-down view.

    Bounded for hostile replies: at most `max_lines` lines are read (the rest is never split),
    names are cut at 256 characters and values at MAX_VALUE_CHARS.
    """
    out: dict[str, str] = {}
    for line in raw.split(b"\n", max_lines)[:max_lines]:
        line = line.rstrip(b"\r")
        if not line or line.startswith(b"#"):
            continue
        name, sep, value = line.partition(b":")
        if sep:
            out[_text(name, _MAX_STRING)] = _text(value, MAX_VALUE_CHARS)
    return out


def _pairs(flat: object) -> Iterable[tuple[object, object]]:
    """Pairs of a RESP2 flat list [k1, v1, k2, v2, ...] or of a RESP3 map."""
    if isinstance(flat, Mapping):
        return flat.items()
    if isinstance(flat, list | tuple):
        return zip(flat[::2], flat[1::2], strict=False)
    return ()


def _count(value: object) -> int:
    """A non-negative integer from a RESP reply item (int, or bytes/str of digits).

    Raises:
        ValueError: anything else, a negative number or an implausibly large one.
    """
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("not a count")
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 19):
        raise ValueError("not a count")
    number = int(value)
    if not 0 <= number <= _MAX_HISTOGRAM_COUNT:
        raise ValueError("count out of range")
    return number


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
            calls_total += _count(fields.get("calls", 0))
            previous = 0
            for bound, count in sorted((_count(b), _count(c)) for b, c in
                                       _pairs(fields.get("histogram_usec", []))):
                if count < previous:
                    return None  # not cumulative: a garbled reply, not a latency figure
                per_bound[bound] = per_bound.get(bound, 0) + count - previous
                previous = count
    except (TypeError, ValueError, AttributeError):
        return None
    if calls_total > _MAX_HISTOGRAM_COUNT:
        return None
    # Redis omits empty buckets, but its buckets are powers of two: a count at bound b was
    # observed in (b/2, b]. Its lower edge goes in too, so a quantile interpolates inside that
    # bucket, not from the last listed bound: 5 calls of 50 ms after 100 of 1 us read p99
    # 13 ms when interpolated from 1 us, instead of a figure inside (33, 67] ms.
    for bound in [b for b, n in per_bound.items() if n > 0 and b > 1]:
        per_bound.setdefault(bound // 2, 0)
    buckets: list[tuple[float, float]] = []
    running = 0
    for bound in sorted(per_bound):
        running += per_bound[bound]
        buckets.append((bound / 1e6, float(running)))
    buckets.append((math.inf, float(max(calls_total, running))))
    return Histogram(tuple(buckets)), calls_total


# CLIENT LIST fields kept: what a person needs to find a client, never what it sent (no
# `argv`, which CLIENT LIST does not give anyway; `cmd` is the last command's name only).
CLIENT_FIELDS = ("id", "addr", "name", "user", "age", "idle", "db", "flags", "cmd", "tot-mem",
                 "tot-cmds")
MAX_CLIENTS = 2000  # a server with more clients: the first this many (and the total) are kept


def client_list(raw: bytes, limit: int = MAX_CLIENTS) -> tuple[list[dict[str, str]], int]:
    """CLIENT LIST's lines as field dicts (CLIENT_FIELDS only), at most `limit`, and the total
    count of lines. A name cannot hold spaces (CLIENT SETNAME refuses them), so the text splits
    on spaces; every value stays as the server sent it, decoded with invalid bytes escaped."""
    lines = [line for line in raw.split(b"\n") if line.strip()]
    clients: list[dict[str, str]] = []
    for line in lines[:limit]:
        fields: dict[str, str] = {}
        for part in line.strip().split(b" "):
            key, _, value = part.partition(b"=")
            name = key.decode("ascii", "replace")
            if name in CLIENT_FIELDS:
                fields[name] = _text(value, 200)
        clients.append(fields)
    return clients, len(lines)
