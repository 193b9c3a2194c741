"""Provides RedisInfoCollector: one Redis instance's INFO, latency histogram and probes -> Sample.

One connection per target, kept between polls and dropped on any error. No library retries:
redis-py's default retry turns a 1 s timeout into ~15 s and a wrong password into 11 AUTH
attempts per poll (reliability.md, takeaways 1 and 3).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.connection import (
    AbstractConnection,
    Connection,
    UnixDomainSocketConnection,
)

from collectors import redis_parse
from collectors.base import CollectError, Deadline, ReconnectingCollector, Target
from collectors.redis_unix import check_is_redis
from collectors.sample import (
    CONNECTIONS,
    EVICTIONS,
    EXPIRATIONS,
    HITS,
    INSTANCE_ID,
    KEYS,
    LOADING,
    LOADING_ETA_S,
    LOADING_PERCENT,
    MAX_CONNECTIONS,
    MAX_MEMORY_BYTES,
    MISSES,
    OPS,
    ROLE,
    SERVER_LATENCY,
    SYSTEM_MEMORY_BYTES,
    UPTIME_S,
    USED_MEMORY_BYTES,
    VERSION,
    Sample,
)
from collectors.tls import TlsConnection, tls_error

# Commands cachetop itself sends: left out of the server latency so a quiet instance's p99 is
# not cachetop's own INFO.
OWN_COMMANDS = frozenset({
    "info", "ping", "latency|histogram", "client|setname", "slowlog|get", "auth", "hello",
    "select", "latency", "client", "slowlog",
})
_INFO_SECTIONS_7 = (
    "server", "clients", "memory", "persistence", "stats", "replication", "keyspace",
)
_COUNTERS = {
    "total_commands_processed": OPS, "keyspace_hits": HITS, "keyspace_misses": MISSES,
    "evicted_keys": EVICTIONS, "expired_keys": EXPIRATIONS,
}
_GAUGES = {
    "used_memory": USED_MEMORY_BYTES, "total_system_memory": SYSTEM_MEMORY_BYTES,
    "connected_clients": CONNECTIONS, "maxclients": MAX_CONNECTIONS, "uptime_in_seconds": UPTIME_S,
}
# Fetch LATENCY HISTOGRAM (costly on the server: one histogram per command) only when enough
# foreign commands ran since the last fetch to make percentiles meaningful, or when it is stale.
HISTOGRAM_MIN_CALLS = 100
HISTOGRAM_MAX_AGE_S = 10.0
SLOWLOG_ENTRIES = 16


def sample_from_info(
    target: Target, raw: bytes, *, taken_at: float, rtt_s: float, probes_s: tuple[float, ...] = ()
) -> Sample:
    """Map one INFO reply to a Sample. `maxmemory` 0 (no limit) is an absent gauge, not 0."""
    fields = redis_parse.info_fields(raw)
    counters = {name: float(fields[raw_name]) for raw_name, name in _COUNTERS.items()
                if raw_name in fields}
    gauges = {name: float(fields[raw_name]) for raw_name, name in _GAUGES.items()
              if raw_name in fields}
    maxmemory = fields.get("maxmemory")
    if isinstance(maxmemory, float) and maxmemory > 0:
        gauges[MAX_MEMORY_BYTES] = maxmemory
    gauges[KEYS] = float(sum(keys for keys, _, _ in redis_parse.keyspace(raw).values()))
    info = {VERSION: str(fields.get("redis_version", "")), ROLE: str(fields.get("role", "")),
            INSTANCE_ID: str(fields.get("run_id", ""))}
    if fields.get("loading") == 1.0:
        info[LOADING] = "1"
        for raw_name, name in (("loading_loaded_perc", LOADING_PERCENT),
                               ("loading_eta_seconds", LOADING_ETA_S)):
            value = fields.get(raw_name)
            if isinstance(value, float):
                gauges[name] = value
    return Sample(target.name, "redis", taken_at, rtt_s, counters=counters, gauges=gauges,
                  info=info, probes_s=probes_s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def disabled_reason(command: str, exc: BaseException) -> str:
    """Why an optional command gives nothing, in the words an operator acts on: an ACL denial
    needs a grant, an unknown command was renamed or removed in the server's config."""
    message = _first_line(exc)
    if isinstance(exc, redis.exceptions.NoPermissionError) or message.startswith("NOPERM"):
        return f"{command} not permitted"
    if message.lower().startswith(("err unknown command", "unknown command")):
        return f"{command} disabled on the server (renamed or removed)"
    return f"{command} refused: {message}"


