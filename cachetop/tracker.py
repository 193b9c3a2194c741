"""Provides TargetTracker: turns one target's successive samples (or failures) into figures.

Each tracker is touched by one poll at a time (the poller keeps one poll in flight per target),
so its state needs no lock; what it returns is frozen and safe to hand to any thread.
"""

from __future__ import annotations

import bisect
import heapq
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.sample import (
    CACHE_SERVER,
    CONNECTIONS,
    ENGINE,
    EVICTIONS,
    EXPIRATIONS,
    HITS,
    KEYS,
    LOADING,
    LOADING_ETA_S,
    LOADING_PERCENT,
    MASTER_ADDRESS,
    MASTER_LINK,
    MAX_CONNECTIONS,
    MAX_MEMORY_BYTES,
    MISSES,
    OPS,
    OWN_OPS,
    REPL_OFFSET,
    REPLICATION_LAG_S,
    ROLE,
    SERVER_LATENCY,
    SYSTEM_MEMORY_BYTES,
    USED_MEMORY_BYTES,
    VERSION,
    Sample,
)
from cachetop.detail import Detail, build_detail
from cachetop.fleet import Latency, TargetFigures, layer_of
from cachetop.metrics.quantiles import bucket_delta, histogram_quantile, sample_quantile
from cachetop.metrics.rates import delta, rate_per_s, reset_reason
from cachetop.metrics.ratios import lifetime_hit_ratio, weighted_hit_ratio, window_hit_ratio
from cachetop.metrics.top_caches import MoreCaches

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


def more_caches_row(parent: TargetFigures | Target, rest: MoreCaches, *, since: float,
                    updated_at: float, interval_s: float | None) -> TargetFigures:
    """The "N more caches" row: the caches not shown, summed (top_caches.more_caches). Its
    kind is "more", so a view tells it from a cache that happens to bear that name."""
    return TargetFigures(
        name=rest.label, kind="more", address=parent.address, group=parent.group,
        status="up", status_since=since, updated_at=updated_at, interval_s=interval_s,
        ops_per_s=rest.ops_per_s, hit_ratio=rest.hit_ratio, hits_delta=rest.hits_delta,
        misses_delta=rest.misses_delta, evictions_per_s=rest.evictions_per_s,
        expirations_per_s=rest.expirations_per_s, memory_used_bytes=rest.memory_used_bytes,
        keys=rest.keys)


