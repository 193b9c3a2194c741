"""Provides the typed drill-down records (RedisDetail, MemcachedDetail, EndpointDetail), built
and rated in the engine from what a collector read, so widgets only format.

A collector hands over plain data (INFO as text, SLOWLOG replies, slab tables); build_detail()
turns it into frozen records, with per-command call rates between two refreshes computed here
once, not in a widget. Server text stays as the server sent it (bytes decoded with invalid
bytes shown as `\\xNN`); widgets show it through text_safety.plain().
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachetop.collectors.redis_parse import OWN_COMMANDS


@dataclass(frozen=True, slots=True)
class CommandStat:
    """One line of INFO commandstats, with its call rate since the previous refresh."""

    name: str
    calls: float | None
    usec: float | None
    usec_per_call: float | None
    rejected_calls: float | None
    failed_calls: float | None
    calls_per_s: float | None
    own: bool


@dataclass(frozen=True, slots=True)
class SlowlogEntry:
    id: int
    time: float
    duration_us: float
    args: tuple[str, ...]
    client: str
    client_name: str


@dataclass(frozen=True, slots=True)
class ClientEntry:
    """One CLIENT LIST line: who, since when, idle how long, holding how much memory, and its
    last command's name (never an argument). `commands` is `tot-cmds` where the server gives
    it (newer Redis), with its rate between two refreshes."""

    id: int
    addr: str
    name: str
    user: str
    db: int
    age_s: float | None
    idle_s: float | None
    flags: str
    last_cmd: str
    memory_bytes: float | None
    commands: float | None
    commands_per_s: float | None


@dataclass(frozen=True, slots=True)
class RedisDetail:
    """INFO all, keyspace, slowlog (None when refused) and commandstats with rates.

    `rates_over_s` is the time between the two refreshes the rates cover (None before the
    second refresh); `server_time_s` is the server's clock when INFO was read. `clients` is
    CLIENT LIST (None when refused), at most a few thousand of `clients_total`.
    """

    info: Mapping[str, str]
    keyspace: Mapping[int, tuple[int, int, int]]
    slowlog: tuple[SlowlogEntry, ...] | None
    commands: tuple[CommandStat, ...]
    rates_over_s: float | None
    server_time_s: float | None
    clients: tuple[ClientEntry, ...] | None = None
    clients_total: int = 0
    clients_refused: str = ""


@dataclass(frozen=True, slots=True)
class MemcachedDetail:
    stats: Mapping[str, str]
    settings: Mapping[str, str]
    slabs: Mapping[int, Mapping[str, float]]
    slab_totals: Mapping[str, float | None]


@dataclass(frozen=True, slots=True)
class EndpointDetail:
    convention: str
    families: str


Detail = RedisDetail | MemcachedDetail | EndpointDetail


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _text(value: Any, limit: int = 4096) -> str:
    if isinstance(value, bytes):
        return value[:limit].decode("utf-8", "backslashreplace")
    return str(value)[:limit]


def commandstats(info: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """`cmdstat_<name>: calls=..,usec=..,usec_per_call=..` lines as numbers per command."""
    out: dict[str, dict[str, float]] = {}
    for field, value in info.items():
        if not field.startswith("cmdstat_"):
            continue
        figures: dict[str, float] = {}
        for part in value.split(","):
            key, _, number = part.partition("=")
            parsed = _float(number)
            if parsed is not None:
                figures[key] = parsed
        out[field[len("cmdstat_"):]] = figures
    return out


def server_time_s(info: Mapping[str, str]) -> float | None:
    """The server's clock: `server_time_usec` (Redis >= 6.2), else whole uptime seconds."""
    usec = _float(info.get("server_time_usec"))
    return usec / 1e6 if usec is not None else _float(info.get("uptime_in_seconds"))


