"""Provides the fleet table's rows as data: cells (rich Text, never markup) and sort values.

Pure functions of the figures, so the table widget only places what this module decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from cachetop.config import Thresholds
from cachetop.fleet import FleetFigures, Latency, TargetFigures
from cachetop.formatting import DASH, count, millis, percent, rate, size
from cachetop.text_safety import plain

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "NAME"), ("kind", "KIND"), ("status", "STATUS"), ("ops", "OPS/s"),
    ("hit", "HIT%"), ("p50", "P50ms"), ("p95", "P95ms"), ("p99", "P99ms"), ("src", "LAT"),
    ("mem", "MEM"), ("limit", "LIMIT"), ("mem_pct", "MEM%"), ("evict", "EVICT/s"),
    ("exp", "EXP/s"), ("conn", "CONN"), ("keys", "KEYS"),
)
COLUMN_KEYS = tuple(key for key, _ in COLUMNS)

STATUS_STYLE = {
    "up": ("●", "green"), "restarted": ("↺", "yellow"), "loading": ("…", "cyan"),
    "busy": ("■", "magenta"), "pending": ("…", "grey50"), "down": ("✖", "bold red"),
    "timeout": ("✖", "bold magenta"), "auth-failed": ("✖", "bold red"),
    "bad-data": ("✖", "red"), "too-large": ("✖", "red"), "tls-error": ("✖", "bold red"),
}
KIND_LABEL = {"redis": "redis", "memcached": "memc", "metrics": "prom",
              "redis-cluster": "clust", "redis-sentinel": "sntl"}
# Short forms that fit the KIND column: the family's engines and a topology node's role.
ENGINE_LABEL = {"valkey": "valkey", "dragonfly": "dfly", "keydb": "keydb"}
ROLE_LABEL = {"primary": "prim", "replica": "repl"}
BAD = "bold red"
WARN = "yellow"


class NameCell(Text):
    """The name cell carries its row key, so the table can be sorted by any figure."""

    row_key: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    cells: tuple[Text, ...]
    figures: TargetFigures | None


def latency_of(f: TargetFigures, probe_only: bool) -> tuple[Latency, str]:
    """The latency a row shows: the server's where it has one, else the probe's (or forced)."""
    if not probe_only and f.server_latency.known:
        return f.server_latency, "srv" if f.server_latency.source == "interval" else "srv*"
    if f.probe_latency.known:
        return f.probe_latency, "probe"
    return f.probe_latency, DASH


def status_text(f: TargetFigures) -> Text:
    symbol, style = STATUS_STYLE.get(f.status, ("?", "red"))
    label = f.status
    if f.status == "loading" and f.loading_percent is not None:
        label = f"loading {f.loading_percent:.0f}%"
    elif f.status == "up" and f.degraded:
        label = "degraded"
    text = Text(f"{symbol} {label}", style=style)
    if f.degraded and f.live:
        text.append(" ⚠", style=WARN)
    if f.tls_insecure:
        text.append(" !tls", style=BAD)
    topology = f.topology or {}
    if f.live and "nodes_total" in topology:  # a cluster or Sentinel set: nodes answering
        up, total = topology.get("nodes_up", 0), topology.get("nodes_total", 0)
        text.append(f" {up}/{total}", style="green" if up == total else BAD)
    return text


def kind_label(f: TargetFigures) -> str:
    """KIND: the Redis family member by its own name (valkey, dragonfly, keydb)."""
    if f.kind == "redis" and f.engine and f.engine != "redis":
        return ENGINE_LABEL.get(f.engine, f.engine)
    return KIND_LABEL.get(f.kind, f.kind)


def child_kind(f: TargetFigures) -> str:
    """A child row's KIND: a topology node's role (prim, repl), else `cache`."""
    role = (f.topology or {}).get("role")
    return ROLE_LABEL.get(str(role), str(role)) if role else "cache"


def _cell(value: str, style: str = "", *, bad: bool = False, warn: bool = False) -> Text:
    return Text(value, style=BAD if bad else WARN if warn else style, justify="right")


def target_cells(f: TargetFigures, thresholds: Thresholds, *, probe_only: bool = False,
                 child: bool = False) -> tuple[Text, ...]:
    """One row's cells. A failing target shows its last good figures, greyed."""
    shown, dim = f, ""
    if not f.live and f.last_good is not None:
        shown, dim = f.last_good, "grey50"
    latency, source = latency_of(shown, probe_only)
    p99_ms = latency.p99_s * 1000 if latency.p99_s is not None else None
    name = NameCell(("  └ " if child else "") + plain(f.name, 60), style=dim)
    name.row_key = ""
    hit = shown.hit_ratio
    return (
        name,
        Text(kind_label(f) if not child else child_kind(f),
             style=dim or "grey70"),
        status_text(f),
        _cell(rate(shown.ops_per_s), dim),
        _cell(percent(hit), dim, bad=not dim and hit is not None
              and hit < thresholds.hit_ratio_below),
        _cell(millis(latency.p50_s), dim),
        _cell(millis(latency.p95_s), dim),
        _cell(millis(latency.p99_s), dim, bad=not dim and p99_ms is not None
              and p99_ms > thresholds.p99_ms_above),
        Text(f" {source}", style=dim or "grey70"),
        _cell(size(shown.memory_used_bytes), dim),
        _cell(size(shown.memory_max_bytes) if shown.memory_max_bytes else
              ("none" if shown.memory_used_bytes is not None and f.kind == "redis"
               else DASH), dim or ("grey50" if not shown.memory_max_bytes else "")),
        _memory_percent(shown, thresholds, dim),
        _cell(rate(shown.evictions_per_s), dim, warn=not dim and shown.evictions_per_s
              is not None and shown.evictions_per_s > thresholds.evictions_per_s_above),
        _cell(rate(shown.expirations_per_s), dim),
        _cell(count(shown.connections), dim),
        _cell(count(shown.keys), dim),
    )


