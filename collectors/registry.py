"""Provides make_collector: the one place that maps a target kind to its collector class."""

from __future__ import annotations

import importlib

from collectors.base import Collector, Target

# Imported on first use, so a CLI run against Redis alone never loads the HTTP stack.
_COLLECTORS = {
    "redis": "collectors.redis_info:RedisInfoCollector",
    "memcached": "collectors.memcached_stats:MemcachedStatsCollector",
    "metrics": "collectors.prom_endpoint:PromEndpointCollector",
}


def make_collector(target: Target) -> Collector:
    """A new collector for `target`; raises KeyError for an unknown kind."""
    module_name, _, class_name = _COLLECTORS[target.kind].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(target)  # type: ignore[no-any-return]
