"""Provides make_collector: the one place that maps a target kind to its collector class."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence

from cachetop.collectors.base import Collector, Target

# Round-trip probes per poll when the config does not say: three give a 60 s window of 180
# samples for the percentiles; past 100 targets one, since probes were ~30 % of the poller's
# CPU at 1,000 targets (bench/README.md).
PROBES_SMALL_FLEET = 3
PROBES_LARGE_FLEET = 1
LARGE_FLEET = 100

# Imported on first use, so a CLI run against Redis alone never loads the HTTP stack.
_COLLECTORS = {
    "redis": "cachetop.collectors.redis_info:RedisInfoCollector",
    "memcached": "cachetop.collectors.memcached_stats:MemcachedStatsCollector",
    "metrics": "cachetop.collectors.prom_endpoint:PromEndpointCollector",
    "redis-cluster": "cachetop.collectors.topology_collector:ClusterCollector",
    "redis-sentinel": "cachetop.collectors.topology_collector:SentinelCollector",
}


def make_collectors(targets: Sequence[Target]) -> list[Collector]:
    """Collectors for a whole fleet, with the probe count chosen by the fleet's size."""
    probes = PROBES_SMALL_FLEET if len(targets) <= LARGE_FLEET else PROBES_LARGE_FLEET
    return [make_collector(t if t.probes_per_poll >= 0 else
                           dataclasses.replace(t, probes_per_poll=probes)) for t in targets]


def make_collector(target: Target) -> Collector:
    """A new collector for `target`; raises KeyError for an unknown kind."""
    if target.probes_per_poll < 0:
        target = dataclasses.replace(target, probes_per_poll=PROBES_SMALL_FLEET)
    module_name, _, class_name = _COLLECTORS[target.kind].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(target)  # type: ignore[no-any-return]