def _memory_percent(f: TargetFigures, thresholds: Thresholds, dim: str) -> Text:
    """Used / limit; with no limit (Redis maxmemory 0), used / host memory, flagged with '*'."""
    ratio = f.memory_ratio
    if ratio is not None:
        return _cell(percent(ratio, 0), dim,
                     bad=not dim and ratio > thresholds.memory_ratio_above)
    if f.memory_used_bytes is not None and f.memory_system_bytes:
        return _cell(percent(f.memory_used_bytes / f.memory_system_bytes, 0) + "*", "grey50")
    return _cell(DASH, dim)


def group_cells(name: str, figures: FleetFigures, thresholds: Thresholds) -> tuple[Text, ...]:
    hit = figures.hit_ratio
    head = NameCell(f"▾ {plain(name or '(no group)', 40)}", style="bold")
    cells: list[Text] = [
        head, Text("group", style="grey70"),
        Text(f"{figures.targets_up}/{figures.targets_total} up",
             style="green" if figures.targets_up == figures.targets_total else BAD),
        _cell(rate(figures.ops_per_s), "bold"),
        _cell(percent(hit), "bold", bad=hit is not None and hit < thresholds.hit_ratio_below),
        _cell(""), _cell(""), _cell(millis(figures.worst_p99_s), "bold"), Text("worst"),
        _cell(size(figures.memory_used_bytes), "bold"), _cell(""), _cell(""),
        _cell(rate(figures.evictions_per_s), "bold"), _cell(""), _cell(""), _cell(""),
    ]
    return tuple(cells)


def sort_value(f: TargetFigures | None, column: str, probe_only: bool) -> tuple[int, object]:
    """A comparable value for a column; unknown values sort last whatever the direction."""
    if f is None:
        return (1, 0)
    shown = f if f.live or f.last_good is None else f.last_good
    latency, _ = latency_of(shown, probe_only)
    values: dict[str, object] = {
        "name": f.name.lower(), "kind": f.kind, "status": f.status,
        "ops": shown.ops_per_s, "hit": shown.hit_ratio, "p50": latency.p50_s,
        "p95": latency.p95_s, "p99": latency.p99_s, "src": "",
        "mem": shown.memory_used_bytes, "limit": shown.memory_max_bytes,
        "mem_pct": shown.memory_ratio, "evict": shown.evictions_per_s,
        "exp": shown.expirations_per_s, "conn": shown.connections, "keys": shown.keys,
    }
    value = values.get(column)
    return (1, 0) if value is None else (0, value)


def matches(f: TargetFigures, needle: str) -> bool:
    """The `/` filter: a case-insensitive substring of name, kind, group, status or address."""
    if not needle:
        return True
    needle = needle.lower()
    return any(needle in field.lower() for field in (f.name, f.kind, f.group, f.status,
                                                      f.address))
