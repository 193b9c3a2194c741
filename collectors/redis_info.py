"""Provides RedisInfoCollector: one Redis instance's INFO, latency histogram and probes -> Sample.

A poll script for the event loop (netloop.py), speaking RESP through hiredis's reader.
One connection per target, kept between polls and dropped on any error. No retries: a retry
turns a 1 s timeout into ~15 s and a wrong password into 11 AUTH attempts per poll (redis-py's
defaults did; reliability.md, takeaways 1 and 3).
"""

from __future__ import annotations

import socket
import time
from typing import Any

from cachetop.collectors import redis_parse
from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.driver import LoopCollector
from cachetop.collectors.framing import (
    LineFraming,
    RespError,
    RespFraming,
    RespProtocolError,
    pack_command,
)
from cachetop.collectors.netloop import Script
from cachetop.collectors.redis_parse import OWN_COMMANDS
from cachetop.collectors.sample import (
    COMPAT_VERSION,
    CONNECTIONS,
    ENGINE,
    EVICTIONS,
    EXPIRATIONS,
    HITS,
    INSTANCE_ID,
    KEYS,
    LOADING,
    LOADING_ETA_S,
    LOADING_PERCENT,
    MASTER_ADDRESS,
    MASTER_LINK,
    MAX_CONNECTIONS,
    MAX_MEMORY_BYTES,
    MISSES,
    OPS,
    OWN_OPS,
    REPL_OFFSET,
    REPLICATION_LAG_S,
    ROLE,
    SERVER_LATENCY,
    SYSTEM_MEMORY_BYTES,
    UPTIME_S,
    USED_MEMORY_BYTES,
    VERSION,
    Sample,
)
from cachetop.collectors.tls import tls_error
from cachetop.collectors.wire import Conn, Connect, Request, target_conn

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
    "master_repl_offset": REPL_OFFSET,
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
    counters, gauges, info = info_parts(raw)
    return Sample(target.name, "redis", taken_at, rtt_s, counters=counters, gauges=gauges,
                  info=info, probes_s=probes_s)


Parts = tuple[dict[str, float], dict[str, float], dict[str, str]]


def info_parts(raw: bytes) -> Parts:
    """The counters, gauges and info strings of one INFO reply (a poll builds its Sample once,
    after the probes and the histogram)."""
    fields = redis_parse.info_fields(raw)
    # A negative count is "no data" (Dragonfly answers -1 for what it does not track).
    counters = {name: float(value) for raw_name, name in _COUNTERS.items()
                if isinstance(value := fields.get(raw_name), float) and value >= 0}
    gauges = {name: float(value) for raw_name, name in _GAUGES.items()
              if isinstance(value := fields.get(raw_name), float) and value >= 0}
    maxmemory = fields.get("maxmemory")
    if isinstance(maxmemory, float) and maxmemory > 0:
        gauges[MAX_MEMORY_BYTES] = maxmemory
    gauges[KEYS] = float(sum(keys for keys, _, _ in redis_parse.keyspace(raw).values()))
    engine, version = redis_parse.engine_of(fields)
    info = {VERSION: version, ENGINE: engine, COMPAT_VERSION: str(fields.get("redis_version", "")),
            ROLE: str(fields.get("role", "")), INSTANCE_ID: str(fields.get("run_id", ""))}
    if info[ROLE] in ("slave", "replica") and isinstance(fields.get("master_host"), str):
        port = fields.get("master_port")
        info[MASTER_ADDRESS] = (f"{fields['master_host']}:{port:.0f}"
                                if isinstance(port, float) else str(fields["master_host"]))
        info[MASTER_LINK] = str(fields.get("master_link_status", ""))
        lag = fields.get("master_last_io_seconds_ago")
        if isinstance(lag, float) and lag >= 0:  # -1: never heard from it
            gauges[REPLICATION_LAG_S] = lag
    if "master_link_status" in fields and MASTER_LINK not in info:
        info[MASTER_LINK] = str(fields["master_link_status"])
    if fields.get("loading") == 1.0:
        info[LOADING] = "1"
        for raw_name, name in (("loading_loaded_perc", LOADING_PERCENT),
                               ("loading_eta_seconds", LOADING_ETA_S)):
            value = fields.get(raw_name)
            if isinstance(value, float):
                gauges[name] = value
    return counters, gauges, info


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def disabled_reason(command: str, exc: BaseException) -> str:
    """Why an optional command gives nothing, in the words an operator acts on: an ACL denial
    needs a grant, an unknown command was renamed or removed in the server's config."""
    message = _first_line(exc)
    if message.startswith("NOPERM"):
        return f"{command} not permitted"
    if message.lower().startswith(("err unknown command", "unknown command")):
        return f"{command} disabled on the server (renamed or removed)"
    return f"{command} refused: {message}"


