"""Provides the Redis detail tabs: keyspace, top commands, slowlog, server sections, top
clients, raw INFO."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rich.columns import Columns
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from cachetop.detail import ClientEntry, RedisDetail
from cachetop.fleet import TargetFigures
from cachetop.formatting import age, clock, size
from cachetop.text_safety import plain
from cachetop.tui.widgets.instance_detail import (
    DetailPane,
    RawView,
    TablePane,
    kv_table,
    num,
    sync_rows,
)

DIM = "grey50"
_SLAVE = re.compile(r"slave\d+$")


def _info(detail: object) -> Mapping[str, str]:
    return detail.info if isinstance(detail, RedisDetail) else {}


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def as_of(info: Mapping[str, str]) -> str:
    """When the detail was read, by the server's clock (the tiles above are live)."""
    usec = _float(info.get("server_time_usec"))
    when = f" as of {clock(usec / 1e6)}" if usec else ""
    return f"  {when.strip()} (refreshed every ~10 s)" if when else "  (refreshed every ~10 s)"


class RedisKeyspace(TablePane):
    """Keys, expires and average TTL per database."""

    COLUMNS = (("db", "DB"), ("keys", "KEYS"), ("expires", "WITH TTL"), ("ttl", "AVG TTL"))

    def show(self, figures: TargetFigures) -> None:
        if not self.detail_changed(figures):
            return
        detail = figures.detail
        keyspace = detail.keyspace if isinstance(detail, RedisDetail) else {}
        rows = []
        for db, (keys, expires, ttl_ms) in sorted(keyspace.items()):
            rows.append((str(db), (Text(f"db{db}"), num(keys), num(expires),
                                   Text(age(ttl_ms / 1000) if ttl_ms else "—", justify="right"))))
        sync_rows(self.table(), rows)
        total = sum(keys for keys, _, _ in keyspace.values())
        note = Text(f"{total} keys in {len(keyspace)} db(s)" if keyspace else "no keys")
        note.append(f"{as_of(_info(figures.detail))}; avg TTL is Redis's sampled estimate",
                    style=DIM)
        self.note(note)


class RedisCommands(TablePane):
    """INFO commandstats: calls/s between two refreshes (rated in the engine), total calls,
    µs per call."""

    COLUMNS = (("cmd", "COMMAND"), ("rate", "CALLS/s"), ("calls", "CALLS"),
               ("usec", "µs/CALL"), ("share", "TIME %"), ("rejected", "REJECTED"),
               ("failed", "FAILED"))

    def show(self, figures: TargetFigures) -> None:
        if not self.detail_changed(figures):
            return
        detail = figures.detail
        commands = detail.commands if isinstance(detail, RedisDetail) else ()
        over = detail.rates_over_s if isinstance(detail, RedisDetail) else None
        total_usec = sum(c.usec or 0.0 for c in commands) or 1.0
        rows = []
        for c in sorted(commands, key=lambda c: (c.calls_per_s or 0.0, c.calls or 0.0),
                        reverse=True):
            style = DIM if c.own else ""
            rows.append((c.name, (
                Text(plain(c.name, 60) + (" *" if c.own else ""), style=style),
                num(c.calls_per_s, "{:.1f}", style), num(c.calls, style=style),
                num(c.usec_per_call, "{:.2f}", style),
                num((c.usec or 0.0) / total_usec * 100, "{:.1f}", style),
                num(c.rejected_calls, style=style), num(c.failed_calls, style=style),
            )))
        sync_rows(self.table(), rows)
        note = Text()
        if over is not None:
            note.append(f"calls/s over the last {over:.0f} s between two INFO refreshes")
        else:
            note.append("total calls since start; calls/s appear after the next refresh (~10 s)")
        note.append("   * grey: cachetop's own polling", style=DIM)
        self.note(note)


def _arg(arg: Any) -> str:
    text = plain(arg if isinstance(arg, bytes | str) else str(arg), 120)
    return f'"{text}"' if not text or any(ch.isspace() for ch in text) else text