def classify(exc: BaseException, timeout_s: float) -> CollectError:
    """Turn a redis-py or socket failure into a status and one sanitized line."""
    if (tls := tls_error(exc, timeout_s)) is not None:
        return tls
    message = _first_line(exc)
    if isinstance(exc, redis.AuthenticationError) or message.startswith(
        ("WRONGPASS", "NOAUTH", "invalid username-password", "Invalid Username")
    ):
        return CollectError("auth-failed", message)
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return CollectError("timeout", f"timeout after {timeout_s:g}s")
    if isinstance(exc, redis.BusyLoadingError):
        return CollectError("loading", message)
    if message.startswith("BUSY"):
        return CollectError("busy", message)
    if isinstance(exc, redis.exceptions.NoPermissionError) or message.startswith("NOPERM"):
        return CollectError("auth-failed", f"not permitted: {message}")
    if isinstance(exc, redis.ConnectionError | OSError):
        if "refused" in message.lower():
            return CollectError("down", "connection refused")
        return CollectError("down", message)
    if isinstance(exc, redis.ResponseError):
        if message.lower().startswith(("err unknown command", "unknown command")):
            return CollectError("bad-data", "INFO disabled on the server (renamed or removed)")
        return CollectError("bad-data", message)
    return CollectError("down", message)


