"""Provides the instance screen's title line and stat tiles as rich renderables (never markup)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

from rich.console import Console, ConsoleOptions, RenderableType
from rich.text import Text

from cachetop.config import Thresholds
from cachetop.fleet import Latency, TargetFigures
from cachetop.formatting import DASH, age, clock, count, percent, rate, size
from cachetop.text_safety import plain
from cachetop.tui.rows import BAD, WARN, status_text

DIM = "grey50"


def shown_figures(t: TargetFigures) -> tuple[TargetFigures, bool]:
    """The figures to show and whether they are stale (the last good ones of a failing target)."""
    if not t.live and t.last_good is not None:
        return t.last_good, True
    return t, False


def title_text(t: TargetFigures, now: float | None = None, badges: Text | None = None) -> Text:
    """Name, its badges (prod, read-only), kind (the Redis family member: valkey, dragonfly,
    keydb), address, version, role, status and its reason; degraded reasons below."""
    now = time.time() if now is None else now
    line = Text()
    line.append(plain(t.name, 80), style="bold")
    if badges is not None:
        line.append_text(badges)
    engine = t.engine or (t.last_good.engine if t.last_good is not None else "")
    line.append(f"  {engine if t.kind == 'redis' and engine not in ('', 'redis') else t.kind}",
                style="grey70")
    if t.address != t.name:
        line.append(f"  {plain(t.address, 120)}", style="grey70")
    shown, stale = shown_figures(t)
    if shown.version:
        line.append(f"  v{plain(shown.version, 40)}", style="grey70")
    if shown.role:
        line.append(f"  {plain(shown.role, 20)}", style="grey70")
    line.append("  ")
    line.append_text(status_text(t))
    line.append(f" for {age(now - t.status_since)}", style=DIM)
    if t.error:
        line.append(f" — {plain(t.error, 200)}", style=BAD if not t.live else WARN)
    if stale and t.last_success is not None:
        line.append(f"  · greyed: last good figures from {clock(t.last_success)} "
                    f"({age(now - t.last_success)} ago)", style=DIM)
    elif not t.live and t.last_good is None:
        line.append("  · no figures yet", style=DIM)
    for reason in t.degraded:
        line.append("\n⚠ ", style=WARN)
        line.append(plain(reason, 200), style=WARN)
    return line


def _short(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def latency_unit(seconds: Sequence[float | None]) -> tuple[str, float]:
    """µs when the largest figure is under a millisecond, else ms: (unit, factor from s)."""
    known = [s for s in seconds if s is not None and math.isfinite(s)]
    return ("µs", 1e6) if known and max(known) < 1e-3 else ("ms", 1e3)


def _latency(lat: Latency) -> str:
    if not lat.known:
        return DASH
    figures = (lat.p50_s, lat.p95_s, lat.p99_s)
    unit, factor = latency_unit(figures)
    return "/".join(DASH if v is None else _short(v * factor) for v in figures) + f" {unit}"


class Flow:
    """Tiles laid out left to right, wrapping at the width the widget renders at; when the full
    tiles need more than `max_lines`, their compact forms (without notes) are used."""

    def __init__(self, items: Sequence[Text], compact: Sequence[Text], gap: int = 3,
                 max_lines: int = 2) -> None:
        self.items, self.compact, self.gap, self.max_lines = items, compact, gap, max_lines

    def lines(self, items: Sequence[Text], width: int) -> list[Text]:
        lines: list[Text] = []
        line = Text()
        for item in items:
            if line.cell_len and line.cell_len + self.gap + item.cell_len > width:
                lines.append(line)
                line = Text()
            if line.cell_len:
                line.append(" " * self.gap)
            line.append_text(item)
        if line.cell_len:
            lines.append(line)
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        lines = self.lines(self.items, options.max_width)
        if len(lines) > self.max_lines:
            lines = self.lines(self.compact, options.max_width)
        yield from lines


def host_share(ratio: float) -> str:
    """A share of host memory with two significant figures: a small Redis on a big host is
    0.025%, which "0%" would hide."""
    value = ratio * 100
    if value >= 10:
        return f"{value:.0f}%"
    return f"{value:.2g}%" if value >= 0.001 else "<0.001%"


def _tile(label: str, value: str, style: str = "bold", note: str = "",
          short_note: str = "") -> tuple[Text, Text]:
    """A tile in full (with its note) and compact form (a short note or none)."""
    text = Text(f"{label} ", style="cyan")
    text.append(value, style=style)
    compact = text.copy()
    if note:
        text.append(f" {note}", style=DIM)
    if short_note:
        compact.append(f" {short_note}", style=DIM)
    return text, compact


def tiles(t: TargetFigures, thresholds: Thresholds) -> RenderableType:
    """The headline figures as one-line tiles that wrap to the width."""
    f, stale = shown_figures(t)

    def style(bad: bool = False, warn: bool = False) -> str:
        return DIM if stale else BAD if bad else WARN if warn else "bold"

    hit, p99 = f.hit_ratio, f.server_latency.p99_s
    memory = size(f.memory_used_bytes)
    if f.memory_max_bytes:
        memory += f" / {size(f.memory_max_bytes)}  {percent(f.memory_ratio, 0)}"
    elif f.memory_used_bytes is not None and f.kind == "redis":
        memory += " / no limit"
        if f.memory_system_bytes:  # maxmemory 0: what it can grow into is the host's memory
            memory += (f"  {host_share(f.memory_used_bytes / f.memory_system_bytes)} of host "
                       f"{size(f.memory_system_bytes)}")
    ratio = f.memory_ratio
    connections = count(f.connections)
    if f.max_connections:
        connections += f" / {count(f.max_connections)}"
    items = [
        _tile("ops/s", rate(f.ops_per_s), style()),
        _tile("hit", percent(hit), style(bad=hit is not None and hit < thresholds.hit_ratio_below),
              f"(lifetime {percent(f.lifetime_hit_ratio)})",
              f"(life {percent(f.lifetime_hit_ratio)})"),
        _tile("server p50/95/99", _latency(f.server_latency),
              style(bad=p99 is not None and p99 * 1000 > thresholds.p99_ms_above),
              f"({plain(f.server_latency.source, 40)})" if f.server_latency.known
              else "(memcached has none)" if f.kind == "memcached" else ""),
        _tile("probe", _latency(f.probe_latency), style(),
              f"({plain(f.probe_latency.source, 40)})" if f.probe_latency.known else ""),
        _tile("memory", memory,
              style(bad=ratio is not None and ratio > thresholds.memory_ratio_above)),
        _tile("evict/s", rate(f.evictions_per_s),
              style(warn=f.evictions_per_s is not None
                    and f.evictions_per_s > thresholds.evictions_per_s_above)),
        _tile("expire/s", rate(f.expirations_per_s), style()),
        _tile("conns", connections, style()),
        _tile("keys" if f.kind != "memcached" else "items", count(f.keys), style()),
    ]
    return Flow([full for full, _ in items], [compact for _, compact in items])