def classify(exc: BaseException, timeout_s: float) -> CollectError:
    """Turn a wire or protocol failure into a status and one sanitized line."""
    if (tls := tls_error(exc, timeout_s)) is not None:
        return tls
    message = _first_line(exc)
    if message.startswith("NOAUTH"):
        return CollectError("auth-failed", "the server wants a password (NOAUTH): give one "
                                           "with password_env, password_file or the URL")
    if message.startswith(("WRONGPASS", "invalid username-password", "Invalid Username")):
        return CollectError("auth-failed", message)
    if isinstance(exc, TimeoutError):
        return CollectError("timeout", f"timeout after {timeout_s:g}s")
    if message.startswith("LOADING"):
        return CollectError("loading", message)
    if message.startswith("BUSY"):
        return CollectError("busy", message)
    if message.startswith("NOPERM"):
        return CollectError("auth-failed", f"not permitted: {message}")
    if isinstance(exc, RespProtocolError):
        return CollectError("bad-data", f"not a Redis reply: {message}")
    if isinstance(exc, socket.gaierror):
        return CollectError("down", f"name resolution failed: {exc.strerror or exc}"[:200])
    if isinstance(exc, ConnectionRefusedError):
        return CollectError("down", "connection refused")
    if isinstance(exc, OSError):
        return CollectError("down", _os_line(exc))
    if isinstance(exc, RespError):
        if message.lower().startswith(("err unknown command", "unknown command")):
            return CollectError("bad-data", "INFO disabled on the server (renamed or removed)")
        return CollectError("bad-data", message)
    return CollectError("down", message)


def _os_line(exc: OSError) -> str:
    """`[Errno 104] Connection reset by peer` -> `connection reset by peer`."""
    if exc.strerror:
        return exc.strerror[:200].lower()
    return _first_line(exc)


_INFO = pack_command("INFO", *_INFO_SECTIONS_7)
_INFO_OLD = pack_command("INFO")
_PING = pack_command("PING")
_HISTOGRAM = pack_command("LATENCY", "HISTOGRAM")
_SLOWLOG = pack_command("SLOWLOG", "GET", SLOWLOG_ENTRIES)
_CLIENT_LIST = pack_command("CLIENT", "LIST")
_REDIS_PING_REPLIES = (b"+PONG", b"-NOAUTH", b"-ERR", b"-WRONGPASS", b"-NOPERM", b"-LOADING",
                       b"-BUSY")