def call_rates(prev: Mapping[str, Mapping[str, float]], cur: Mapping[str, Mapping[str, float]],
               dt_s: float) -> dict[str, float | None]:
    """Calls per second of each command between two refreshes; None when unknown or reset."""
    rates: dict[str, float | None] = {}
    for name, figures in cur.items():
        before = prev.get(name, {}).get("calls", 0.0)
        calls = figures.get("calls")
        rates[name] = (None if calls is None or calls < before or dt_s <= 0
                       else (calls - before) / dt_s)
    return rates


def is_own(name: str) -> bool:
    return name in OWN_COMMANDS or name.split("|")[0] in OWN_COMMANDS


def redis_detail(raw: Mapping[str, Any], prev: RedisDetail | None) -> RedisDetail:
    """The record of one refresh; rates against `prev`, the previous refresh's record."""
    info = {str(k): str(v) for k, v in raw.get("info", {}).items()}
    stats = commandstats(info)
    now = server_time_s(info)
    rates: dict[str, float | None] = {}
    over: float | None = None
    if prev is not None and now is not None and prev.server_time_s is not None \
            and now > prev.server_time_s:
        over = now - prev.server_time_s
        rates = call_rates({c.name: {"calls": c.calls} for c in prev.commands
                            if c.calls is not None}, stats, over)
    commands = tuple(CommandStat(
        name=name, calls=f.get("calls"), usec=f.get("usec"), usec_per_call=f.get("usec_per_call"),
        rejected_calls=f.get("rejected_calls"), failed_calls=f.get("failed_calls"),
        calls_per_s=rates.get(name), own=is_own(name)) for name, f in stats.items())
    entries = raw.get("slowlog")
    slowlog = None if entries is None else tuple(SlowlogEntry(
        id=int(e.get("id", 0)), time=float(e.get("time", 0)),
        duration_us=float(e.get("duration_us", 0)),
        args=tuple(_text(a, 1024) for a in e.get("args", ())),
        client=_text(e.get("client", b""), 256), client_name=_text(e.get("client_name", b""), 256),
    ) for e in entries)
    keyspace = {int(db): (int(k), int(x), int(t)) for db, (k, x, t) in
                raw.get("keyspace", {}).items()}
    clients = raw.get("clients")
    return RedisDetail(info, keyspace, slowlog, commands, over, now,
                       None if clients is None else client_entries(
                           clients, prev.clients if prev is not None else None, over),
                       int(raw.get("clients_total", 0)), str(raw.get("clients_refused", "")))


def client_entries(raw: list[Mapping[str, str]], prev: tuple[ClientEntry, ...] | None,
                   over_s: float | None) -> tuple[ClientEntry, ...]:
    """CLIENT LIST fields as records; commands/s by client id against the previous refresh."""
    before = {c.id: c.commands for c in prev or () if c.commands is not None}
    entries = []
    for fields in raw:
        ident = int(_float(fields.get("id")) or 0)
        commands = _float(fields.get("tot-cmds"))
        old = before.get(ident)
        rate = (None if commands is None or old is None or over_s is None or over_s <= 0
                or commands < old else (commands - old) / over_s)
        entries.append(ClientEntry(
            id=ident, addr=fields.get("addr", ""), name=fields.get("name", ""),
            user=fields.get("user", ""), db=int(_float(fields.get("db")) or 0),
            age_s=_float(fields.get("age")), idle_s=_float(fields.get("idle")),
            flags=fields.get("flags", ""), last_cmd=fields.get("cmd", ""),
            memory_bytes=_float(fields.get("tot-mem")), commands=commands,
            commands_per_s=rate))
    return tuple(entries)


def memcached_detail(raw: Mapping[str, Any]) -> MemcachedDetail:
    return MemcachedDetail(
        stats={str(k): _text(v) for k, v in raw.get("stats", {}).items()},
        settings={str(k): _text(v) for k, v in raw.get("settings", {}).items()},
        slabs={int(k): {str(n): float(x) for n, x in v.items()}
               for k, v in raw.get("slabs", {}).items()},
        slab_totals={str(k): (None if v is None else float(v))
                     for k, v in raw.get("slab_totals", {}).items()})


