"""Provides FleetExposition: the agent's `/metrics`, a prometheus_client custom collector over
the engine's latest figures and samples.

A scrape reads what the poller already has (a scrape never polls: a scraper hammering the
agent costs the caches nothing) and renders it once per version of the figures: scrapes between
two polls are answered from the bytes already built.

Names follow Prometheus conventions: the `cachetop_` prefix, base units (bytes, seconds, ratios
0..1), `_total` for counters. Every series carries `target`, `kind`, `group`, `address` (the
display address: never a credential) and `cache` (an endpoint's cache; empty for the target).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from prometheus_client.core import Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from cachetop.collectors.sample import (
    CONNECTIONS,
    EVICTIONS,
    EXPIRATIONS,
    HITS,
    KEYS,
    MAX_MEMORY_BYTES,
    MISSES,
    OPS,
    SERVER_LATENCY,
    USED_MEMORY_BYTES,
    Histogram,
    Sample,
)
from cachetop.fleet import TargetFigures
from cachetop.monitor import Monitor

_float_text = cast(Callable[[float], str], floatToGoString)  # untyped in prometheus_client
LABELS = ("target", "kind", "group", "address", "cache")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BLOCKS_KEPT = 500_000  # label blocks kept between scrapes (rows x buckets, ~30 at most a row)

# (sample counter, metric name without _total, help)
COUNTERS = (
    (HITS, "cachetop_hits", "Cache hits the server counted since it started."),
    (MISSES, "cachetop_misses", "Cache misses the server counted since it started."),
    (OPS, "cachetop_commands", "Commands the server processed since it started "
                               "(cachetop's own polls included)."),
    (EVICTIONS, "cachetop_evictions", "Keys evicted to make room since the server started."),
    (EXPIRATIONS, "cachetop_expirations", "Keys expired since the server started."),
)
# (sample gauge, metric name, help)
GAUGES = (
    (USED_MEMORY_BYTES, "cachetop_memory_used_bytes", "Memory the cache uses."),
    (MAX_MEMORY_BYTES, "cachetop_memory_limit_bytes", "The cache's memory limit (0: none)."),
    (KEYS, "cachetop_keys", "Keys (items) held."),
    (CONNECTIONS, "cachetop_connections", "Client connections open."),
)
# (figures attribute, metric name, help): the last interval's figures, as cachetop shows them.
INTERVAL_GAUGES = (
    ("hit_ratio", "cachetop_hit_ratio", "Hits / (hits + misses) over the last poll interval."),
    ("ops_per_s", "cachetop_commands_per_second",
     "Commands per second over the last poll interval (cachetop's own excluded)."),
    ("evictions_per_s", "cachetop_evictions_per_second",
     "Evictions per second over the last poll interval."),
    ("expirations_per_s", "cachetop_expirations_per_second",
     "Expirations per second over the last poll interval."),
    ("interval_s", "cachetop_interval_seconds", "Length of the last poll interval."),
)


@dataclass(frozen=True, slots=True)
class Row:
    """One exposed target or endpoint cache: its figures, its latest sample, and the latest
    sample that carried a latency histogram."""

    figures: TargetFigures
    cache: str
    sample: Sample | None
    histogram_sample: Sample | None


def histogram_buckets(histogram: Histogram) -> list[tuple[str, float]]:
    """Prometheus buckets (`le` text, cumulative count), ending with +Inf as the format needs."""
    out: list[tuple[str, float]] = []
    for bound, count in histogram.buckets:
        out.append(("+Inf" if math.isinf(bound) else repr(float(bound)), float(count)))
    if not out or out[-1][0] != "+Inf":
        out.append(("+Inf", float(histogram.count)))
    return out


@dataclass(slots=True)
class Family:
    """One metric family as exposed: samples are (sample name, the row's label values, extra
    label pairs, value)."""

    name: str  # without _total for a counter (prometheus_client's convention)
    type: str
    help: str
    samples: list[tuple[str, tuple[str, ...], tuple[tuple[str, str], ...], float]] = field(
        default_factory=list)

    @property
    def exposed(self) -> str:
        return self.name + "_total" if self.type == "counter" else self.name

    def add(self, base: tuple[str, ...], value: float, *extras: tuple[str, str],
            suffix: str = "") -> None:
        self.samples.append((self.exposed + suffix, base, extras, value))


def families(rows: Sequence[Row]) -> list[Family]:
    """What /metrics exposes of these rows: the one place that decides it."""
    up = Family("cachetop_target_up", "gauge",
                "1 when the last poll of the target succeeded, else 0.")
    status = Family("cachetop_target_status", "gauge", "1 for the target's current status "
                    "(up, restarted, loading, down, timeout, auth, ...).")
    info = Family("cachetop_target_info", "gauge", "The server's version and role.")
    success = Family("cachetop_target_last_success_timestamp_seconds", "gauge",
                     "When the target last answered a poll (Unix time).")
    counters = {key: Family(name, "counter", text) for key, name, text in COUNTERS}
    gauges = {key: Family(name, "gauge", text) for key, name, text in GAUGES}
    interval = {attr: Family(name, "gauge", text) for attr, name, text in INTERVAL_GAUGES}
    latency = Family("cachetop_server_latency_seconds", "histogram",
                     "Command latency measured by the server since it started (Redis LATENCY "
                     "HISTOGRAM, an endpoint's histogram).")
    for row in rows:
        f = row.figures
        base = (f.name, f.kind, f.group, f.address, row.cache)
        live = f.live
        if not row.cache:
            up.add(base, 1.0 if live else 0.0)
            status.add(base, 1.0, ("status", f.status))
            if f.version or f.role:
                info.add(base, 1.0, ("version", f.version), ("role", f.role))
            if f.last_success is not None:
                success.add(base, f.last_success)
        if not live:
            continue
        sample = row.sample
        if sample is not None:
            for key, family in counters.items():
                value = sample.counters.get(key)
                if value is not None:
                    family.add(base, value)
            for key, family in gauges.items():
                value = sample.gauges.get(key)
                if value is not None:
                    family.add(base, value)
        for attr, family in interval.items():
            value = getattr(f, attr)
            if value is not None:
                family.add(base, value)
        hist = row.histogram_sample
        if hist is not None and SERVER_LATENCY in hist.histograms:
            buckets = histogram_buckets(hist.histograms[SERVER_LATENCY])
            for le, count in buckets:
                latency.add(base, count, ("le", le), suffix="_bucket")
            # The servers give no sum; the count serves rate(_count).
            latency.add(base, buckets[-1][1], suffix="_count")
    return [up, status, info, success, *counters.values(), *gauges.values(),
            *interval.values(), latency]


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


class FleetExposition:
    """The collector registered with prometheus_client, and the agent's renderer of the same
    families.

    /metrics is written by render(), not by prometheus_client's generate_latest: at 1,000
    targets (17,000 samples) generate_latest costs ~150 ms of CPU a scrape, most of it checking
    label names by regex per sample, over the issue's 100 ms answer (bench/agent.py). render()
    writes the same text (tests compare it byte for byte with generate_latest over the
    registry) with each row's label block built once and kept.
    """

    def __init__(self, rows: Callable[[], Sequence[Row]], version: Callable[[], int],
                 max_age_s: float = 1.0) -> None:
        self._rows = rows
        self._version = version
        self.max_age_s = max_age_s  # figures rendered this long ago may still be served
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._lock = threading.Lock()
        self._rendered: tuple[int, float, float, bytes] | None = None  # version, at, age, text
        self._blocks: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], str] = {}
        self._last_scrape: float | None = None
        self._render_s = 0.0
        self._ahead: threading.Timer | None = None
        self.renders = 0

    def render(self) -> bytes:
        """The exposition text: the last one when the figures did not change or it is young
        enough (see render_ahead), else built now."""
        now = time.monotonic()
        with self._lock:
            held = self._rendered
            if held is None or (held[0] != self._version() and now - held[1] > held[2]):
                held = self._build(self.max_age_s)
            self._plan_ahead(now)
            return held[3]

    def _build(self, allowed_age_s: float) -> tuple[int, float, float, bytes]:
        started = time.monotonic()
        version = self._version()
        text = self._text(families(self._rows()))
        self._render_s = time.monotonic() - started
        self._rendered = (version, started, allowed_age_s, text)
        self.renders += 1
        return self._rendered

    def _plan_ahead(self, now: float) -> None:
        """A scraper that comes back every `gap` seconds finds the text rendered just before
        it comes (one render a scrape, as before, but off the scrape's clock): at 1,000
        targets a render takes longer than the 100 ms a scrape may wait on a loaded machine."""
        gap = now - self._last_scrape if self._last_scrape is not None else None
        self._last_scrape = now
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None
        if gap is None or gap < 2 * self.max_age_s:
            return  # scrapes this close share renders already
        lead = min(gap / 2, max(0.5, 4 * self._render_s))
        self._ahead = threading.Timer(gap - lead, self._render_ahead, (lead,))
        self._ahead.daemon = True
        self._ahead.start()

    def _render_ahead(self, lead: float) -> None:
        with self._lock:
            self._build(lead * 2 + self.max_age_s)

    def close(self) -> None:
        with self._lock:
            if self._ahead is not None:
                self._ahead.cancel()

    def _text(self, found: Sequence[Family]) -> bytes:
        if len(self._blocks) > BLOCKS_KEPT:
            self._blocks.clear()  # targets came and went: start again rather than grow
        blocks = self._blocks
        out: list[str] = []
        for family in found:
            help_text = family.help.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {family.exposed} {help_text}\n"
                       f"# TYPE {family.exposed} {family.type}\n")
            for name, base, extras, value in family.samples:
                key = (base, extras)
                block = blocks.get(key)
                if block is None:
                    pairs = sorted((*zip(LABELS, base, strict=True), *extras))
                    block = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
                    blocks[key] = block
                out.append(f"{name}{{{block}}} {_float_text(value)}\n")
        return "".join(out).encode("utf-8")

    def describe(self) -> list[Metric]:
        return []  # no fixed set of series: prometheus_client must not call collect() to learn it

    def collect(self) -> Iterator[Metric]:
        for family in families(self._rows()):
            metric = Metric(family.name, family.help, family.type)
            for name, base, extras, value in family.samples:
                metric.add_sample(name, {**dict(zip(LABELS, base, strict=True)),
                                         **dict(extras)}, value)
            yield metric


def monitor_rows(monitor: Monitor) -> list[Row]:
    """Every target of the monitor and every cache of its endpoints, as exposed rows."""
    rows: list[Row] = []
    for figures, tracker in zip(monitor.snapshot().targets, monitor.trackers, strict=True):
        rows.append(Row(figures, "", tracker.last_sample, tracker.last_histogram_sample))
        for cache in figures.caches:
            child = tracker.child(cache.name)
            cache_figures = replace(cache, name=figures.name, address=figures.address,
                                    group=figures.group, kind=figures.kind)
            rows.append(Row(cache_figures, cache.name,
                            child.last_sample if child is not None else None,
                            child.last_histogram_sample if child is not None else None))
    return rows
