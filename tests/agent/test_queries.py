"""The pure parts of `cachetop --prometheus` and `--shard`: PromQL text, the assembly of
answers into figures, chart steps, and the hashmod split."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from cachetop.agent.shard import Shard, hashmod, parse_shard, shard_targets
from cachetop.collectors.base import Target
from cachetop.prometheus.api import _seconds
from cachetop.prometheus.queries import (
    CACHETOP,
    MAX_POINTS,
    REDIS_EXPORTER,
    assemble,
    family_queries,
    matchers,
    range_step_s,
    select,
)


def test_selectors_are_merged_inside_the_braces() -> None:
    assert matchers('{job="a", env="b"}') == 'job="a", env="b"'
    assert select("m", 'cache=""', 'job="a"') == 'm{cache="",job="a"}'
    assert select('m{s="hit"}', 'job="a"') == 'm{s="hit",job="a"}'
    assert select("m", "", "") == "m"


def test_assembled_figures_of_known_answers() -> None:
    queries = {q.what: q for q in family_queries(REDIS_EXPORTER, "", 3.0)}
    labels = {"instance": "r:9121"}
    answers = [(queries["up"], [(labels, 1.0)]),
               (queries["increase:hits"], [(labels, 800.0)]),
               (queries["increase:misses"], [(labels, 200.0)]),
               (queries["rate:ops"], [(labels, 123.0)]),
               (queries["gauge:keys"], [(labels, 42.0)]),
               (queries["p99_s"], [(labels, 250.0)])]  # usec
    [(family, figures)] = assemble(answers, 1.0, 1.0, now=100.0)
    assert family is REDIS_EXPORTER
    assert (figures.name, figures.kind, figures.status) == ("r:9121", "redis", "up")
    assert figures.hit_ratio == 0.8 and (figures.hits_delta, figures.misses_delta) == (800, 200)
    assert (figures.ops_per_s, figures.keys) == (123.0, 42.0)
    assert figures.server_latency.p99_s == 250e-6


def test_a_down_target_has_no_figures_and_a_series_without_up_is_no_target() -> None:
    queries = {q.what: q for q in family_queries(CACHETOP, "", 3.0)}
    down = {"target": "a", "kind": "redis", "group": "", "address": "h:1"}
    answers = [(queries["up"], [(down, 0.0)]),
               (queries["status"], [({"target": "a", "status": "timeout"}, 1.0)]),
               (queries["gauge:keys"], [(down, 5.0), ({"target": "stray"}, 1.0)])]
    [(_, figures)] = assemble(answers, 1.0, 1.0, now=100.0)
    assert (figures.name, figures.status, figures.keys, figures.address) == (
        "a", "timeout", None, "h:1")


@given(st.floats(60, 10 * 365 * 86400), st.integers(1, 4000), st.floats(0.1, 120))
def test_a_chart_step_never_asks_for_more_than_prometheus_allows(
        span: float, width: int, scrape: float) -> None:
    step = range_step_s(span, width, scrape)
    points = span / step * (1 - 1e-12)  # one rounding of the division
    assert points <= MAX_POINTS and points <= width and step >= scrape


def test_durations() -> None:
    assert (_seconds("15s"), _seconds("1m30s"), _seconds("500ms")) == (15.0, 90.0, 0.5)
    assert _seconds("x") is None and _seconds("") is None


def test_hashmod_is_prometheus_relabel_hashmod() -> None:
    # Prometheus: sum64(md5(value)) % modulus, sum64 keeping the digest's low 8 bytes.
    digest = hashlib.md5(b"cache-7").digest()
    assert hashmod("cache-7", 5) == int(digest[8:].hex(), 16) % 5


@given(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=50),
       st.integers(1, 8))
def test_the_shards_of_a_fleet_cover_each_target_exactly_once(names: list[str],
                                                              count: int) -> None:
    targets = [Target(name=n, kind="redis", address=n) for n in names]
    seen = [t.name for i in range(1, count + 1)
            for t in shard_targets(targets, Shard(i, count))]
    assert sorted(seen) == sorted(names)


def test_shard_text() -> None:
    assert parse_shard("2/3") == Shard(2, 3)
