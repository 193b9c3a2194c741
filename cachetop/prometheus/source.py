"""Provides PrometheusSource: the FleetSource of `cachetop --prometheus URL`, the fleet read
from a Prometheus-compatible API instead of polled.

A thread asks the API every interval (the front's thread never does network I/O): one round
of instant queries (cachetop.prometheus.queries) becomes one snapshot. A screen's charts come
from range queries for the target it shows, a step per chart column. There is no detail
beyond what the series carry, and no action: the targets are read-only here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from cachetop.collectors.base import Target
from cachetop.collectors.secret import Secret
from cachetop.engine.client import series_now
from cachetop.events.model import Event
from cachetop.fleet import FleetFigures, FleetSnapshot, TargetFigures
from cachetop.prometheus.api import ApiError, PrometheusApi
from cachetop.prometheus.queries import (
    Family,
    Query,
    Vector,
    all_queries,
    assemble,
    matchers,
    range_step_s,
    select,
    window_s,
)

log = logging.getLogger(__name__)

CHART_COLUMNS = 120  # a chart's width in cells: one point per column
CHART_EVERY_S = 5.0
WORKERS = 4  # queries in flight at once: a round is ~40 queries


class PrometheusSource:
    """A FleetSource over a Prometheus API (see the module's docstring)."""

    def __init__(self, api: PrometheusApi, *, selector: str = "", interval_s: float = 5.0,
                 history_s: float = 600.0, mode: str = "live") -> None:
        self.api = api
        self.selector = selector
        self._interval_s = interval_s
        self.history_s = history_s
        self.mode = mode
        self.scrape_s = 15.0
        self._lock = threading.Lock()
        self._figures: list[TargetFigures] = []
        self._families: dict[str, Family] = {}
        self._taken_at = time.time()
        self._version = 0
        self._notice: str | None = None
        self._watched: set[str] = set()
        self._series: dict[str, tuple[float, dict[str, list[float]]]] = {}
        self._paused = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="prometheus")
        self._charts_at = 0.0

    # -- FleetSource --------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def snapshot(self) -> FleetSnapshot:
        with self._lock:
            return FleetSnapshot.build(self._figures, self._interval_s, self._taken_at,
                                       self._version)

    def series(self, name: str, last_s: float | None = None) -> Mapping[str, Sequence[float]]:
        with self._lock:
            held = self._series.get(name)
        if held is None:
            return {}
        return series_now(*held, last_s)

    def watch(self, name: str, on: bool = True) -> None:
        with self._lock:
            if on:
                self._watched.add(name)
            else:
                self._watched.discard(name)
                self._series.pop(name, None)
        self._charts_at = 0.0
        self._wake.set()

    def target(self, name: str) -> Target | None:
        with self._lock:
            f = next((f for f in self._figures if f.name == name), None)
        if f is None:
            return None
        return Target(name=f.name, kind=f.kind, address=f.address, group=f.group,
                      read_only=True)

    def fleet_history(self) -> Sequence[FleetFigures]:
        return ()

    def notice(self) -> str | None:
        return self._notice

    def events_since(self, seq: int = 0) -> Sequence[Event]:
        """None: Prometheus gives figures, not cachetop's events (an agent's are its own)."""
        return ()

    def watch_clients(self, name: str, on: bool = True) -> None:
        """Nothing to fetch: CLIENT LIST needs a direct connection."""

    def set_credentials(self, name: str, username: str | None,
                        password: Secret | None) -> None:
        """Nothing to apply: the targets are read through Prometheus, not connected to."""

    def start(self) -> None:
        self.scrape_s = self.api.scrape_interval_s()
        self._thread = threading.Thread(target=self._run, name="prometheus-source",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.api.timeout_s + 5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def set_interval(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._wake.set()

    def set_paused(self, paused: bool) -> None:
        self._paused = paused

    def poll_now(self) -> None:
        self._wake.set()

    def wait_done(self, timeout_s: float) -> bool:
        """--once: wait for the first round of answers."""
        return self._done.wait(timeout_s)

    def wait_hello(self, timeout_s: float) -> bool:
        return True

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            if not self._paused:
                self.refresh()
                self._done.set()
                if self.mode != "live":
                    return
                if self._watched and started - self._charts_at >= CHART_EVERY_S:
                    self._charts_at = started
                    self._refresh_charts()
            self._wake.wait(max(0.0, started + self._interval_s - time.monotonic()))
            self._wake.clear()

    def refresh(self) -> None:
        """One round of instant queries, at one evaluation time, into one snapshot."""
        at = time.time()
        queries = all_queries(self.selector, self._interval_s, self.scrape_s)
        try:
            answers = list(zip(queries, self._pool.map(lambda q: self._ask(q, at), queries),
                               strict=True))
        except ApiError as exc:
            self._notice = str(exc)
            return
        found = assemble(answers, self._interval_s, self.scrape_s, now=at)
        with self._lock:
            before = {f.name: f for f in self._figures}
            self._figures = [_since(f, before.get(f.name)) for _, f in found]
            self._families = {f.name: family for family, f in found}
            self._taken_at = at
            self._version += 1
        self._notice = None

    def _ask(self, query: Query, at: float) -> Vector:
        return self.api.query(query.promql, at)

    def _refresh_charts(self) -> None:
        with self._lock:
            watched = [(self._families[f.name], f) for f in self._figures
                       if f.name in self._watched]
        end = time.time()
        start = end - self.history_s
        step = range_step_s(self.history_s, CHART_COLUMNS, self.scrape_s)
        for family, figures in watched:
            try:
                series = self._chart_series(family, figures.name, start, end, step)
            except ApiError as exc:
                self._notice = str(exc)
                continue
            with self._lock:
                if figures.name in self._watched:
                    self._series[figures.name] = (end, series)

    def _chart_series(self, family: Family, name: str, start: float, end: float,
                      step: float) -> dict[str, list[float]]:
        user = matchers(self.selector)
        target = f'{family.key}="{_escape(name)}"'
        window = f"{max(1, round(window_s(step, self.scrape_s)))}s"
        sel = [family.selector, user, target]
        c = family.counters
        exprs = {
            "ops_per_s": f"sum(rate({select(c['ops'], *sel)}[{window}]))",
            "hit_ratio": (f"sum(increase({select(c['hits'], *sel)}[{window}])) / "
                          f"(sum(increase({select(c['hits'], *sel)}[{window}])) + "
                          f"sum(increase({select(c['misses'], *sel)}[{window}])))"),
            "evictions_per_s": f"sum(rate({select(c['evictions'], *sel)}[{window}]))",
            "memory_used_bytes": f"max({select(family.gauges['memory_used_bytes'], *sel)})",
        }
        times = [start + i * step for i in range(int((end - start) / step) + 1)]
        out: dict[str, list[float]] = {"t": [t - end for t in times]}
        for key, expr in exprs.items():
            matrix = self.api.query_range(expr, start, end, step)
            points = dict(matrix[0][1]) if matrix else {}
            out[key] = [points.get(round(t, 3), float("nan")) for t in times]
        return out


def _since(figures: TargetFigures, before: TargetFigures | None) -> TargetFigures:
    """Keep when the status began (the API says what it is now, not since when)."""
    if before is None or before.status != figures.status:
        return figures
    return replace(figures, status_since=before.status_since)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')

