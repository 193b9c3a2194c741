"""Provides TargetTracker: turns one target's successive samples (or failures) into figures.

Each tracker is touched by one poll at a time (the poller keeps one poll in flight per target),
so its state needs no lock; what it returns is frozen and safe to hand to any thread.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from dataclasses import replace

from cachetop.detail import Detail, build_detail
from cachetop.fleet import Latency, TargetFigures
from cachetop.metrics.quantiles import bucket_delta, histogram_quantile, sample_quantile
from cachetop.metrics.rates import delta, rate_per_s, reset_reason
from cachetop.metrics.ratios import lifetime_hit_ratio, weighted_hit_ratio, window_hit_ratio
from collectors.base import CollectError, Target
from collectors.sample import (
    CONNECTIONS,
    EVICTIONS,
    EXPIRATIONS,
    HITS,
    KEYS,
    LOADING,
    LOADING_ETA_S,
    LOADING_PERCENT,
    MAX_CONNECTIONS,
    MAX_MEMORY_BYTES,
    MISSES,
    OPS,
    OWN_OPS,
    ROLE,
    SERVER_LATENCY,
    SYSTEM_MEMORY_BYTES,
    USED_MEMORY_BYTES,
    VERSION,
    Sample,
)

PROBE_WINDOW_S = 60.0
RESTART_MARK_S = 30.0  # how long a row stays "restarted" after a reset was seen
QUANTILES = (0.50, 0.95, 0.99)


def _server_latency_from(prev: Sample, cur: Sample) -> Latency | None:
    """Interval percentiles from the Δ of two cumulative latency histograms."""
    old, new = prev.histograms.get(SERVER_LATENCY), cur.histograms.get(SERVER_LATENCY)
    if old is None or new is None:
        return None
    buckets = bucket_delta(old.buckets, new.buckets)
    if buckets is None or not buckets or buckets[-1][1] <= 0:
        return None
    p50, p95, p99 = (histogram_quantile(q, buckets) for q in QUANTILES)
    return Latency(p50, p95, p99, "interval")


def foreign_rate(total: float | None, own: float | None) -> float | None:
    """The rate of what other clients did: the server's count less cachetop's own commands."""
    if total is None or own is None:
        return total
    return max(0.0, total - own)


def _total(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def with_children_totals(f: TargetFigures) -> TargetFigures:
    """An endpoint's own row: its caches' rates summed and its hit ratio weighted by traffic.

    Built from each cache's own interval figures, not from summed counters, so a cache that
    appears, disappears or resets changes its own row only and never spikes the endpoint's.
    """
    caches = [c for c in f.caches if c.live]
    d_hits = _total([c.hits_delta for c in caches])
    d_misses = _total([c.misses_delta for c in caches])
    return replace(
        f, ops_per_s=_total([c.ops_per_s for c in caches]),
        hits_delta=d_hits, misses_delta=d_misses,
        hit_ratio=weighted_hit_ratio((c.hits_delta, c.misses_delta) for c in caches),
        evictions_per_s=_total([c.evictions_per_s for c in caches]),
        expirations_per_s=_total([c.expirations_per_s for c in caches]),
        memory_used_bytes=_total([c.memory_used_bytes for c in caches]),
        keys=_total([c.keys for c in caches]),
    )


def loading_reason(sample: Sample) -> str:
    """The LOADING line: how far the dataset load is and how long Redis expects it to take, so
    an operator can tell a restart that will finish from one that is stuck."""
    percent = sample.gauges.get(LOADING_PERCENT)
    eta = sample.gauges.get(LOADING_ETA_S)
    text = "loading the dataset" if percent is None else f"loading the dataset: {percent:.0f}%"
    if eta is not None and eta >= 0:
        text += f", eta {eta:.0f} s"
    return text + " (key commands answer LOADING; actions refused)"


class TargetTracker:
    """Keeps what the next interval needs: the previous sample, the last histogram sample,
    the probe window, the restart mark, and the last good figures."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._prev: Sample | None = None
        self._hist_prev: Sample | None = None
        self._server: Latency = Latency()
        self._server_at = 0.0
        self._probes: deque[tuple[float, float]] = deque()
        self._probes_sorted: list[float] = []  # the same RTTs, kept sorted for quantiles
        self._probe: Latency | None = None  # the window's quantiles, until the window changes
        self._restart_at: float | None = None
        self._restart_reason = ""
        self._status = ""
        self._since = time.time()
        self._last_success: float | None = None
        self._last_good: TargetFigures | None = None
        self._detail: Detail | None = None
        self._children: dict[str, TargetTracker] = {}

    def _set_status(self, status: str) -> float:
        if status != self._status:
            self._status, self._since = status, time.time()
        return self._since

    def fail(self, error: CollectError) -> TargetFigures:
        """Figures of a failed poll: the status and reason, no live figures, last good kept."""
        since = self._set_status(error.status)
        t = self.target
        return TargetFigures(
            name=t.name, kind=t.kind, address=t.address, group=t.group, status=error.status,
            error=error.message, status_since=since, last_success=self._last_success,
            updated_at=time.time(), tls_insecure=bool(t.tls and not t.tls.verify),
            detail=self._detail, last_good=self._last_good,
        )

    def update(self, sample: Sample) -> TargetFigures:
        """Figures of the interval ending with `sample`."""
        prev, self._prev = self._prev, sample
        now_wall = time.time()
        self._last_success = now_wall
        if sample.detail is not None:
            self._detail = build_detail(self.target.kind, sample.detail, self._detail)
        reason = reset_reason(prev, sample) if prev is not None else None
        if reason is not None:
            self._restart_at, self._restart_reason = sample.taken_at, reason
            self._hist_prev, self._server = None, Latency()
            prev = None  # the new sample is the baseline; this interval has no rates
        restarted = (self._restart_at is not None
                     and sample.taken_at - self._restart_at < RESTART_MARK_S)
        status = "loading" if LOADING in sample.info else ("restarted" if restarted else "up")
        since = self._set_status(status)
        figures = self._figures(prev, sample, status, since, now_wall)
        if restarted:
            figures = replace(figures, error=self._restart_reason)
        if status == "loading":
            figures = replace(figures, error=loading_reason(sample))
        self._last_good = figures  # built without a last_good of its own: no chain grows
        return figures

    def _figures(self, prev: Sample | None, cur: Sample, status: str, since: float,
                 now_wall: float) -> TargetFigures:
        t = self.target
        c, g = cur.counters, cur.gauges
        dt = cur.taken_at - prev.taken_at if prev is not None else 0.0

        def rate(name: str) -> float | None:
            return rate_per_s(prev.counters.get(name), c.get(name), dt) if prev else None

        d_hits = delta(prev.counters.get(HITS), c.get(HITS)) if prev else None
        d_misses = delta(prev.counters.get(MISSES), c.get(MISSES)) if prev else None
        caches = tuple(self._child(name).update(child) for name, child in cur.children.items())
        figures = TargetFigures(
            name=t.name, kind=t.kind, address=t.address, group=t.group, status=status,
            status_since=since, last_success=self._last_success, updated_at=now_wall,
            role=cur.info.get(ROLE, ""), version=cur.info.get(VERSION, ""),
            interval_s=dt if prev is not None else None,
            ops_per_s=foreign_rate(rate(OPS), rate(OWN_OPS)),
            hit_ratio=window_hit_ratio(d_hits, d_misses),
            lifetime_hit_ratio=lifetime_hit_ratio(c.get(HITS), c.get(MISSES)),
            hits_delta=d_hits, misses_delta=d_misses,
            evictions_per_s=rate(EVICTIONS), expirations_per_s=rate(EXPIRATIONS),
            memory_used_bytes=g.get(USED_MEMORY_BYTES), memory_max_bytes=g.get(MAX_MEMORY_BYTES),
            memory_system_bytes=g.get(SYSTEM_MEMORY_BYTES), connections=g.get(CONNECTIONS),
            max_connections=g.get(MAX_CONNECTIONS), keys=g.get(KEYS),
            loading_percent=g.get(LOADING_PERCENT),
            server_latency=self._server_latency(cur),
            probe_latency=self._probe_latency(cur),
            degraded=cur.degraded, tls_insecure=bool(t.tls and not t.tls.verify),
            caches=caches, detail=self._detail,
        )
        return with_children_totals(figures) if caches else figures

    def _child(self, name: str) -> TargetTracker:
        child = self._children.get(name)
        if child is None:
            t = self.target
            child = TargetTracker(replace(t, name=name, address=t.address, group=t.group))
            self._children[name] = child
        return child

    def _server_latency(self, cur: Sample) -> Latency:
        if SERVER_LATENCY in cur.histograms:
            if self._hist_prev is not None:
                latency = _server_latency_from(self._hist_prev, cur)
                self._server, self._server_at = latency or Latency(), cur.taken_at
            self._hist_prev = cur
        elif cur.quantiles:
            q = cur.quantiles
            self._server = Latency(q.get("p50"), q.get("p95"), q.get("p99"), "endpoint summary")
            self._server_at = cur.taken_at
        # A histogram is fetched only when enough traffic ran; keep the last window's figures
        # until they are older than a few fetch periods, then say nothing rather than stale.
        if cur.taken_at - self._server_at > 15.0:
            self._server = Latency()
        return self._server

    def _probe_latency(self, cur: Sample) -> Latency:
        window, ordered = self._probes, self._probes_sorted
        changed = bool(cur.probes_s)
        for rtt in cur.probes_s:
            window.append((cur.taken_at, rtt))
            bisect.insort(ordered, rtt)
        while window and cur.taken_at - window[0][0] > PROBE_WINDOW_S:
            _, old = window.popleft()
            del ordered[bisect.bisect_left(ordered, old)]
            changed = True
        # A poll without probes (loading, or `probes = 0`) leaves the window and its quantiles.
        if changed or self._probe is None:
            p50, p95, p99 = (sample_quantile(q, ordered, presorted=True) for q in QUANTILES)
            self._probe = Latency(p50, p95, p99, "probe 60s")
        return self._probe
