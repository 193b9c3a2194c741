"""Provides AppMetrics: the demo application's /metrics endpoint in the `cachetop` convention.

One `cache` label value per cache layer the application uses:

    cache_hits_total, cache_misses_total, cache_evictions_total, cache_expirations_total
    cache_entries, cache_memory_bytes, cache_memory_max_bytes
    cache_operation_duration_seconds{cache, operation}   (histogram)

plus a few `demo_*` series about the simulated database and the workload's phase, which
cachetop ignores and a curious reader can see with curl.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

T = TypeVar("T")

# Both a local dict lookup (microseconds) and a database query (milliseconds) land in a bucket.
LATENCY_BUCKETS_S = (0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                     0.025, 0.1)
_COUNTERS = {"hits": "cache_hits", "misses": "cache_misses", "evictions": "cache_evictions",
             "expirations": "cache_expirations"}
_GAUGES = {"entries": "cache_entries", "memory_bytes": "cache_memory_bytes",
           "max_memory_bytes": "cache_memory_max_bytes"}


class _CacheFamilies(Collector):
    """Reads every cache's counts at scrape time: counters kept here, plus each source's."""

    def __init__(self, metrics: AppMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        readings = self.metrics.readings()
        for key, name in _COUNTERS.items():
            family = CounterMetricFamily(name, f"Cache {key} per cache layer", labels=["cache"])
            for cache, values in readings.items():
                if key in values:
                    family.add_metric([cache], values[key])
            yield family
        for key, name in _GAUGES.items():
            gauge = GaugeMetricFamily(name, f"Cache {key} per cache layer", labels=["cache"])
            for cache, values in readings.items():
                if key in values:
                    gauge.add_metric([cache], values[key])
            yield gauge
        servers = GaugeMetricFamily("cache_server_info", "The server a cache layer lives on",
                                    labels=["cache", "server"])
        for cache, server in self.metrics.servers.items():
            servers.add_metric([cache, server], 1)
        yield servers


class AppMetrics:
    """Counters for the remote cache layers, sources for the ones that count themselves, and
    the latency histograms; `serve(port)` publishes them on 127.0.0.1:port/metrics."""

    def __init__(self, caches: Sequence[str], operations: Sequence[str] = ("get", "set")) -> None:
        disable_created_metrics()  # no `_created` series: half the exposition, nothing lost
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, float]] = {c: {"hits": 0.0, "misses": 0.0}
                                                     for c in caches}
        self._sources: dict[str, Callable[[], Mapping[str, float]]] = {}
        self.servers: dict[str, str] = {}
        self.registry.register(_CacheFamilies(self))
        self.latency = Histogram(
            "cache_operation_duration_seconds", "Time per cache operation",
            ["cache", "operation"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        # Every cache gets its series at once (the endpoint's own percentiles need all of them);
        # other operations appear on first use.
        self._observers = {(c, op): self.latency.labels(c, op).observe
                           for c in caches for op in operations}
        self.db_latency = Histogram(
            "demo_db_query_duration_seconds", "Simulated database query time", ["query"],
            buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.requests = Counter("demo_requests", "Requests served by kind", ["kind"],
                                registry=self.registry)
        self.invalidations = Counter("demo_invalidations", "Keys or tags invalidated by reason",
                                     ["reason"], registry=self.registry)
        self.write_behind_depth = Gauge("demo_write_behind_queue_depth",
                                        "Updates waiting for the database", registry=self.registry)
        self.write_behind_written = Counter("demo_write_behind_writes", "Updates written behind",
                                            registry=self.registry)
        self.phase = Gauge("demo_phase", "1 for the workload's current phase", ["phase"],
                           registry=self.registry)

    def set_servers(self, servers: Mapping[str, str]) -> None:
        """Which server ("host:port") each remote cache layer lives on: exposed as
        `cache_server_info`, so cachetop counts its memory and evictions once, there."""
        self.servers = dict(servers)

    def add_source(self, cache: str, read: Callable[[], Mapping[str, float]]) -> None:
        """A cache that counts itself (the local LRU, Redis INFO): read at scrape time."""
        self._sources[cache] = read

    def hit(self, cache: str, found: bool) -> None:
        with self._lock:
            self._counts[cache]["hits" if found else "misses"] += 1

    def timed(self, cache: str, operation: str, call: Callable[..., T], *args: Any,
              **kwargs: Any) -> T:
        """Run one cache operation and record its duration."""
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            observe = self._observers.get((cache, operation))
            if observe is None:
                observe = self._observers[cache, operation] = self.latency.labels(
                    cache, operation).observe
            observe(elapsed)

    def set_phase(self, phase: str, phases: Sequence[str]) -> None:
        for name in phases:
            self.phase.labels(name).set(1 if name == phase else 0)

    def readings(self) -> dict[str, dict[str, float]]:
        with self._lock:
            out = {cache: dict(values) for cache, values in self._counts.items()}
        for cache, read in self._sources.items():
            try:
                out.setdefault(cache, {}).update(read())
            except Exception:  # noqa: BLE001 - a failing source must not fail the scrape
                continue
        return out

    def serve(self, port: int) -> None:
        start_http_server(port, addr="127.0.0.1", registry=self.registry)
