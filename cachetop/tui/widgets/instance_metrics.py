"""Provides the metrics-endpoint detail tabs: its caches side by side, and the raw families."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from cachetop.config import Thresholds
from cachetop.detail import EndpointDetail
from cachetop.fleet import TargetFigures
from cachetop.text_safety import plain
from cachetop.tui.rows import target_cells
from cachetop.tui.widgets.instance_detail import DetailPane, RawView, TablePane, sync_rows

DIM = "grey50"
CACHE_COLUMNS = (("name", "CACHE"), ("status", "STATUS"), ("ops", "OPS/s"), ("hit", "HIT%"),
                 ("p50", "P50ms"), ("p95", "P95ms"), ("p99", "P99ms"), ("src", "LAT"),
                 ("mem", "MEM"), ("limit", "LIMIT"), ("evict", "EVICT/s"), ("exp", "EXP/s"),
                 ("keys", "KEYS"))


class MetricsCaches(TablePane):
    """One row per cache the endpoint exposes, with the same figures as the fleet table."""

    COLUMNS = CACHE_COLUMNS

    def __init__(self, thresholds: Thresholds, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.thresholds = thresholds

    def show(self, figures: TargetFigures) -> None:
        stale = not figures.live and figures.last_good is not None
        caches = figures.last_good.caches if stale and figures.last_good else figures.caches
        rows = []
        for cache in caches:
            if stale:
                cache = TargetFigures(name=cache.name, kind=cache.kind, address=cache.address,
                                      status=figures.status, last_good=cache)
            cells = target_cells(cache, self.thresholds)
            rows.append((cache.name, tuple(cells[key] for key, _ in CACHE_COLUMNS)))
        sync_rows(self.table(), rows)
        convention = _convention(figures.detail)
        note = Text(f"{len(caches)} cache(s)")
        if convention:
            note.append(f"   convention: {plain(convention, 40)}", style=DIM)
        if stale:
            note.append("   greyed: last good figures", style=DIM)
        self.note(note)


def _convention(detail: object) -> str:
    return detail.convention if isinstance(detail, EndpointDetail) else ""


def family_lines(detail: Any) -> list[str]:
    text = detail.families if isinstance(detail, EndpointDetail) else ""
    return str(text).splitlines()


def metrics_panes(thresholds: Thresholds) -> list[tuple[str, DetailPane]]:
    """(tab title, pane) for a metrics endpoint, after the overview."""
    return [("Caches", MetricsCaches(thresholds, id="metrics-caches")),
            ("Raw metrics", RawView(family_lines, "search the cache families: type a substring",
                                    id="raw"))]