class RedisSlowlog(TablePane):
    """SLOWLOG GET: newest first, arguments escaped."""

    COLUMNS = (("id", "ID"), ("when", "WHEN"), ("ms", "ms"), ("cmd", "COMMAND"),
               ("client", "CLIENT"), ("name", "NAME"))

    def show(self, figures: TargetFigures) -> None:
        if not self.detail_changed(figures):
            return
        detail = figures.detail
        entries = detail.slowlog if isinstance(detail, RedisDetail) else None
        rows = []
        for entry in entries or ():
            command = " ".join(_arg(a) for a in entry.args)
            rows.append((str(entry.id), (
                num(float(entry.id)),
                Text(f"{clock(entry.time)} ({age(time.time() - entry.time)} ago)"),
                num(entry.duration_us / 1000, "{:.2f}"),
                Text(plain(command, 300)),
                Text(plain(entry.client, 60)),
                Text(plain(entry.client_name, 60)))))
        sync_rows(self.table(), rows)
        if entries is None:
            note = Text("SLOWLOG unavailable (see the ⚠ line above)", style="yellow")
        else:
            note = Text(f"{len(rows)} newest entries, newest first" if rows else "slowlog empty")
            note.append("  (commands slower than slowlog-log-slower-than, 10 ms by default; "
                        "arguments shown escaped)", style=DIM)
        self.note(note)


CLIENT_ORDERS = ("memory", "idle", "commands")
CLIENTS_SHOWN = 50
OWN_CLIENT = "cachetop"  # the name cachetop's own connection gives itself (CLIENT SETNAME)


def client_order_key(order: str) -> Callable[[ClientEntry], tuple[int, float]]:
    """Sort key for the top clients: most memory, longest idle, most commands/s first; an
    unknown figure last."""
    def key(c: ClientEntry) -> tuple[int, float]:
        value = {"memory": c.memory_bytes, "idle": c.idle_s,
                 "commands": c.commands_per_s}.get(order)
        return (1, 0.0) if value is None else (0, -value)

    return key


class RedisClients(TablePane):
    """CLIENT LIST: the top clients by memory, idle time or commands/s. Who and what state,
    never what they sent; names shown literally (escaped)."""

    COLUMNS = (("name", "NAME"), ("addr", "ADDRESS"), ("user", "USER"), ("db", "DB"),
               ("age", "AGE"), ("idle", "IDLE"), ("cmd", "LAST CMD"), ("mem", "MEMORY"),
               ("rate", "CMDS/s"))

    order = "memory"

    def cycle_order(self) -> None:
        self.order = CLIENT_ORDERS[(CLIENT_ORDERS.index(self.order) + 1) % len(CLIENT_ORDERS)]
        self._draw()

    def show(self, figures: TargetFigures) -> None:
        if self.detail_changed(figures):
            self._draw()

    def _draw(self) -> None:
        detail = self._detail
        clients = detail.clients if isinstance(detail, RedisDetail) else None
        total = detail.clients_total if isinstance(detail, RedisDetail) else 0
        top = sorted(clients or (), key=client_order_key(self.order))[:CLIENTS_SHOWN]
        rows = []
        for c in top:
            style = DIM if c.name == OWN_CLIENT else ""
            name = Text(plain(c.name, 60), style=style) if c.name else Text("(no name)", DIM)
            rows.append((str(c.id), (
                name, Text(plain(c.addr, 60), style=style), Text(plain(c.user, 40), style=style),
                num(float(c.db), style=style),
                Text(age(c.age_s) if c.age_s is not None else "—", style=style,
                     justify="right"),
                Text(age(c.idle_s) if c.idle_s is not None else "—", style=style,
                     justify="right"),
                Text(plain(c.last_cmd, 40), style=style),
                Text(size(c.memory_bytes), style=style, justify="right"),
                num(c.commands_per_s, "{:.1f}", style))))
        sync_rows(self.table(), rows)
        if clients is None:
            refused = detail.clients_refused if isinstance(detail, RedisDetail) else ""
            note = Text(f"{plain(refused, 200)} (grant +client|list to see clients)" if refused
                        else "no CLIENT LIST yet", style="yellow" if refused else DIM)
        else:
            note = Text(f"top {len(top)} of {total} clients by {self.order}")
            others = [o for o in CLIENT_ORDERS if o != self.order]
            note.append(f"  (o: by {others[0]}, then {others[1]}; grey: cachetop's own; "
                        "CMDS/s needs a Redis that reports tot-cmds)", style=DIM)
            note.append(as_of(_info(detail)), style=DIM)
        self.note(note)


def _pick(info: Mapping[str, str], names: Iterable[str]) -> list[tuple[str, str | Text]]:
    return [(name, info[name]) for name in names if name in info]


