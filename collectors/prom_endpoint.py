"""Provides PromEndpointCollector: a Prometheus metrics endpoint -> Sample with one child per cache.

The I/O shell is fetch_script() (prom_http, on the poll loop), the parser is
parse_exposition() (prom_text) and the naming conventions live in prom_conventions; this module
only assembles the Sample.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from typing import ClassVar

from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.driver import LoopCollector
from cachetop.collectors.netloop import Script
from cachetop.collectors.prom_conventions import CacheFigures, Mapped, convention_for, map_families
from cachetop.collectors.prom_http import classify, fetch_script
from cachetop.collectors.prom_text import family_lines, parse_exposition
from cachetop.collectors.sample import (
    CACHE_SERVER,
    INSTANCE_ID,
    ROLE,
    SERVER_LATENCY,
    VERSION,
    Histogram,
    Sample,
)

KIND = "metrics"
DETAIL_MAX_LINES = 200


class PromEndpointCollector(LoopCollector):
    """Scrapes one metrics endpoint per poll over a fresh connection (as redis_exporter dials
    per scrape), so a stale keep-alive connection can never fail a poll."""

    kind: ClassVar[str] = KIND

    def __init__(self, target: Target) -> None:
        """Raises ValueError for an unknown convention or custom mapping key (config errors)."""
        self.target = target
        self._convention = convention_for(target.convention, target.mapping)

    def classify(self, exc: BaseException, timeout_s: float) -> CollectError:
        return classify(exc, self.target, timeout_s)

    def _poll(self) -> Script:
        """Fetch, parse and map one exposition.

        Raises:
            CollectError: from the scrape; "too-large" over the target's sample_limit;
                "bad-data" for a malformed exposition or one without any cache series of the
                convention; "down" when an exporter reports its server down.
        """
        text, reply = yield from fetch_script(self.target)
        taken_at = reply.arrived_monotonic
        # The deadline is the network's: parsing runs after the reply is in, and its time is
        # said apart (a slow parse is cachetop's, never the endpoint's timeout).
        parse_started = time.perf_counter()
        families = parse_exposition(text, sample_limit=self.target.sample_limit)
        mapped = map_families(self._convention, families)
        if not mapped.caches:
            raise CollectError("bad-data", f"no {self._convention.name} cache metrics found")
        detail = {
            "convention": self._convention.name,
            "families": family_lines(text, mapped.used_names, DETAIL_MAX_LINES),
        } if self.detail_due(taken_at) else None
        sample = sample_from_mapped(
            self.target, mapped, rtt_s=reply.rtt_s, taken_at=taken_at, detail=detail
        )
        parse_s = time.perf_counter() - parse_started
        if parse_s > self.target.timeout_s:
            slow = (f"slow parse: {parse_s:.1f} s to read {len(families)} families in cachetop "
                    f"(more than the poll's {self.target.timeout_s:g} s; the endpoint answered "
                    f"in {reply.rtt_s * 1000:.0f} ms)")
            sample = dataclasses.replace(sample, degraded=(*sample.degraded, slow))
        return sample


def sample_from_mapped(
    target: Target,
    mapped: Mapped,
    *,
    rtt_s: float,
    taken_at: float,
    detail: Mapping[str, str] | None = None,
) -> Sample:
    """Build the endpoint's Sample: one child per cache, the parent their aggregate.

    The parent's counters and gauges are sums over the children, so its rates are the
    traffic-weighted aggregate (metrics.md); a figure some child lacks is absent, not a partial
    sum. The unlabelled cache, such as an exporter's single instance, takes the target's name.
    """
    children = {
        _child_name(name, target.name, mapped.caches): _child(
            target.name, figures, rtt_s, taken_at, mapped.servers.get(name))
        for name, figures in mapped.caches.items()
    }
    figures = list(mapped.caches.values())
    info = {VERSION: mapped.info.get(VERSION, ""), ROLE: mapped.info.get(ROLE, "")}
    if INSTANCE_ID in mapped.info:
        info[INSTANCE_ID] = mapped.info[INSTANCE_ID]
    return Sample(
        target.name,
        KIND,
        taken_at,
        rtt_s,
        counters=sum_common(f.counters for f in figures),
        gauges=sum_common(f.gauges for f in figures),
        histograms=_parent_histograms(figures),
        quantiles=dict(figures[0].quantiles) if len(figures) == 1 else {},
        info=info,
        probes_s=(rtt_s,),
        children=children,
        detail=detail,
        degraded=mapped.degraded,
    )


def sum_common(parts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per-key sums over mappings, keeping only the keys that every mapping has."""
    parts = list(parts)
    if not parts:
        return {}
    common = set.intersection(*(set(part) for part in parts))
    return {key: sum(part[key] for part in parts) for key in sorted(common)}


def sum_histograms(histograms: list[Histogram]) -> Histogram | None:
    """Per-bucket sum of histograms that share the same bounds; None when the bounds differ."""
    bounds = [tuple(bound for bound, _ in h.buckets) for h in histograms]
    if not histograms or any(b != bounds[0] for b in bounds):
        return None
    counts = (sum(h.buckets[i][1] for h in histograms) for i in range(len(bounds[0])))
    return Histogram(tuple(zip(bounds[0], counts, strict=True)))


def _parent_histograms(figures: list[CacheFigures]) -> dict[str, Histogram]:
    parts = [f.histograms.get(SERVER_LATENCY) for f in figures]
    present = [h for h in parts if h is not None]
    total = sum_histograms(present) if len(present) == len(parts) else None
    return {SERVER_LATENCY: total} if total is not None else {}


def _child(target_name: str, figures: CacheFigures, rtt_s: float, taken_at: float,
           server: str | None = None) -> Sample:
    return Sample(
        target_name,
        KIND,
        taken_at,
        rtt_s,
        counters=dict(figures.counters),
        gauges=dict(figures.gauges),
        histograms=dict(figures.histograms),
        quantiles=dict(figures.quantiles),
        info={CACHE_SERVER: server} if server else {},
    )


def _child_name(name: str, target_name: str, caches: Mapping[str, object]) -> str:
    return name if name or target_name in caches else target_name