class RedisInfoCollector(ReconnectingCollector):
    """Polls one Redis: INFO every poll, LATENCY HISTOGRAM when worth it, detail slowly."""

    kind = "redis"

    def __init__(self, target: Target) -> None:
        self.target = target
        self._conn: AbstractConnection | None = None
        self._version: tuple[int, ...] = ()
        self._histogram_off = ""  # reason LATENCY HISTOGRAM is not used, once known
        self._hist_ops: float | None = None  # total_commands_processed at the last fetch
        self._hist_at = 0.0
        # Commands cachetop sent (cumulative), and that count when the last fetch's INFO was
        # sent: INFO's total_commands_processed counts what ran before it, so own commands
        # sent after one INFO show up in the next one.
        self._sent = 0
        self._sent_at_hist = 0
        self._sent_at_info = 0
        self._next_detail_at = 0.0
        self._degraded: dict[str, str] = {}

    # -- connection -------------------------------------------------------------------------

    def _connect(self, deadline: Deadline) -> AbstractConnection:
        t = self.target
        common: dict[str, Any] = {
            "db": t.db, "username": t.username,
            "password": t.password.reveal() if t.password else None,
            # The handshake (HELLO/AUTH, CLIENT SETINFO) reads with socket_timeout: bound it by
            # what is left of the poll, or a new connection to a blackholed port overruns it.
            "socket_timeout": min(t.timeout_s, deadline.left_s()),
            "socket_connect_timeout": min(t.timeout_s, deadline.left_s()),
            "retry": None, "socket_keepalive": True,
        }
        conn: AbstractConnection
        if t.socket_path:
            common.pop("socket_keepalive")
            if t.password is not None:
                check_is_redis(t.socket_path, min(t.timeout_s, deadline.left_s()))
            conn = UnixDomainSocketConnection(path=t.socket_path, **common)
        elif t.tls is not None:
            conn = TlsConnection(tls=t.tls, host=t.host, port=t.port, **common)
        else:
            conn = Connection(host=t.host, port=t.port, **common)
        try:
            conn.connect()
        except redis.ConnectionError as exc:
            if t.tls is None and "reset by peer" in str(exc):
                # A TLS-only port resets a plaintext client at its first command.
                raise redis.ConnectionError(f"{_first_line(exc)} (at connect: a TLS-only "
                                            "port? use rediss://)") from exc
            raise
        self._sent += 2  # AUTH or HELLO, and CLIENT SETINFO/SETNAME
        try:
            self._call(conn, deadline, "CLIENT", "SETNAME", "cachetop")
        except redis.ResponseError as exc:
            if _first_line(exc).startswith("BUSY"):
                conn.disconnect()  # not kept: the next poll connects afresh
                raise
            self._degraded["client-setname"] = disabled_reason("CLIENT SETNAME", exc)
        except BaseException:
            conn.disconnect()
            raise
        return conn

    def _call(self, conn: AbstractConnection, deadline: Deadline, *args: Any) -> Any:
        self._sent += 1
        conn.send_command(*args)
        return conn.read_response(timeout=min(self.target.timeout_s, deadline.left_s()))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None

    # -- polling ----------------------------------------------------------------------------

    def _classify(self, exc: BaseException, timeout_s: float) -> CollectError:
        return classify(exc, timeout_s)

    def _collect(self, deadline: Deadline) -> Sample:
        started = time.monotonic()
        if self._conn is None:
            self._conn = self._connect(deadline)
        conn = self._conn
        sections = _INFO_SECTIONS_7 if self._version >= (7,) else ()
        self._sent_at_info = self._sent
        raw = self._call(conn, deadline, "INFO", *sections)
        taken_at = time.monotonic()
        sample = sample_from_info(self.target, raw, taken_at=taken_at, rtt_s=taken_at - started)
        if not self._version:
            self._version = _version_tuple(sample.info.get(VERSION, ""))
            if self._version and self._version < (7,):
                self._histogram_off = "LATENCY HISTOGRAM needs Redis 7 (probe latency only)"
        loading = LOADING in sample.info
        probes = () if loading else self._probe(conn, deadline)
        histograms = {}
        if not loading and self._histogram_due(sample.counters.get(OPS), taken_at):
            histogram = self._fetch_histogram(conn, deadline, sample.counters.get(OPS))
            if histogram is not None:
                histograms[SERVER_LATENCY] = histogram
        detail = None
        if not loading and taken_at >= self._next_detail_at:
            self._next_detail_at = taken_at + self.target.detail_every_s
            detail = self._fetch_detail(conn, deadline)
        if self._histogram_off:
            self._degraded["latency"] = self._histogram_off
        return Sample(
            sample.target, sample.kind, sample.taken_at, sample.rtt_s, counters=sample.counters,
            gauges=sample.gauges, histograms=histograms, info=sample.info, probes_s=probes,
            detail=detail, degraded=tuple(self._degraded.values()),
        )

    def _probe(self, conn: AbstractConnection, deadline: Deadline) -> tuple[float, ...]:
        rtts = []
        for _ in range(self.target.probes_per_poll):
            started = time.perf_counter()
            self._call(conn, deadline, "PING")
            rtts.append(time.perf_counter() - started)
        return tuple(rtts)

    def _histogram_due(self, ops: float | None, now: float) -> bool:
        if self._histogram_off or ops is None:
            return False
        if self._hist_ops is None or ops < self._hist_ops:
            return True
        foreign = ops - self._hist_ops - (self._sent_at_info - self._sent_at_hist)
        return foreign >= HISTOGRAM_MIN_CALLS or (
            foreign > 0 and now - self._hist_at >= HISTOGRAM_MAX_AGE_S)

    def _fetch_histogram(self, conn: AbstractConnection, deadline: Deadline,
                         ops: float | None) -> Any:
        try:
            reply = self._call(conn, deadline, "LATENCY", "HISTOGRAM")
        except redis.ResponseError as exc:
            if _first_line(exc).startswith("BUSY"):
                raise
            reason = disabled_reason("LATENCY HISTOGRAM", exc).replace(
                "LATENCY HISTOGRAM not permitted", "LATENCY not permitted")
            self._histogram_off = f"{reason} (probe latency only)"
            return None
        parsed = redis_parse.latency_histogram(reply, OWN_COMMANDS)
        self._hist_ops, self._hist_at = ops, time.monotonic()
        self._sent_at_hist = self._sent_at_info
        return parsed[0] if parsed else None

    def _fetch_detail(self, conn: AbstractConnection, deadline: Deadline) -> dict[str, Any]:
        detail: dict[str, Any] = {}
        raw = self._call(conn, deadline, "INFO", "all" if self._version >= (7,) else "everything")
        detail["info"] = redis_parse.info_all(raw)
        detail["keyspace"] = redis_parse.keyspace(raw)
        try:
            detail["slowlog"] = _slowlog(self._call(conn, deadline, "SLOWLOG", "GET",
                                                    SLOWLOG_ENTRIES))
            self._degraded.pop("slowlog", None)
        except redis.ResponseError as exc:
            if _first_line(exc).startswith("BUSY"):
                raise
            self._degraded["slowlog"] = disabled_reason("SLOWLOG", exc)
        return detail


def _slowlog(reply: Any) -> list[dict[str, Any]]:
    """SLOWLOG GET entries as plain data; arguments stay bytes (they are shown escaped)."""
    entries = []
    for entry in reply if isinstance(reply, list) else []:
        if not isinstance(entry, list) or len(entry) < 4:
            continue
        entries.append({
            "id": entry[0], "time": entry[1], "duration_us": entry[2],
            "args": [a if isinstance(a, bytes) else str(a).encode() for a in entry[3]][:32],
            "client": entry[4] if len(entry) > 4 else b"",
            "client_name": entry[5] if len(entry) > 5 else b"",
        })
    return entries


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:3]:
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)