def _flag(info: Mapping[str, str], name: str, good: str) -> list[tuple[str, str | Text]]:
    if name not in info:
        return []
    value = info[name]
    return [(name, Text(plain(value, 80), style="" if value == good else "bold red"))]


def _when(info: Mapping[str, str], name: str) -> list[tuple[str, str | Text]]:
    stamp = _float(info.get(name))
    if not stamp:
        return []
    return [(name, Text(f"{clock(stamp)} ({age(time.time() - stamp)} ago)"))]


def server_sections(info: Mapping[str, str]) -> Columns:
    """Clients, memory, replication, persistence and server facts as side-by-side tables."""
    uptime = _float(info.get("uptime_in_seconds"))
    server = [*_pick(info, ("redis_version", "redis_mode", "os", "process_id", "tcp_port")),
              *([("uptime", age(uptime))] if uptime is not None else []),
              *_pick(info, ("executable", "config_file"))]
    clients = _pick(info, ("connected_clients", "blocked_clients", "tracking_clients",
                           "clients_in_timeout_table", "pubsub_clients", "watching_clients",
                           "maxclients", "total_connections_received", "rejected_connections",
                           "client_recent_max_input_buffer", "client_recent_max_output_buffer"))
    memory = _pick(info, ("used_memory_human", "used_memory_rss_human", "used_memory_peak_human",
                          "maxmemory_human", "maxmemory_policy", "mem_fragmentation_ratio",
                          "total_system_memory_human", "evicted_keys", "expired_keys"))
    if info.get("maxmemory") == "0":
        memory = [(k, "0 (no limit)" if k == "maxmemory_human" else v) for k, v in memory]
    replication = [*_pick(info, ("role", "connected_slaves")),
                   *[(k, v) for k, v in info.items() if _SLAVE.match(k)],
                   *_pick(info, ("master_host", "master_port")),
                   *_flag(info, "master_link_status", "up"),
                   *_pick(info, ("master_last_io_seconds_ago", "master_sync_in_progress",
                                 "master_link_down_since_seconds", "slave_read_only",
                                 "replica_read_only", "master_repl_offset", "repl_backlog_active",
                                 "master_failover_state"))]
    loading = info.get("loading")
    persistence = [
        *([("loading", Text(plain(loading, 10), style="bold yellow" if loading != "0" else ""))]
          if loading is not None else []),
        *_pick(info, ("loading_loaded_perc", "loading_eta_seconds", "async_loading",
                      "rdb_changes_since_last_save", "rdb_bgsave_in_progress")),
        *_when(info, "rdb_last_save_time"),
        *_flag(info, "rdb_last_bgsave_status", "ok"),
        *_pick(info, ("rdb_last_bgsave_time_sec", "aof_enabled", "aof_rewrite_in_progress",
                      "aof_rewrite_scheduled")),
        *_flag(info, "aof_last_bgrewrite_status", "ok"),
        *_flag(info, "aof_last_write_status", "ok"),
    ]
    tables = [kv_table(title, rows) for title, rows in (
        ("Clients", clients), ("Replication", replication), ("Persistence", persistence),
        ("Memory", memory), ("Server", server)) if rows]
    return Columns(tables, padding=(1, 4))


class RedisServerInfo(DetailPane):
    """Clients, replication, persistence, memory and server sections of INFO."""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(classes="server-sections")

    def show(self, figures: TargetFigures) -> None:
        if not self.detail_changed(figures):
            return
        info = _info(figures.detail)
        body = server_sections(info) if info else Text("no INFO yet", style=DIM)
        self.query_one(".server-sections", Static).update(body)


def info_lines(detail: object) -> list[str]:
    return [f"{name}:{value}" for name, value in _info(detail).items()]


def redis_panes() -> list[tuple[str, DetailPane]]:
    """(tab title, pane) for a Redis target, after the overview."""
    return [("Keyspace", RedisKeyspace(id="redis-keyspace")),
            ("Commands", RedisCommands(id="redis-commands")),
            ("Slowlog", RedisSlowlog(id="redis-slowlog")),
            ("Server", RedisServerInfo(id="redis-server")),
            ("Clients", RedisClients(id="redis-clients")),
            ("Raw INFO", RawView(info_lines, "search INFO: type a substring, e.g. mem or repl",
                                 id="raw"))]