def _rest_sums(rest: list[tuple[str, Sample, Sample | None]],
               resets: dict[str, tuple[float, str]]) -> MoreCaches:
    """top_caches.more_caches() over the caches a full tracker would have built, computed
    from their two samples alone: a cache without a previous sample (new) or with a counter
    that went down (a reset) adds its sizes but no rates, as its tracker would show it."""
    ops: list[float] = []
    evictions: list[float] = []
    expirations: list[float] = []
    hits: list[float] = []
    misses: list[float] = []
    memory: list[float] = []
    keys: list[float] = []
    pairs: list[tuple[float | None, float | None]] = []
    for name, cur, prev in rest:
        g = cur.gauges
        if (m := g.get(USED_MEMORY_BYTES)) is not None:
            memory.append(m)
        if (k := g.get(KEYS)) is not None:
            keys.append(k)
        if prev is None or (dt := cur.taken_at - prev.taken_at) <= 0:
            continue
        if (reason := reset_reason(prev, cur)) is not None:
            resets[name] = (cur.taken_at, reason)  # its tracker, if it gets one, says so
            continue
        c, pc = cur.counters, prev.counters
        for name, out in ((OPS, ops), (EVICTIONS, evictions), (EXPIRATIONS, expirations)):
            new, old = c.get(name), pc.get(name)
            if new is not None and old is not None:
                out.append((new - old) / dt)
        h_new, h_old, m_new, m_old = c.get(HITS), pc.get(HITS), c.get(MISSES), pc.get(MISSES)
        d_hits = h_new - h_old if h_new is not None and h_old is not None else None
        d_misses = m_new - m_old if m_new is not None and m_old is not None else None
        if d_hits is not None:
            hits.append(d_hits)
        if d_misses is not None:
            misses.append(d_misses)
        pairs.append((d_hits, d_misses))
    return MoreCaches(
        count=len(rest), ops_per_s=sum(ops) if ops else None,
        hit_ratio=weighted_hit_ratio(pairs), hits_delta=sum(hits) if hits else None,
        misses_delta=sum(misses) if misses else None,
        evictions_per_s=sum(evictions) if evictions else None,
        expirations_per_s=sum(expirations) if expirations else None,
        memory_used_bytes=sum(memory) if memory else None, keys=sum(keys) if keys else None)


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

    def __init__(self, target: Target, caches_limit: int | None = None,
                 resolve: Callable[[str], str] | None = None) -> None:
        """`resolve` names the fleet target at an address an endpoint gives for one of its
        caches ("" when none is); see cachetop.links."""
        self.target = target
        self.layer = layer_of(target)
        self._resolve = resolve
        # An endpoint's caches past this many (the busiest kept) become one "N more" row, with
        # no tracker each: 20,000 child trackers cost the engine ~0.3 s a poll (bench/README).
        self._caches_limit = caches_limit
        self._child_prev: dict[str, Sample] = {}  # each cache's last sample, as its tracker's
        self._child_resets: dict[str, tuple[float, str]] = {}  # resets seen in the "more" row
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
        self._events: deque[Mapping[str, str]] = deque(maxlen=50)  # a topology's changes

    @property
    def last_sample(self) -> Sample | None:
        """The latest sample read (raw counters and gauges, for an exposition of them)."""
        return self._prev

    @property
    def last_histogram_sample(self) -> Sample | None:
        """The latest sample that carried the server's latency histogram."""
        return self._hist_prev

    def child(self, name: str) -> TargetTracker | None:
        """The tracker of one cache of a metrics endpoint, once seen."""
        return self._children.get(name)

    def _set_status(self, status: str) -> float:
        if status != self._status:
            self._status, self._since = status, time.time()
        return self._since

    def fail(self, error: CollectError,
             topology: Mapping[str, Any] | None = None) -> TargetFigures:
        """Figures of a failed poll: the status and reason, no live figures, last good kept.
        `topology`: a topology node's facts (group_figures.node_facts)."""
        since = self._set_status(error.status)
        t = self.target
        return TargetFigures(
            name=t.name, kind=t.kind, address=t.address, group=t.group, status=error.status,
            error=error.message, status_since=since, last_success=self._last_success,
            updated_at=time.time(), tls_insecure=bool(t.tls and not t.tls.verify),
            detail=self._detail, last_good=self._last_good, layer=self.layer,
            topology=topology,
        )

    def update(self, sample: Sample,
               topology: Mapping[str, Any] | None = None) -> TargetFigures:
        """Figures of the interval ending with `sample`; `topology`: a topology node's facts,
        passed in so the node's figures are built once (a replace() per node cost most of a
        1,000-node group's update: bench/topology.py)."""
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
        figures = self._figures(prev, sample, status, since, now_wall, topology)
        if restarted:
            figures = replace(figures, error=self._restart_reason)
        if status == "loading":
            figures = replace(figures, error=loading_reason(sample))
        self._last_good = figures  # built without a last_good of its own: no chain grows
        return figures

    def _figures(self, prev: Sample | None, cur: Sample, status: str, since: float,
                 now_wall: float, facts: Mapping[str, Any] | None = None) -> TargetFigures:
        t = self.target
        c, g = cur.counters, cur.gauges
        dt = cur.taken_at - prev.taken_at if prev is not None else 0.0

        def rate(name: str) -> float | None:
            return rate_per_s(prev.counters.get(name), c.get(name), dt) if prev else None

        d_hits = delta(prev.counters.get(HITS), c.get(HITS)) if prev else None
        d_misses = delta(prev.counters.get(MISSES), c.get(MISSES)) if prev else None
        offsets: dict[str, int] = {}
        if cur.topology is not None:
            offsets = {name: int(child.gauges[REPL_OFFSET]) for name, child in
                       cur.children.items() if REPL_OFFSET in child.gauges}
            caches = self._topology_nodes(cur, offsets)
        elif cur.children:
            caches = self._caches(cur, dt, status_since=since, now_wall=now_wall)
        else:
            caches = ()
        figures = TargetFigures(
            name=t.name, kind=t.kind, address=t.address, group=t.group, status=status,
            status_since=since, last_success=self._last_success, updated_at=now_wall,
            role=cur.info.get(ROLE, ""), version=cur.info.get(VERSION, ""),
            engine=cur.info.get(ENGINE, ""),
            master_address=cur.info.get(MASTER_ADDRESS, ""),
            master_link=cur.info.get(MASTER_LINK, ""),
            replication_lag_s=g.get(REPLICATION_LAG_S),
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
            caches=caches, detail=self._detail, layer=self.layer, topology=facts,
        )
        if cur.topology is not None:
            from cachetop.group_figures import group_figures  # it builds on this module

            self._events.extend(cur.events)
            return group_figures(figures, cur.topology, list(self._events))
        return with_children_totals(figures) if caches else figures

    def _caches(self, cur: Sample, dt: float, *, status_since: float,
                now_wall: float) -> tuple[TargetFigures, ...]:
        children, prevs = cur.children, self._child_prev
        limit = self._caches_limit
        if limit is None or len(children) <= limit:
            every = tuple(self._linked(name, self._child(name, prevs).update(child), child)
                          for name, child in children.items())
            prevs.update(children)
            return every

        def traffic(name: str) -> float:
            """What top_caches ranks by: ops/s, and -1 where a tracker has no rate (a new
            cache, a reset)."""
            prev, child = prevs.get(name), children[name]
            if prev is None or (dt := child.taken_at - prev.taken_at) <= 0:
                return -1.0
            new, old = child.counters.get(OPS), prev.counters.get(OPS)
            if new is None or old is None or new < old or reset_reason(prev, child):
                return -1.0
            return (new - old) / dt

        kept = set(heapq.nlargest(limit, children, key=traffic))  # stable: ties keep order
        trackers: dict[str, TargetTracker] = {}
        shown: list[TargetFigures] = []
        rest: list[tuple[str, Sample, Sample | None]] = []
        for name, child in children.items():
            if name not in kept:
                rest.append((name, child, prevs.get(name)))
                continue
            tracker = self._child(name, prevs)
            trackers[name] = tracker
            shown.append(self._linked(name, tracker.update(child), child))
        self._children = trackers
        prevs.update(children)  # a cache that skips a poll resumes from its last sample
        resets = self._child_resets
        if resets:
            for name in [n for n, (at, _) in resets.items()
                         if cur.taken_at - at >= RESTART_MARK_S]:
                del resets[name]
        more = more_caches_row(self.target, _rest_sums(rest, self._child_resets),
                               since=status_since, updated_at=now_wall,
                               interval_s=dt if dt > 0 else None)
        return (*shown, more)

    def _linked(self, name: str, figures: TargetFigures, sample: Sample) -> TargetFigures:
        """A cache's figures with the server it lives on: the config's word first
        (`[targets.caches]`), else the one its endpoint names, if that is in the fleet."""
        server = self.target.cache_servers.get(name, "")
        address = sample.info.get(CACHE_SERVER)
        if not server and address and self._resolve is not None:
            server = self._resolve(address)
        return replace(figures, lives_on=server) if server else figures

    def _topology_nodes(self, cur: Sample, offsets: Mapping[str, int]
                        ) -> tuple[TargetFigures, ...]:
        """Each node's figures in the topology's order, with its facts (role, shard, lag); a
        node that failed its poll is a row with its status; one that left is forgotten."""
        from cachetop.group_figures import node_facts  # it builds on this module

        assert cur.topology is not None
        by_address = {str(n.get("address", "")): n for n in cur.topology.get("nodes", [])}
        order = list(by_address)
        order += [name for name in (*cur.children, *cur.child_errors) if name not in order]
        nodes = []
        for name in order:
            if name in cur.children:
                child = cur.children[name]
                facts = node_facts(name, child.info.get(ROLE, ""), by_address.get(name), offsets)
                nodes.append(self._child(name, kind="redis").update(child, facts))
            elif name in cur.child_errors:
                status, message = cur.child_errors[name]
                facts = node_facts(name, None, by_address.get(name), offsets)
                nodes.append(self._child(name, kind="redis").fail(CollectError(status, message),
                                                                  facts))
        for gone in set(self._children) - set(order):
            del self._children[gone]
        return tuple(nodes)

    def _child(self, name: str, prevs: Mapping[str, Sample] | None = None,
               kind: str | None = None) -> TargetTracker:
        """The tracker of one cache of an endpoint, or (with `kind`) one node of a topology,
        whose address is its name."""
        child = self._children.get(name)
        if child is None:
            t = self.target
            child = TargetTracker(replace(t, name=name, kind=kind or t.kind,
                                          address=name if kind else t.address, group=t.group))
            # A cache that was in the "more" row (no tracker) has its last sample kept: its
            # rates start from it rather than an interval later.
            child._prev = prevs.get(name) if prevs is not None else None
            mark = self._child_resets.pop(name, None)
            if mark is not None:
                child._restart_at, child._restart_reason = mark
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
