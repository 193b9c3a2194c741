"""Provides the fleet table's cells: rich Text (never markup) for one row, by column key.

Pure functions of the figures. The table calls them only for the rows it paints (about 40 a
frame), so their cost does not grow with the fleet.
"""

from __future__ import annotations

from rich.text import Text

from cachetop.config import Thresholds
from cachetop.fleet import FleetFigures, TargetFigures
from cachetop.formatting import DASH, count, millis, percent, rate, size
from cachetop.text_safety import plain
from cachetop.tui.table_model import COLUMN_KEYS, TableRow, latency_of

__all__ = ["COLUMN_KEYS", "Cells", "group_cells", "latency_of", "role_text", "row_cells",
           "status_text", "target_cells"]

Cells = dict[str, Text]

STATUS_STYLE = {
    "up": ("●", "green"), "restarted": ("↺", "yellow"), "loading": ("…", "cyan"),
    "busy": ("■", "magenta"), "pending": ("◌", "grey50"), "down": ("✖", "bold red"),
    "timeout": ("✖", "bold magenta"), "auth-failed": ("✖", "bold red"),
    "bad-data": ("✖", "red"), "too-large": ("✖", "red"), "tls-error": ("✖", "bold red"),
}
KIND_LABEL = {"redis": "redis", "memcached": "memc", "metrics": "prom"}
BAD = "bold red"
WARN = "yellow"
DIM = "grey50"


def status_text(f: TargetFigures) -> Text:
    symbol, style = STATUS_STYLE.get(f.status, ("?", "red"))
    label = f.status
    if f.status == "loading" and f.loading_percent is not None:
        label = f"loading {f.loading_percent:.0f}%"
    elif f.status == "pending":
        label = "connecting…"  # drawn before the first poll (or before the engine is up)
    elif f.status == "up" and f.degraded:
        label = "degraded"
    text = Text(f"{symbol} {label}", style=style)
    if f.degraded and f.live:
        text.append(" ⚠", style=WARN)
    if f.tls_insecure:
        text.append(" !tls", style=BAD)
    return text


ROLE_WIDTH = 23  # the ROLE column's text (table_model.COLUMNS: 24 with its blank)
REPLICA_ROLES = ("slave", "replica")


def role_text(f: TargetFigures, master: str | None, replicas: int) -> Text:
    """`master` (with its replicas in the fleet), or `replica of NAME 2s`: the master by its
    target name when the fleet has it (else as the replica names it) and how long ago the
    master last spoke; `link down` in red when the replica lost it."""
    if f.role not in REPLICA_ROLES:
        if f.role != "master":
            return Text(plain(f.role, 20), style=DIM)
        text = Text("master", style="grey70")
        if replicas:
            text.append(f" · {replicas} replica{'s' if replicas != 1 else ''}", style="grey70")
        return text
    if f.master_link and f.master_link != "up":
        tail = Text(" link down", style=BAD)
    elif f.replication_lag_s is not None:
        lag = f.replication_lag_s
        tail = Text(f" {lag:.0f}s", style=WARN if lag > 10 else "grey70")
    else:
        tail = Text("")
    who = plain(master if master is not None else (f.master_address or "?"), 60)
    room = ROLE_WIDTH - len("replica of ") - tail.cell_len
    if len(who) > room:
        who = who[:max(1, room - 1)] + "…"
    text = Text("replica of ", style="grey70")
    text.append(who, style="bold" if master is not None else "")
    text.append_text(tail)
    return text


def _cell(value: str, style: str = "", *, bad: bool = False, warn: bool = False) -> Text:
    return Text(value, style=BAD if bad else WARN if warn else style, justify="right")


def name_text(name: str, dim: str, *, child: bool = False, badge: str = "") -> Text:
    """The name, after the target's protection badge (`prod`, `ro`): a badge comes first so
    no long name can push it out of the column."""
    text = Text("  └ " if child else "", style=dim)
    if badge:
        text.append(badge, style="bold white on dark_red" if "prod" in badge
                    else "bold black on yellow")
        text.append(" ")
    text.append(plain(name, 60), style=dim)
    return text


