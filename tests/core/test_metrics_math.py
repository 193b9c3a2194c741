"""Metrics math against hand-computed tables (metrics.md)."""

from __future__ import annotations

import math

import pytest

from cachetop.collectors.base import Target
from cachetop.collectors.sample import Sample
from cachetop.fleet import TargetFigures, aggregate
from cachetop.metrics.quantiles import bucket_delta, histogram_quantile, sample_quantile
from cachetop.metrics.rates import delta, rate_per_s, reset_reason
from cachetop.metrics.ratios import weighted_hit_ratio, window_hit_ratio
from cachetop.snapshot_json import ms3
from cachetop.tracker import TargetTracker

INF = math.inf
# le=0.1:10, 0.2:30, 0.5:90, +Inf:100 (cumulative)
H = [(0.1, 10.0), (0.2, 30.0), (0.5, 90.0), (INF, 100.0)]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.05, 0.05),          # lowest bucket: lower bound 0, 5 of 10 -> half of 0.1
        (0.10, 0.1),           # rank 10 sits exactly at the top of the first bucket
        (0.20, 0.15),          # rank 20: 0.1 + 0.1 * (10/20)
        (0.50, 0.3),           # rank 50: 0.2 + 0.3 * (20/60)
        (0.90, 0.5),           # rank 90: top of the 0.5 bucket
        (0.95, 0.5),           # +Inf bucket: the highest finite bound
        (0.99, 0.5),
    ],
)
def test_histogram_quantile_matches_prometheus(q: float, expected: float) -> None:
    assert histogram_quantile(q, H) == pytest.approx(expected)


@pytest.mark.parametrize(
    "buckets",
    [
        [],                                        # nothing
        [(INF, 10.0)],                             # fewer than two buckets
        [(0.1, 1.0), (0.2, 2.0)],                  # no +Inf bucket
        [(0.1, 0.0), (INF, 0.0)],                  # no observations
    ],
)
def test_histogram_quantile_is_none_where_prometheus_gives_nan(buckets: list) -> None:
    assert histogram_quantile(0.5, buckets) is None


def test_histogram_quantile_forces_monotonic_counts() -> None:
    # A non-monotonic bucket (25 after 30) is raised to 30, as Prometheus does.
    assert histogram_quantile(0.5, [(0.1, 10.0), (0.2, 30.0), (0.4, 25.0), (INF, 40.0)]) == \
        pytest.approx(0.15)  # rank 20: 0.1 + 0.1 * (10 / 20)


def test_bucket_delta_handles_steps_and_resets() -> None:
    prev = [(1e-6, 5.0), (4e-6, 9.0), (INF, 10.0)]          # 2e-6 omitted: a step at 5
    cur = [(1e-6, 7.0), (2e-6, 12.0), (4e-6, 15.0), (INF, 17.0)]
    assert bucket_delta(prev, cur) == [(1e-6, 2.0), (2e-6, 7.0), (4e-6, 6.0), (INF, 7.0)]
    assert bucket_delta(cur, prev) is None


@pytest.mark.parametrize(
    ("prev", "cur", "dt", "expected"),
    [
        (None, 10.0, 1.0, None),     # first sample
        (10.0, 5.0, 1.0, None),      # counter reset: a gap, never negative
        (10.0, 30.0, 0.0, None),     # no time passed
        (10.0, 30.0, 2.0, 10.0),
        (10.0, 10.0, 1.0, 0.0),      # zero traffic is a real 0
    ],
)
def test_rate_per_s(prev: float | None, cur: float, dt: float, expected: float | None) -> None:
    assert rate_per_s(prev, cur, dt) == expected


@pytest.mark.parametrize(
    ("hits", "misses", "expected"),
    [(800, 200, 0.8), (0, 0, None), (0, 5, 0.0), (5, 0, 1.0), (None, 3, None)],
)
def test_window_hit_ratio(hits: float | None, misses: float | None,
                          expected: float | None) -> None:
    assert window_hit_ratio(hits, misses) == expected


