"""top_caches: the busiest caches of an endpoint, and the rest as one traffic-weighted figure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachetop.collectors.base import Target
from cachetop.collectors.sample import EVICTIONS, HITS, KEYS, MISSES, OPS, USED_MEMORY_BYTES, Sample
from cachetop.fleet import TargetFigures
from cachetop.metrics.top_caches import MoreCaches, top_caches
from cachetop.tracker import TargetTracker, more_caches_row

ENDPOINT = Target(name="ep", kind="metrics", address="127.0.0.1:9", http_url="http://127.0.0.1:9/")

PROPS = settings(max_examples=200, deadline=None)


def cache(name: str, ops: float | None, hits: float | None = None, misses: float | None = None,
          *, status: str = "up", **figures: float | None) -> TargetFigures:
    return TargetFigures(name, "metrics", "endpoint", status=status, ops_per_s=ops,
                         hits_delta=hits, misses_delta=misses, **figures)  # type: ignore[arg-type]


def test_the_busiest_are_shown_in_their_order_and_the_rest_summed_by_traffic() -> None:
    caches = [
        cache("a", 10.0, 8, 2, evictions_per_s=1.0, memory_used_bytes=100.0, keys=5.0),
        cache("b", 500.0, 400, 100),
        cache("c", 30.0, 0, 30, evictions_per_s=2.5, memory_used_bytes=50.0),
        cache("d", 700.0, 700, 0),
        cache("e", 60.0, 60, 0, expirations_per_s=4.0, keys=7.0),
    ]
    top = top_caches(caches, 2)

    assert [c.name for c in top.shown] == ["b", "d"]
    # a, c and e: 8 + 0 + 60 hits of 10 + 30 + 60 lookups.
    assert top.rest == MoreCaches(count=3, ops_per_s=100.0, hit_ratio=68 / 100, hits_delta=68,
                                  misses_delta=32, evictions_per_s=3.5, expirations_per_s=4.0,
                                  memory_used_bytes=150.0, keys=12.0)
    assert top.rest is not None and top.rest.label == "3 more caches"


def test_the_hit_ratio_of_the_rest_is_weighted_not_a_mean_of_ratios() -> None:
    # 800 hits and 200 misses over the two: 80 %, where a mean of ratios would give 50 %.
    caches = [cache("big", 1000.0, 799, 1), cache("small", 1.0, 1, 199), cache("top", 5000.0)]
    rest = top_caches(caches, 1).rest
    assert rest is not None and rest.hit_ratio == pytest.approx(0.8)


def test_caches_without_a_rate_rank_last_ties_keep_their_order_and_down_ones_add_nothing() -> None:
    caches = [cache("new", None), cache("x", 5.0, 5, 0), cache("y", 5.0, 1, 4),
              cache("down", None, status="down"), cache("z", 5.0, 0, 5)]
    top = top_caches(caches, 2)

    assert [c.name for c in top.shown] == ["x", "y"]
    assert top.rest is not None
    assert (top.rest.count, top.rest.ops_per_s, top.rest.hit_ratio) == (3, 5.0, 0.0)
    assert top.rest.label == "3 more caches"


def test_nothing_is_cut_under_the_limit_and_everything_at_zero() -> None:
    caches = [cache("a", 1.0, 1, 0), cache("b", 2.0, 1, 1)]
    assert top_caches(caches, 2).shown == tuple(caches)
    assert top_caches(caches, 5).rest is None
    everything = top_caches(caches, 0)
    assert everything.shown == ()
    assert everything.rest is not None
    assert (everything.rest.count, everything.rest.ops_per_s, everything.rest.hit_ratio) == (
        2, 3.0, 2 / 3)
    assert top_caches([caches[0]], 0).rest.label == "1 more cache"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="0 or more"):
        top_caches(caches, -1)


_CACHES = st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 10**6).map(float)),
                             st.integers(0, 1000), st.integers(0, 1000), st.booleans()),
                   max_size=30)


@PROPS
@given(_CACHES, st.integers(0, 35))
def test_shown_and_rest_partition_the_caches_busiest_first(
    specs: list[tuple[float | None, int, int, bool]], limit: int
) -> None:
    caches = [cache(f"c{i}", ops, hits, misses, status="up" if up else "down")
              for i, (ops, hits, misses, up) in enumerate(specs)]
    top = top_caches(caches, limit)
    shown = {c.name for c in top.shown}
    rest = [c for c in caches if c.name not in shown]

    assert len(top.shown) == min(limit, len(caches))
    assert [c.name for c in top.shown] == [c.name for c in caches if c.name in shown]
    if top.rest is None:
        assert not rest
        return
    assert top.rest.count == len(rest)
    live_rest = [c for c in rest if c.live]
    rates = [c.ops_per_s for c in live_rest if c.ops_per_s is not None]
    assert top.rest.ops_per_s == (sum(rates) if rates else None)
    lookups = sum(c.hits_delta + c.misses_delta for c in live_rest)  # type: ignore[operator]
    hits = sum(c.hits_delta for c in live_rest)  # type: ignore[misc]
    assert top.rest.hit_ratio == (hits / lookups if lookups else None)

    def traffic(c: TargetFigures) -> float:
        return c.ops_per_s if c.live and c.ops_per_s is not None else -1.0

    assert min(map(traffic, top.shown), default=float("inf")) >= max(map(traffic, rest))


# -- the engine's limited trackers against full trackers cut by top_caches ---------------------

def _endpoint_sample(taken_at: float, caches: dict[str, dict[str, float]]) -> Sample:
    children = {
        name: Sample("ep", "metrics", taken_at, 0.001,
                     counters={k: v for k, v in c.items() if k in (HITS, MISSES, OPS, EVICTIONS)},
                     gauges={k: v for k, v in c.items() if k in (KEYS, USED_MEMORY_BYTES)})
        for name, c in caches.items()}
    return Sample("ep", "metrics", taken_at, 0.001, children=children)


def _comparable(f: TargetFigures) -> tuple[object, ...]:
    return (f.name, f.status, f.ops_per_s, f.hit_ratio, f.hits_delta, f.misses_delta,
            f.evictions_per_s, f.memory_used_bytes, f.keys)


def _approx(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [tuple(pytest.approx(v, rel=1e-9) if isinstance(v, float) else v for v in row)
            for row in rows]


@settings(max_examples=60)
@given(st.data())
def test_a_tracker_with_a_caches_limit_shows_what_full_trackers_cut_by_top_caches_show(
        data: st.DataObject) -> None:
    """The engine keeps trackers only for an endpoint's busiest caches (20,000 trackers cost
    ~0.3 s a poll): over polls where caches come, go, reset and change rank, its rows must equal
    what a tracker per cache followed by top_caches() gives, the "more" row included."""
    limit = data.draw(st.integers(0, 6), label="limit")
    full = TargetTracker(ENDPOINT)
    limited = TargetTracker(ENDPOINT, caches_limit=limit)
    counters: dict[str, dict[str, float]] = {}
    for poll in range(data.draw(st.integers(2, 6), label="polls")):
        names = data.draw(st.lists(st.sampled_from([f"c{i}" for i in range(12)]), unique=True,
                                   max_size=12), label=f"caches at poll {poll}")
        current: dict[str, dict[str, float]] = {}
        for name in names:
            old = counters.get(name, {HITS: 0.0, MISSES: 0.0, OPS: 0.0, EVICTIONS: 0.0})
            if data.draw(st.integers(0, 9), label="reset?") == 0:
                old = {k: 0.0 for k in old}  # a counter reset (the cache restarted)
            hits = float(data.draw(st.integers(0, 500)))
            misses = float(data.draw(st.integers(0, 500)))
            current[name] = {HITS: old[HITS] + hits, MISSES: old[MISSES] + misses,
                             OPS: old[OPS] + hits + misses,
                             EVICTIONS: old[EVICTIONS] + data.draw(st.integers(0, 5)),
                             KEYS: float(data.draw(st.integers(0, 100))),
                             USED_MEMORY_BYTES: float(data.draw(st.integers(0, 10_000)))}
        counters.update(current)
        if not current:
            continue
        sample = _endpoint_sample(100.0 + poll, current)
        expected_all = full.update(sample)
        got = limited.update(sample)
        top = top_caches(expected_all.caches, limit)
        expected = [_comparable(c) for c in top.shown]
        if top.rest is not None:
            more = more_caches_row(ENDPOINT, top.rest, since=0.0, updated_at=0.0,
                                   interval_s=None)
            expected.append(_comparable(more))
        assert [_comparable(c) for c in got.caches] == _approx(expected)
        # The endpoint's own row still covers every cache.
        assert _comparable(got)[2:] == tuple(_approx([_comparable(expected_all)[2:]])[0])