def target_cells(f: TargetFigures, thresholds: Thresholds, *, probe_only: bool = False,
                 child: bool = False, role: Text | None = None, badge: str = "") -> Cells:
    """One row's cells. A failing target shows its last good figures, greyed."""
    shown, dim = f, ""
    if not f.live and f.last_good is not None:
        shown, dim = f.last_good, DIM
    latency, source = latency_of(shown, probe_only)
    p99_ms = latency.p99_s * 1000 if latency.p99_s is not None else None
    hit = shown.hit_ratio
    return {
        "name": name_text(f.name, dim, child=child, badge=badge),
        "kind": Text(KIND_LABEL.get(f.kind, f.kind) if not child else "cache",
                     style=dim or "grey70"),
        "status": status_text(f),
        "role": role if role is not None else Text(""),
        "ops": _cell(rate(shown.ops_per_s), dim),
        "hit": _cell(percent(hit), dim, bad=not dim and hit is not None
                     and hit < thresholds.hit_ratio_below),
        "p50": _cell(millis(latency.p50_s), dim),
        "p95": _cell(millis(latency.p95_s), dim),
        "p99": _cell(millis(latency.p99_s), dim, bad=not dim and p99_ms is not None
                     and p99_ms > thresholds.p99_ms_above),
        "src": Text(source, style=dim or "grey70"),
        "mem": _cell(size(shown.memory_used_bytes), dim),
        "limit": _cell(size(shown.memory_max_bytes) if shown.memory_max_bytes else
                       ("none" if shown.memory_used_bytes is not None and f.kind == "redis"
                        else DASH), dim or ("grey50" if not shown.memory_max_bytes else "")),
        "mem_pct": _memory_percent(shown, thresholds, dim),
        "evict": _cell(rate(shown.evictions_per_s), dim, warn=not dim and shown.evictions_per_s
                       is not None and shown.evictions_per_s > thresholds.evictions_per_s_above),
        "exp": _cell(rate(shown.expirations_per_s), dim),
        "conn": _cell(count(shown.connections), dim),
        "keys": _cell(count(shown.keys), dim),
    }


def _memory_percent(f: TargetFigures, thresholds: Thresholds, dim: str) -> Text:
    """Used / limit. With no limit (Redis maxmemory 0) there is no percentage to show: a share
    of the host's memory read as noise in this column (the instance screen shows it)."""
    ratio = f.memory_ratio
    if ratio is not None:
        return _cell(percent(ratio, 0), dim,
                     bad=not dim and ratio > thresholds.memory_ratio_above)
    return _cell(DASH, dim or DIM)


def more_cells(f: TargetFigures) -> Cells:
    """The caches that got no row of their own, summed: traffic, hit ratio, memory, keys."""
    style = "italic grey70"
    return {
        "name": Text("  └ " + plain(f.name, 60), style=style),
        "kind": Text("more", style=DIM),
        "status": Text(""), "role": Text(""),
        "ops": _cell(rate(f.ops_per_s), style), "hit": _cell(percent(f.hit_ratio), style),
        "p50": _cell(""), "p95": _cell(""), "p99": _cell(""), "src": Text(""),
        "mem": _cell(size(f.memory_used_bytes), style), "limit": _cell(""),
        "mem_pct": _cell(""), "evict": _cell(rate(f.evictions_per_s), style),
        "exp": _cell(rate(f.expirations_per_s), style), "conn": _cell(""),
        "keys": _cell(count(f.keys), style),
    }


def group_cells(name: str, figures: FleetFigures, thresholds: Thresholds, *,
                collapsed: bool = False) -> Cells:
    """A group's totals; its sign says whether Enter shows (▸) or hides (▾) its rows."""
    hit = figures.hit_ratio
    return {
        "name": Text(f"{'▸' if collapsed else '▾'} {plain(name or '(no group)', 40)}",
                     style="bold"),
        "kind": Text("group", style="grey70"),
        "status": Text(f"{figures.targets_up}/{figures.targets_total} up",
                       style="green" if figures.targets_up == figures.targets_total else BAD),
        "role": Text(""),
        "ops": _cell(rate(figures.ops_per_s), "bold"),
        "hit": _cell(percent(hit), "bold", bad=hit is not None
                     and hit < thresholds.hit_ratio_below),
        "p50": _cell(""), "p95": _cell(""),
        "p99": _cell(millis(figures.worst_p99_s), "bold"),
        "src": Text("worst", style="grey70"),  # in its own column, apart from the figure
        "mem": _cell(size(figures.memory_used_bytes), "bold"), "limit": _cell(""),
        "mem_pct": _cell(""), "evict": _cell(rate(figures.evictions_per_s), "bold"),
        "exp": _cell(""), "conn": _cell(""), "keys": _cell(""),
    }


def row_cells(row: TableRow, thresholds: Thresholds, probe_only: bool,
              role: Text | None = None, badge: str = "") -> Cells:
    """The cells of any row of the model, by its kind."""
    if row.kind == "group" and row.totals is not None:
        return group_cells(row.label, row.totals, thresholds, collapsed=row.collapsed)
    assert row.figures is not None
    if row.kind == "more":
        return more_cells(row.figures)
    return target_cells(row.figures, thresholds, probe_only=probe_only,
                        child=row.kind == "child", role=role, badge=badge)