def test_weighted_ratio_is_not_the_mean_of_ratios() -> None:
    # A busy cache at 90% and a quiet one at 10%: the fleet is ~89.2%, not 50%.
    deltas = [(9000.0, 1000.0), (10.0, 90.0)]
    assert weighted_hit_ratio(deltas) == pytest.approx(9010 / 10100)
    assert weighted_hit_ratio(deltas) != pytest.approx((0.9 + 0.1) / 2)
    assert weighted_hit_ratio([(None, None), (0.0, 0.0)]) is None


def test_fleet_aggregate_weights_by_traffic_and_skips_down_targets() -> None:
    busy = TargetFigures("a", "redis", "x", status="up", hits_delta=900, misses_delta=100,
                         ops_per_s=1000.0, hit_ratio=0.9)
    quiet = TargetFigures("b", "redis", "y", status="up", hits_delta=1, misses_delta=9,
                          ops_per_s=10.0, hit_ratio=0.1)
    down = TargetFigures("c", "memcached", "z", status="down", hits_delta=0, misses_delta=1000)
    fleet = aggregate([busy, quiet, down])
    assert fleet.hit_ratio == pytest.approx(901 / 1010)
    assert fleet.ops_per_s == pytest.approx(1010.0)
    assert (fleet.targets_up, fleet.targets_total) == (2, 3)


def _sample(counters: dict, run_id: str = "a", uptime: float = 10.0) -> Sample:
    return Sample("t", "redis", 0.0, 0.0, counters=counters, gauges={"uptime_s": uptime},
                  info={"instance_id": run_id})


@pytest.mark.parametrize(
    ("prev", "cur", "reason"),
    [
        (_sample({"ops": 5}), _sample({"ops": 9}, uptime=11), None),
        (_sample({"ops": 5}), _sample({"ops": 9}, run_id="b"), "restarted"),
        (_sample({"ops": 5}), _sample({"ops": 9}, uptime=1), "restarted"),
        (_sample({"ops": 5, "hits": 7}), _sample({"ops": 9, "hits": 2}), "stats reset"),
    ],
)
def test_reset_reason(prev: Sample, cur: Sample, reason: str | None) -> None:
    got = reset_reason(prev, cur)
    assert (got or "").startswith(reason or "")
    assert (got is None) == (reason is None)


def test_delta_and_sample_quantile() -> None:
    assert delta(3.0, 1.0) is None
    assert delta(1.0, 3.0) == 2.0
    assert sample_quantile(0.5, [4.0, 1.0, 3.0, 2.0]) == pytest.approx(2.5)
    assert sample_quantile(0.99, []) is None


@pytest.mark.parametrize(("seconds", "ms"), [(0.0000123456, 0.0123), (0.00123456, 1.23),
                                            (0.123456, 123.0), (1.23456, 1230.0), (None, None)])
def test_ms_three_significant_figures(seconds: float | None, ms: float | None) -> None:
    assert ms3(seconds) == ms


def _poll(at: float, hits: float, misses: float, ops: float) -> Sample:
    return Sample("t", "redis", at, 0.001, counters={"hits": hits, "misses": misses, "ops": ops},
                  gauges={"uptime_s": 100.0 + at}, info={"instance_id": "a"})


def test_tracker_hit_ratio_is_the_interval_not_the_lifetime() -> None:
    """Hand-built samples, no server: 1,000 hits and 1,000 misses before the interval, then
    exactly 800 hits and 200 misses in it. The interval's ratio is 80.0%, the lifetime's 60.0%
    (1,800 of 3,000); a tracker that mixed them up would say 60% or 50%."""
    tracker = TargetTracker(Target("t", "redis", "127.0.0.1:1"))
    first = tracker.update(_poll(10.0, 1000, 1000, 2000))
    assert first.hit_ratio is None                   # no interval yet: no ratio, never 0
    assert first.lifetime_hit_ratio == 0.5
    second = tracker.update(_poll(12.0, 1800, 1200, 3000))
    assert (second.hits_delta, second.misses_delta) == (800, 200)
    assert second.hit_ratio == pytest.approx(0.8)
    assert second.lifetime_hit_ratio == pytest.approx(0.6)
    assert second.ops_per_s == pytest.approx(500.0)  # 1,000 commands in 2 s
    idle = tracker.update(_poll(14.0, 1800, 1200, 3000))
    assert idle.hit_ratio is None                    # no lookups in the interval
    assert idle.lifetime_hit_ratio == pytest.approx(0.6)
