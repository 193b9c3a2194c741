"""Provides Publisher: what one reader of a Monitor is sent, tick by tick.

The engine process has one reader (its front); an agent has one per `cachetop --connect`. Each
keeps its own place in the figures (the version it last sent), the targets its screens watch
(detail and history go only to those), and how many of an endpoint's caches it wants.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from cachetop.detail import Detail, detail_to_wire
from cachetop.engine.protocol import figures_to_wire, series_to_wire
from cachetop.fleet import TargetFigures
from cachetop.metrics.top_caches import top_caches
from cachetop.monitor import Monitor
from cachetop.tracker import more_caches_row

HISTORY_EVERY_S = 1.0
Send = Callable[[Mapping[str, Any]], None]


class Publisher:
    """Deltas since the reader's last snapshot, and detail and history of what it watches."""

    def __init__(self, monitor: Monitor, caches_limit: int | None = None,
                 watch: Callable[[str, bool], None] | None = None) -> None:
        """`watch`: how a target's drill-down is switched on and off (default: the monitor's;
        an agent counts its readers first)."""
        self.monitor = monitor
        self._watch = watch or monitor.watch
        self.caches_limit = caches_limit
        self.sent_version = 0
        self.sent_event = 0
        self.watched: dict[str, Detail | None] = {}  # name -> the detail last sent
        self._history_at = 0.0

    def watch(self, name: str, on: bool) -> None:
        if on == (name in self.watched):
            return
        self._watch(name, on)
        if on:
            self.watched[name] = None
            self._history_at = 0.0  # send its history at the next tick
        else:
            self.watched.pop(name, None)

    def tick(self, send: Send, paused: bool = False) -> None:
        version, changed = self.monitor.changes_since(self.sent_version)
        events = self.new_events()
        if changed or events:
            self.sent_version = version
            send({"t": "snap", "v": version, "at": time.time(), "iv": self.monitor.interval_s,
                  "paused": paused,
                  "ch": [[i, figures_to_wire(self.cut(f))] for i, f in changed], "ev": events})
        for name, sent in list(self.watched.items()):
            figures = self.monitor.figures(name)
            detail = figures.detail if figures is not None else None
            if detail is not None and detail is not sent:
                self.watched[name] = detail
                send({"t": "detail", "name": name, "d": detail_to_wire(detail)})
        now = time.monotonic()
        if self.watched and now - self._history_at >= HISTORY_EVERY_S:
            self._history_at = now
            for name in self.watched:
                series = self.monitor.history.series(name)
                send({"t": "hist", "name": name, "at": time.time(),
                      "s": series_to_wire(series)})

    def new_events(self) -> list[list[object]]:
        """The events this reader has not been sent yet, in their wire form."""
        events = self.monitor.events_since(self.sent_event)
        if events:
            self.sent_event = events[-1].seq
        return [e.to_wire() for e in events]

    def cut(self, figures: TargetFigures) -> TargetFigures:
        """An endpoint's caches as this reader asked: the busiest `caches_limit` and one row
        for the rest (a screen shows 100 rows; 20,000 would cost the front seconds). The
        engine process's Monitor already cuts to its one reader's limit (a "more" row last)."""
        limit = self.caches_limit
        caches = figures.caches
        if limit is None or len(caches) <= limit or caches[-1].kind == "more":
            return figures
        top = top_caches(caches, limit)
        rest = top.rest
        if rest is None:
            return figures
        more = more_caches_row(figures, rest, since=figures.status_since,
                               updated_at=figures.updated_at, interval_s=figures.interval_s)
        return replace(figures, caches=(*top.shown, more), last_good=None)
