"""The demo application's parts: the local LRU, the phase schedule, the key skew, and its
/metrics exposition as cachetop's `cachetop` convention reads it."""

from __future__ import annotations

import random

from prometheus_client import generate_latest

from cachetop.collectors.prom_conventions import convention_for, map_families
from cachetop.collectors.prom_text import parse_exposition
from cachetop.collectors.sample import (
    EVICTIONS,
    HITS,
    KEYS,
    MISSES,
    SERVER_LATENCY,
    USED_MEMORY_BYTES,
)
from cachetop.demo.app_metrics import AppMetrics
from cachetop.demo.lru import ENTRY_OVERHEAD_BYTES, LocalLRU
from cachetop.demo.phases import Schedule, ZipfKeys
from cachetop.demo.shop import CACHES


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lru_evicts_least_recently_used_to_stay_under_its_byte_limit() -> None:
    entry = 10 + ENTRY_OVERHEAD_BYTES + 2  # a 2-character key and a 10-byte value
    lru = LocalLRU(max_bytes=3 * entry)
    for key in ("k1", "k2", "k3"):
        lru.set(key, b"x" * 10, ttl_s=60)
    assert lru.get("k1") == b"x" * 10  # k1 is now the most recently used
    lru.set("k4", b"y" * 10, ttl_s=60)
    assert lru.get("k2") is None
    assert lru.get("k1") is not None and lru.get("k4") is not None
    counts = lru.counts()
    assert (counts.hits, counts.misses, counts.evictions) == (3, 1, 1)
    assert counts.entries == 3 and counts.memory_bytes == 3 * entry <= counts.max_memory_bytes


def test_lru_expired_entries_are_misses_and_expirations() -> None:
    clock = Clock()
    lru = LocalLRU(max_bytes=10_000, clock=clock)
    lru.set("a", b"1", ttl_s=5)
    clock.now = 4.9
    assert lru.get("a") == b"1"
    clock.now = 5.0
    assert lru.get("a") is None
    counts = lru.counts()
    assert (counts.hits, counts.misses, counts.expirations, counts.entries) == (1, 1, 1, 0)


def test_lru_invalidates_by_tag_and_clears() -> None:
    lru = LocalLRU(max_bytes=10_000)
    lru.set("p1", b"1", 60, tags=["category:1"])
    lru.set("p2", b"2", 60, tags=["category:1", "sale"])
    lru.set("p3", b"3", 60, tags=["category:2"])
    assert lru.invalidate_tags(["category:1"]) == 2
    assert lru.get("p1") is None and lru.get("p2") is None and lru.get("p3") == b"3"
    assert lru.invalidate_tags(["sale"]) == 0  # p2's other tag index was cleaned up
    lru.clear()
    assert lru.counts().entries == 0 and lru.counts().memory_bytes == 0


def test_schedule_runs_cold_start_then_bursts_and_deploys() -> None:
    s = Schedule(cold_start_s=20, first_burst_s=30, burst_every_s=180, burst_s=20,
                 first_deploy_s=100, deploy_every_s=300, deploy_s=15)
    assert [s.phase_at(t) for t in (0, 19.9, 20, 49.9, 50, 69.9, 70)] == [
        "cold-start", "cold-start", "steady", "steady", "hot-key-burst", "hot-key-burst",
        "steady"]
    assert s.phase_at(120) == "deploy" and s.phase_at(135) == "steady"
    assert s.phase_at(230) == "hot-key-burst" and s.phase_at(420) == "deploy"
    assert s.rate_factor(0) == 0.3 and abs(s.rate_factor(10) - 0.65) < 1e-9
    assert s.rate_factor(55) == s.burst_rate_factor and s.rate_factor(80) == 1.0


def test_zipf_keys_are_skewed_towards_low_ids() -> None:
    keys, rng = ZipfKeys(3000, 1.1), random.Random(1)
    draws = [keys.draw(rng) for _ in range(20_000)]
    assert min(draws) >= 0 and max(draws) < 3000
    top = sum(1 for d in draws if d < 230) / len(draws)
    assert abs(top - keys.share_of_top(230)) < 0.02
    assert 0.7 < top < 0.85


def test_exposition_maps_every_cache_with_figures_and_latency() -> None:
    metrics = AppMetrics(CACHES)
    metrics.add_source("local-lru", lambda: {"hits": 8, "misses": 2, "evictions": 1,
                                             "entries": 5, "memory_bytes": 500,
                                             "max_memory_bytes": 1000})
    for cache in CACHES[1:]:
        metrics.hit(cache, True)
        metrics.hit(cache, False)
    for cache in CACHES:
        metrics.timed(cache, "get", lambda: None)
    metrics.timed("redis-l2", "delete", lambda: None)  # an operation seen for the first time
    text = generate_latest(metrics.registry).decode()
    mapped = map_families(convention_for("cachetop", {}), parse_exposition(text))
    assert set(mapped.caches) == set(CACHES)
    lru = mapped.caches["local-lru"]
    assert lru.counters[HITS] == 8 and lru.counters[MISSES] == 2 and lru.counters[EVICTIONS] == 1
    assert lru.gauges[KEYS] == 5 and lru.gauges[USED_MEMORY_BYTES] == 500
    for cache in CACHES[1:]:
        assert mapped.caches[cache].counters[HITS] == 1
        assert mapped.caches[cache].counters[MISSES] == 1
    for figures in mapped.caches.values():
        assert SERVER_LATENCY in figures.histograms
