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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample as PromSample

from cachetop.fleet import TargetFigures
from cachetop.monitor import Monitor
from collectors.sample import (
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

LABELS = ("target", "kind", "group", "address", "cache")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

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


class FleetExposition:
    """The collector registered with prometheus_client, and the cache of its last rendering."""

    def __init__(self, rows: Callable[[], Sequence[Row]], version: Callable[[], int]) -> None:
        self._rows = rows
        self._version = version
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._lock = threading.Lock()
        self._rendered: tuple[int, bytes] | None = None

    def render(self) -> bytes:
        """The exposition text; built again only when the figures changed since the last."""
        with self._lock:
            version = self._version()
            if self._rendered is None or self._rendered[0] != version:
                self._rendered = (version, generate_latest(self.registry))
            return self._rendered[1]

    def describe(self) -> list[Metric]:
        return []  # no fixed set of series: prometheus_client must not call collect() to learn it

    def collect(self) -> Iterator[Metric]:
        rows = self._rows()
        up = GaugeMetricFamily("cachetop_target_up", "1 when the last poll of the target "
                               "succeeded, else 0.", labels=LABELS)
        status = GaugeMetricFamily("cachetop_target_status", "1 for the target's current "
                                   "status (up, restarted, loading, down, timeout, auth, ...).",
                                   labels=(*LABELS, "status"))
        info = GaugeMetricFamily("cachetop_target_info", "The server's version and role.",
                                 labels=(*LABELS, "version", "role"))
        success = GaugeMetricFamily("cachetop_target_last_success_timestamp_seconds",
                                    "When the target last answered a poll (Unix time).",
                                    labels=LABELS)
        counters = {key: CounterMetricFamily(name, text, labels=LABELS)
                    for key, name, text in COUNTERS}
        gauges = {key: GaugeMetricFamily(name, text, labels=LABELS) for key, name, text in GAUGES}
        interval = {attr: GaugeMetricFamily(name, text, labels=LABELS)
                    for attr, name, text in INTERVAL_GAUGES}
        latency = HistogramMetricFamily(
            "cachetop_server_latency_seconds",
            "Command latency measured by the server since it started (Redis LATENCY "
            "HISTOGRAM, an endpoint's histogram).", labels=LABELS)
        for row in rows:
            f = row.figures
            labels = [f.name, f.kind, f.group, f.address, row.cache]
            if not row.cache:
                up.add_metric(labels, 1.0 if f.live else 0.0)
                status.add_metric([*labels, f.status], 1.0)
                if f.version or f.role:
                    info.add_metric([*labels, f.version, f.role], 1.0)
                if f.last_success is not None:
                    success.add_metric(labels, f.last_success)
            sample = row.sample
            if sample is not None and f.live:
                for key, family in counters.items():
                    value = sample.counters.get(key)
                    if value is not None:
                        family.add_metric(labels, value)
                for key, gauge in gauges.items():
                    value = sample.gauges.get(key)
                    if value is not None:
                        gauge.add_metric(labels, value)
            if f.live:
                for attr, gauge in interval.items():
                    value = getattr(f, attr)
                    if value is not None:
                        gauge.add_metric(labels, value)
            hist = row.histogram_sample
            if hist is not None and f.live and SERVER_LATENCY in hist.histograms:
                buckets = histogram_buckets(hist.histograms[SERVER_LATENCY])
                latency.add_metric(labels, buckets, None)  # the servers give no sum
                latency.samples.append(PromSample(  # the count histogram_quantile needs not,
                    "cachetop_server_latency_seconds_count",  # but rate(_count) does
                    dict(zip(LABELS, labels, strict=True)), buckets[-1][1]))
        yield up
        yield status
        yield info
        yield success
        yield from counters.values()
        yield from gauges.values()
        yield from interval.values()
        yield latency


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