def endpoint_detail(raw: Mapping[str, Any]) -> EndpointDetail:
    return EndpointDetail(str(raw.get("convention", "")), str(raw.get("families", "")))


def build_detail(kind: str, raw: Mapping[str, Any], prev: Detail | None) -> Detail | None:
    """The typed record for a collector's raw detail of target kind `kind`."""
    if kind == "redis":
        return redis_detail(raw, prev if isinstance(prev, RedisDetail) else None)
    if kind == "memcached":
        return memcached_detail(raw)
    if kind == "metrics":
        return endpoint_detail(raw)
    return None


# -- the wire form (engine -> front), plain JSON types -------------------------------------------

def detail_to_wire(detail: Detail) -> dict[str, Any]:
    if isinstance(detail, RedisDetail):
        return {"type": "redis", "info": dict(detail.info),
                "keyspace": [[db, *v] for db, v in detail.keyspace.items()],
                "slowlog": None if detail.slowlog is None else [
                    [e.id, e.time, e.duration_us, list(e.args), e.client, e.client_name]
                    for e in detail.slowlog],
                "commands": [[c.name, c.calls, c.usec, c.usec_per_call, c.rejected_calls,
                              c.failed_calls, c.calls_per_s, c.own] for c in detail.commands],
                "rates_over_s": detail.rates_over_s, "server_time_s": detail.server_time_s,
                "clients": None if detail.clients is None else [
                    [c.id, c.addr, c.name, c.user, c.db, c.age_s, c.idle_s, c.flags, c.last_cmd,
                     c.memory_bytes, c.commands, c.commands_per_s] for c in detail.clients],
                "clients_total": detail.clients_total, "clients_refused": detail.clients_refused}
    if isinstance(detail, MemcachedDetail):
        return {"type": "memcached", "stats": dict(detail.stats),
                "settings": dict(detail.settings),
                "slabs": [[k, dict(v)] for k, v in detail.slabs.items()],
                "slab_totals": dict(detail.slab_totals)}
    return {"type": "metrics", "convention": detail.convention, "families": detail.families}


def detail_from_wire(doc: Mapping[str, Any]) -> Detail | None:
    kind = doc.get("type")
    if kind == "redis":
        return RedisDetail(
            info={str(k): str(v) for k, v in doc["info"].items()},
            keyspace={int(db): (int(k), int(x), int(t)) for db, k, x, t in doc["keyspace"]},
            slowlog=None if doc["slowlog"] is None else tuple(
                SlowlogEntry(int(i), float(t), float(d), tuple(str(a) for a in args), str(c),
                             str(n)) for i, t, d, args, c, n in doc["slowlog"]),
            commands=tuple(CommandStat(str(n), calls, usec, per_call, rejected, failed, rate,
                                       bool(own))
                           for n, calls, usec, per_call, rejected, failed, rate, own
                           in doc["commands"]),
            rates_over_s=doc["rates_over_s"], server_time_s=doc["server_time_s"],
            clients=None if doc.get("clients") is None else tuple(
                ClientEntry(*row) for row in doc["clients"]),
            clients_total=int(doc.get("clients_total", 0)),
            clients_refused=str(doc.get("clients_refused", "")))
    if kind == "memcached":
        return MemcachedDetail(
            stats={str(k): str(v) for k, v in doc["stats"].items()},
            settings={str(k): str(v) for k, v in doc["settings"].items()},
            slabs={int(k): {str(n): float(x) for n, x in v.items()} for k, v in doc["slabs"]},
            slab_totals={str(k): v for k, v in doc["slab_totals"].items()})
    if kind == "metrics":
        return EndpointDetail(str(doc["convention"]), str(doc["families"]))
    return None
