"""Provides the memcached detail tabs: slab classes, lifetime figures, settings, raw stats."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.columns import Columns
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from cachetop.detail import MemcachedDetail
from cachetop.fleet import TargetFigures
from cachetop.formatting import age, clock, percent, size
from cachetop.tui.widgets.instance_detail import (
    DetailPane,
    RawView,
    TablePane,
    kv_table,
    num,
    sync_rows,
)

DIM = "grey50"
DEFAULT_PAGE_BYTES = 1024 * 1024  # memcached's slab page is item_size_max, 1 MB by default


def _part(detail: object, name: str) -> Mapping[str, Any]:
    part = getattr(detail, name, None) if isinstance(detail, MemcachedDetail) else None
    return part if isinstance(part, Mapping) else {}


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def page_bytes(settings: Mapping[str, str]) -> float:
    return _float(settings.get("item_size_max")) or DEFAULT_PAGE_BYTES


def slab_rows(slabs: Mapping[int, Mapping[str, float]],
              page: float) -> list[tuple[str, tuple[Text, ...]]]:
    """One row per slab class; memory both as allocated pages and as chunks in use."""
    rows = []
    for slab_id in sorted(slabs):
        s = slabs[slab_id]
        chunk, used = s.get("chunk_size"), s.get("used_chunks")
        pages = s.get("total_pages")
        evicted = s.get("evicted")
        oom = s.get("outofmemory")
        rows.append((str(slab_id), (
            num(slab_id), Text(size(chunk), justify="right"), num(s.get("number")),
            Text(f"{used or 0:.0f}/{s.get('total_chunks', 0):.0f}", justify="right"),
            Text(size(pages * page) if pages is not None else "—", justify="right"),
            Text(size(used * chunk) if used is not None and chunk else "—", justify="right"),
            num(evicted, style="yellow" if evicted else ""),
            Text(age(s["evicted_time"]) if s.get("evicted_time") else "—", justify="right"),
            num(oom, style="bold red" if oom else ""),
            Text(age(s["age"]) if s.get("age") else "—", justify="right"),
        )))
    return rows


class MemcachedSlabs(TablePane):
    """Per slab class: chunk size, items, memory, evictions, eviction age, out-of-memory."""

    COLUMNS = (("slab", "SLAB"), ("chunk", "CHUNK"), ("items", "ITEMS"),
               ("chunks", "USED/TOTAL CHUNKS"), ("pages_mem", "PAGES×PAGE"),
               ("used_mem", "CHUNKS×SIZE"), ("evicted", "EVICTED"), ("evict_age", "EVICT AGE"),
               ("oom", "OOM"), ("age", "OLDEST"))

    def show(self, figures: TargetFigures) -> None:
        if not self.detail_changed(figures):
            return
        slabs = figures.detail.slabs if isinstance(figures.detail, MemcachedDetail) else {}
        page = page_bytes(_part(figures.detail, "settings"))
        sync_rows(self.table(), slab_rows(slabs, page))
        totals = _part(figures.detail, "slab_totals")
        note = Text(f"{len(slabs)} slab classes in use")
        if totals.get("total_malloced") is not None:
            note.append(f", {size(totals['total_malloced'])} allocated")
        note.append(f"   PAGES×PAGE = total_pages × {size(page)} (allocated); "
                    "CHUNKS×SIZE = used_chunks × chunk_size (in use); "
                    "EVICT AGE = last evicted item's idle time", style=DIM)
        self.note(note)


def lifetime_sections(stats: Mapping[str, str], totals: Mapping[str, Any]) -> Columns:
    """Since-start figures: items, lookups and their hit ratio, evictions, connections."""
    hits, misses = _float(stats.get("get_hits")), _float(stats.get("get_misses"))
    lookups = (hits or 0.0) + (misses or 0.0)
    ratio = (hits or 0.0) / lookups if lookups > 0 else None
    uptime = _float(stats.get("uptime"))

    def pick(*names: str) -> list[tuple[str, str | Text]]:
        return [(name, stats[name]) for name in names if name in stats]

    lifetime = [*([("uptime", age(uptime))] if uptime is not None else []),
                *pick("version", "total_items", "curr_items", "get_hits", "get_misses"),
                ("hit ratio (lifetime)", Text(percent(ratio), style="bold")),
                *pick("get_expired", "get_flushed", "cmd_get", "cmd_set", "cmd_touch",
                      "cmd_flush")]
    removals = pick("evictions", "evicted_unfetched", "evicted_active", "reclaimed",
                    "expired_unfetched", "crawler_reclaimed", "store_too_large",
                    "store_no_memory")
    memory = [(name, size(_float(stats[name])))
              for name in ("bytes", "limit_maxbytes") if name in stats]
    memory += [(name, size(_float(totals[name])) if name == "total_malloced" else
                f"{totals[name]:.0f}") for name in ("total_malloced", "active_slabs")
               if totals.get(name) is not None]
    connections = pick("curr_connections", "max_connections", "total_connections",
                       "rejected_connections", "listen_disabled_num", "conn_yields", "threads")
    tables = [kv_table(title, rows) for title, rows in (
        ("Lifetime", lifetime), ("Evictions & expiry", removals), ("Memory", memory),
        ("Connections", connections)) if rows]
    return Columns(tables, padding=(1, 4))


class MemcachedLifetime(DetailPane):
    """Figures since the server started."""

    def compose(self) -> ComposeResult:
        yield Static(classes="pane-note")
        with VerticalScroll():
            yield Static(classes="lifetime")

    def show(self, figures: TargetFigures) -> None:
        if not self.detail_changed(figures):
            return
        stats = _part(figures.detail, "stats")
        if not stats:
            self.note(Text("no stats yet", style=DIM))
            return
        server_time = _float(stats.get("time"))
        note = Text("since the server started")
        if server_time:
            note.append(f", as of {clock(server_time)} (refreshed every ~10 s; the tiles above "
                        "are live)", style=DIM)
        self.note(note)
        self.query_one(".lifetime", Static).update(
            lifetime_sections(stats, _part(figures.detail, "slab_totals")))


def settings_lines(detail: Any) -> list[str]:
    return [f"{name} {value}" for name, value in _part(detail, "settings").items()]


def stats_lines(detail: Any) -> list[str]:
    return [f"{name} {value}" for name, value in _part(detail, "stats").items()]


def memcached_panes() -> list[tuple[str, DetailPane]]:
    """(tab title, pane) for a memcached target, after the overview."""
    return [("Slabs", MemcachedSlabs(id="mc-slabs")),
            ("Lifetime", MemcachedLifetime(id="mc-lifetime")),
            ("Settings", RawView(settings_lines, "search settings: type a substring",
                                 id="mc-settings")),
            ("Raw stats", RawView(stats_lines, "search stats: type a substring", id="raw"))]