class RedisInfoCollector(LoopCollector):
    """Polls one Redis: INFO every poll, PING probes, LATENCY HISTOGRAM when worth it, detail
    slowly. One connection, kept between polls and dropped on any failure; no retries."""

    kind = "redis"

    def __init__(self, target: Target) -> None:
        self.target = target
        self._conn = target_conn(target)
        self._resp = RespFraming()
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
        self._hist_next = False  # LATENCY HISTOGRAM expected due next poll: sent with INFO
        # Other clients' calls per second between the last two INFOs, and that gap: a server
        # busy enough to make the histogram due by the next poll gets it asked with INFO (a
        # busy fleet's Redis polls were three round trips instead of two: bench/README.md).
        self._rate = 0.0
        self._gap_s = 0.0
        self._last_info: tuple[float, int, float] | None = None  # ops, sent before it, time
        self._degraded: dict[str, str] = {}
        # Optional commands the server refused on the current connection: not sent again until
        # a reconnect (redis_exporter#784: one error a poll inflates the server's error counts).
        self._refused: set[str] = set()

    def connections(self) -> tuple[Conn, ...]:
        return (self._conn,) if self._conn.sock is not None else ()

    def close(self) -> None:
        self._conn.close()

    def classify(self, exc: BaseException, timeout_s: float) -> CollectError:
        return classify(exc, timeout_s)

    # -- connection -------------------------------------------------------------------------

    def _call(self, *args: str | bytes | int) -> Script:
        self._sent += 1
        return (yield Request(self._conn, pack_command(*args), self._resp))

    def _connect(self) -> Script:
        t, conn = self.target, self._conn
        self._resp = RespFraming()
        self._refused.clear()
        yield Connect(conn)
        if t.socket_path and t.password is not None:
            yield from self._check_is_redis()
        try:
            yield from self._handshake()
        except ConnectionResetError:
            if t.tls is None:
                # A TLS-only port resets a plaintext client at its first command.
                raise CollectError("down", "connection reset by peer (at connect: a TLS-only "
                                           "port? use rediss://)") from None
            raise

    def _handshake(self) -> Script:
        t = self.target
        try:
            if t.password is not None:
                auth = ("AUTH", t.username, t.password.reveal()) if t.username else \
                    ("AUTH", t.password.reveal())
                yield from self._call(*auth)
            if t.db:
                yield from self._call("SELECT", t.db)
        except RespError as exc:
            if _first_line(exc).startswith("ERR AUTH") or "invalid password" in str(exc):
                raise CollectError("auth-failed", _first_line(exc)) from None
            raise
        try:
            yield from self._call("CLIENT", "SETNAME", "cachetop")
            self._degraded.pop("client-setname", None)
        except RespError as exc:
            if _first_line(exc).startswith("BUSY"):
                raise
            self._degraded["client-setname"] = disabled_reason("CLIENT SETNAME", exc)

    def _check_is_redis(self) -> Script:
        """A unix socket must answer PING like a Redis before it gets the password
        (redis_exporter#1115: AUTH written into a bind-mounted docker.sock)."""
        try:
            reply = yield Request(self._conn, b"PING\r\n", LineFraming())
        except CollectError as exc:
            if exc.status == "timeout":
                raise CollectError("bad-data", "the unix socket did not answer PING like a "
                                               "Redis: no password sent") from None
            raise
        if not reply.value.startswith(_REDIS_PING_REPLIES):
            raise CollectError("bad-data", "the unix socket is not a Redis (its answer to "
                                           "PING was not Redis's): no password sent")
        self._sent += 1

    # -- polling ----------------------------------------------------------------------------

    def _poll(self) -> Script:
        if not self._conn.is_open:
            yield from self._connect()
        # LATENCY HISTOGRAM, when the last poll found it due, leaves in the same write as
        # INFO: one round trip fewer (its reply is read right after INFO's).
        pipelined = self._hist_next and self._version >= (7,) and not self._histogram_off
        self._sent_at_info = self._sent
        self._sent += 1
        request = _INFO if self._version >= (7,) else _INFO_OLD
        if pipelined:
            self._sent += 1
            request += _HISTOGRAM
        reply = yield Request(self._conn, request, self._resp)
        taken_at = reply.arrived_monotonic
        counters, gauges, info = info_parts(reply.value)
        ops = counters.get(OPS)
        # Every command this collector sent before this INFO ran before it, and the server
        # counts them in total_commands_processed: the engine subtracts them, so an idle
        # server reads 0 ops/s, not cachetop's own INFO and PINGs.
        counters[OWN_OPS] = float(self._sent_at_info)
        histograms = {}
        self._note_rate(ops, taken_at)
        if pipelined:
            # Taken only if due, as one asked for on its own would be: a window of fewer
            # calls (the traffic dropped) is read and dropped, and the window goes on.
            due = self._histogram_due(ops, taken_at)
            histogram = yield from self._read_histogram(b"", ops, keep=due)
            if histogram is not None:
                histograms[SERVER_LATENCY] = histogram
        if not self._version:
            self._version = version_tuple(info.get(COMPAT_VERSION, ""))
            if self._version and self._version < (7,):
                self._histogram_off = "LATENCY HISTOGRAM needs Redis 7 (probe latency only)"
        loading = LOADING in info
        probes: list[float] = []
        for _ in range(0 if loading else self.target.probes_per_poll):
            self._sent += 1
            pong = yield Request(self._conn, _PING, self._resp)
            probes.append(pong.rtt_s)
        if not pipelined and not loading and self._histogram_due(ops, taken_at):
            self._sent += 1
            histogram = yield from self._read_histogram(_HISTOGRAM, ops)
            if histogram is not None:
                histograms[SERVER_LATENCY] = histogram
        self._hist_next = not loading and (self._histogram_due(ops, taken_at)
                                           or self._histogram_expected(ops))
        detail = None
        if not loading and self.detail_due(taken_at):
            detail = yield from self._fetch_detail()
        if self._histogram_off:
            self._degraded["latency"] = self._histogram_off
        return Sample(
            self.target.name, "redis", taken_at, reply.rtt_s, counters=counters, gauges=gauges,
            histograms=histograms, info=info, probes_s=tuple(probes), detail=detail,
            degraded=tuple(self._degraded.values()),
        )

    def _foreign_since_fetch(self, ops: float | None) -> float | None:
        """Other clients' calls since the last histogram's INFO (our own subtracted); None
        before a first fetch, or after a restart reset the count."""
        if ops is None or self._hist_ops is None or ops < self._hist_ops:
            return None
        return ops - self._hist_ops - (self._sent_at_info - self._sent_at_hist)

    def _histogram_due(self, ops: float | None, now: float) -> bool:
        if self._histogram_off or ops is None:
            return False
        foreign = self._foreign_since_fetch(ops)
        if foreign is None:
            return True
        return foreign >= HISTOGRAM_MIN_CALLS or (
            foreign > 0 and now - self._hist_at >= HISTOGRAM_MAX_AGE_S)

    def _note_rate(self, ops: float | None, now: float) -> None:
        """Other clients' calls per second since the last INFO (a restart or a missing count
        reads as none)."""
        last, self._last_info = self._last_info, (
            None if ops is None else (ops, self._sent_at_info, now))
        self._rate = self._gap_s = 0.0
        if last is None or ops is None or ops < last[0] or now <= last[2]:
            return
        foreign = ops - last[0] - (self._sent_at_info - last[1])
        self._rate, self._gap_s = max(0.0, foreign) / (now - last[2]), now - last[2]

    def _histogram_expected(self, ops: float | None) -> bool:
        """Due at the next poll, if it comes as long after this one as this one did after the
        last and other clients keep their pace."""
        foreign = None if self._histogram_off else self._foreign_since_fetch(ops)
        return foreign is not None and foreign + self._rate * self._gap_s >= HISTOGRAM_MIN_CALLS

    def _read_histogram(self, request: bytes, ops: float | None, *,
                        keep: bool = True) -> Script:
        """Read LATENCY HISTOGRAM's reply (sent now, or already with INFO when `request` is
        empty; `keep` False: read and dropped); a refusal turns the histogram off for good,
        with the reason."""
        try:
            reply = yield Request(self._conn, request, self._resp)
        except RespError as exc:
            if _first_line(exc).startswith("BUSY"):
                raise
            reason = disabled_reason("LATENCY HISTOGRAM", exc).replace(
                "LATENCY HISTOGRAM not permitted", "LATENCY not permitted")
            self._histogram_off = f"{reason} (probe latency only)"
            return None
        if not keep:
            return None
        parsed = redis_parse.latency_histogram(reply.value, OWN_COMMANDS)
        self._hist_ops, self._hist_at = ops, time.monotonic()
        self._sent_at_hist = self._sent_at_info
        return parsed[0] if parsed else None

    def _fetch_detail(self) -> Script:
        detail: dict[str, Any] = {}
        raw = yield from self._call("INFO", "all" if self._version >= (7,) else "everything")
        detail["info"] = redis_parse.info_all(raw.value)
        detail["keyspace"] = redis_parse.keyspace(raw.value)
        if "slowlog" in self._refused:
            return detail  # refused on this connection: asked again only after a reconnect
        try:
            self._sent += 1
            slowlog = yield Request(self._conn, _SLOWLOG, self._resp)
            detail["slowlog"] = _slowlog(slowlog.value)
            self._degraded.pop("slowlog", None)
        except RespError as exc:
            if _first_line(exc).startswith("BUSY"):
                raise
            self._degraded["slowlog"] = disabled_reason("SLOWLOG", exc)
            self._refused.add("slowlog")
        if not self.clients_wanted:
            return detail
        try:  # the Clients tab: who is connected, idle, holding memory (no values)
            self._sent += 1
            clients = yield Request(self._conn, _CLIENT_LIST, self._resp)
            detail["clients"], detail["clients_total"] = redis_parse.client_list(clients.value)
        except RespError as exc:
            if _first_line(exc).startswith("BUSY"):
                raise
            # Not a degraded figure: the README's monitor user leaves CLIENT LIST out on
            # purpose. The Clients tab says why it is empty.
            detail["clients_refused"] = disabled_reason("CLIENT LIST", exc)
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


def version_tuple(version: str) -> tuple[int, ...]:
    """A Redis version string as numbers to compare, e.g. "7.2.4" -> (7, 2, 4).

    Shared with the actions (cachetop.actions.safety), which pick commands by version too.

    Args:
        version: `redis_version` from INFO.

    Returns:
        Up to three leading numeric parts; () when the first is not a number.
    """
    parts = []
    for part in version.split(".")[:3]:
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)
