"""The pure parts of the key analysis: prefixes, TTL classes, estimates, the tally, the parsers.

Oracles are independent: naive recomputation from the rows (Counter, sorted), textbook
formulas written out here, and server output as documented (INFO KEYSIZES, HOTKEYS GET) or
captured (memcached `stats detail dump`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachetop.keys.document import report_document
from cachetop.keys.estimate import total_estimate, unseen_bound
from cachetop.keys.keysizes import parse_bound, sizes_from_keysizes
from cachetop.keys.memcached_detail import PrefixCounters, interval_rates, parse_detail_dump
from cachetop.keys.prefixes import check_delimiter, prefix_of, size_bucket, ttl_class
from cachetop.keys.redis_hot import hot_from_session, lfu_reason, parse_hotkeys
from cachetop.keys.redis_scan import reverse_bits, sample_cursors
from cachetop.keys.tally import OVERFLOW, TYPE_NAMES, KeyTally, Row


@pytest.mark.parametrize(("key", "delimiter", "depth", "prefix"), [
    (b"user:1:cart", b":", 1, b"user:"),
    (b"user:1:cart", b":", 2, b"user:1:"),
    (b"user:1:cart", b":", 3, b"user:1:"),       # the last segment is the key's own name
    (b"user:7", b":", 2, b"user:"),
    (b"plain", b":", 1, None),
    (b":lead", b":", 1, b":"),
    (b"a::b", b":", 2, b"a::"),
    (b"a->b->c", b"->", 2, b"a->b->"),
    (b"", b":", 1, None),
    (b"\xff\x00:x", b":", 1, b"\xff\x00:"),
])
def test_prefix_of(key: bytes, delimiter: bytes, depth: int, prefix: bytes | None) -> None:
    assert prefix_of(key, delimiter, depth) == prefix


@pytest.mark.parametrize(("pttl", "cls"), [(-1, 0), (0, 1), (59_999, 1), (60_000, 2),
                                           (3_599_999, 2), (3_600_000, 3), (10**12, 3)])
def test_ttl_class(pttl: int, cls: int) -> None:
    assert ttl_class(pttl) == cls


@pytest.mark.parametrize(("value", "bucket"), [(0, 0), (1, 1), (2, 2), (3, 2), (4, 4),
                                               (1023, 512), (1024, 1024), (5 << 20, 4 << 20)])
def test_size_bucket(value: int, bucket: int) -> None:
    assert size_bucket(value) == bucket


@pytest.mark.parametrize(("delimiter", "depth", "ok"), [(b":", 1, True), (b"", 1, False),
                                                        (b":", 0, False), (b":", 4, False),
                                                        (b"x" * 9, 1, False)])
def test_check_delimiter(delimiter: bytes, depth: int, ok: bool) -> None:
    assert (check_delimiter(delimiter, depth) is None) == ok


# -- estimates ------------------------------------------------------------------------------------

def test_estimate_of_a_total_is_the_textbook_srs_formula() -> None:
    """N * mean +- z * N * s / sqrt(n) * sqrt(1 - n/N), with s the sample standard deviation
    of the per-key values (0 for keys outside the prefix)."""
    values = [0, 0, 120, 0, 88, 88, 0, 4000, 0, 0, 72, 0]
    population = 1000
    estimate, margin = total_estimate(sum(values), sum(v * v for v in values), len(values),
                                      population)
    s = statistics.stdev(values)
    expected = 1.959963984540054 * population * s / math.sqrt(len(values)) * math.sqrt(
        1 - len(values) / population)
    assert estimate == pytest.approx(population * statistics.mean(values))
    assert margin == pytest.approx(expected)


@pytest.mark.parametrize(("n", "population", "estimate", "margin"), [
    (0, 100, 0.0, 0.0),           # nothing sampled: nothing to say
    (100, 100, 500.0, 0.0),       # the whole population: exact
    (1, 100, 500.0, math.inf),    # one key: no variance to speak of
])
def test_estimate_edges(n: int, population: int, estimate: float, margin: float) -> None:
    got = total_estimate(5.0 * n, 25.0 * n, n, population)
    assert got == (estimate, margin)


def test_unseen_bound_is_the_rule_of_three() -> None:
    assert unseen_bound(10_000, 1_000_000) == 300
    assert unseen_bound(100, 100) == 0
    assert unseen_bound(0, 50) == 50


# -- the tally against a naive recomputation -----------------------------------------------------

_KEYS = st.binary(min_size=0, max_size=12).map(lambda b: b.replace(b"\x00", b":"))
_ROWS = st.lists(st.tuples(_KEYS, st.integers(1, 6), st.sampled_from([b"embstr", b"raw",
                                                                       b"listpack"]),
                           st.integers(0, 10_000), st.sampled_from([-1, 5, 59_999, 60_000,
                                                                    3_600_000]),
                           st.integers(-1, 3000), st.integers(-1, 255)),
                 max_size=300)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(rows=_ROWS, depth=st.integers(1, 3), top=st.integers(1, 5))
def test_full_tally_equals_a_naive_recount(rows: list[Row], depth: int, top: int) -> None:
    tally = KeyTally(depth=depth, top=top)
    for start in range(0, len(rows), 7):
        tally.add(rows[start:start + 7])
    report = tally.report(target="t", kind="redis", db=0, mode="full", status="done",
                          keys_total=len(rows), elapsed_s=1.0, progress=1.0)
    first: dict[bytes, Row] = {}
    for row in rows:
        first.setdefault(row[0], row)               # a key listed twice counts once
    unique = list(first.values())
    keys: Counter[bytes | None] = Counter()
    memory: Counter[bytes | None] = Counter()
    ttl: dict[bytes | None, Counter[int]] = defaultdict(Counter)
    for key, _, _, mem, pttl, _, _ in unique:
        parts = key.split(b":")
        cut = min(depth, len(parts) - 1)
        prefix = b":".join(parts[:cut]) + b":" if cut else None
        keys[prefix] += 1
        memory[prefix] += mem
        ttl[prefix][0 if pttl < 0 else 1 if pttl < 60_000 else 2 if pttl < 3_600_000 else 3] += 1
    assert report.keys_scanned == len(unique)
    assert {r.prefix: r.keys.value for r in report.prefixes} == keys
    assert {r.prefix: r.memory_bytes.value for r in report.prefixes if r.memory_bytes} == memory
    for row in report.prefixes:
        assert [row.ttl[n] for n in ("none", "under_1m", "under_1h", "longer")] == [
            ttl[row.prefix][i] for i in range(4)]
    assert [b.memory_bytes for b in report.biggest] == sorted(
        (r[3] for r in unique), reverse=True)[:top]
    for t in report.types:
        of_type = [r for r in unique if TYPE_NAMES[r[1]] == t.type]
        assert t.keys.value == len(of_type)
        assert [b.memory_bytes for b in t.biggest] == sorted((r[3] for r in of_type),
                                                             reverse=True)[:top]
        counted = [r[5] for r in of_type if r[5] >= 0]
        assert (t.most_elements.elements if t.most_elements else None) == (
            max(counted) if counted else None)
    hot = sorted((r[6] for r in unique if r[6] >= 0), reverse=True)[:top]
    assert [h.score for h in report.hot or ()] == hot


def test_prefixes_past_the_limit_share_one_row() -> None:
    tally = KeyTally(max_prefixes=3)
    tally.add([(b"p%d:k" % i, 1, b"embstr", 10, -1, 1, -1) for i in range(10)])
    report = tally.report(target="t", kind="redis", db=0, mode="full", status="done",
                          keys_total=10, elapsed_s=1.0, progress=1.0)
    rows = {r.prefix: r.keys.value for r in report.prefixes}
    assert rows == {b"p0:": 1, b"p1:": 1, b"p2:": 1, OVERFLOW: 7}
    assert report.overflow_keys == 7
    doc = report_document(report)
    assert [p["group"] for p in doc["prefixes"]].count("more_prefixes") == 1


def test_sampled_report_scales_to_the_keyspace() -> None:
    """400 of 4000 keys read, 100 of them `a:` of 50 bytes: ~1000 `a:` keys, ~50 kB."""
    tally = KeyTally()
    tally.add([(b"a:%d" % i, 1, b"embstr", 50, -1, 3, -1) for i in range(100)])
    tally.add([(b"b:%d" % i, 1, b"embstr", 10, -1, 3, -1) for i in range(300)])
    report = tally.report(target="t", kind="redis", db=0, mode="sampled", status="done",
                          keys_total=4000, elapsed_s=1.0, progress=1.0)
    a = next(r for r in report.prefixes if r.prefix == b"a:")
    assert a.keys.value == pytest.approx(1000)
    assert a.memory_bytes is not None and a.memory_bytes.value == pytest.approx(50_000)
    p = 100 / 400
    assert a.keys.margin == pytest.approx(1.959963984540054 * 4000 * math.sqrt(
        p * (1 - p) * 400 / 399 / 400 * (1 - 400 / 4000)))
    assert report.confidence == 0.95 and report.unseen_bound == 30


# -- sampled mode's cursors -----------------------------------------------------------------------

def test_sample_cursors_put_one_page_in_each_stretch_of_the_walk() -> None:
    cursors = sample_cursors(1_000_000, 20_000, 100, seed=7)
    bits, pages = 20, 200
    positions = [reverse_bits(c, bits) for c in cursors]
    assert len(positions) == pages
    stretch = (1 << bits) / pages
    assert [int(p // stretch) for p in positions] == list(range(pages))
    assert sample_cursors(1_000_000, 20_000, 100, seed=7) == cursors
    assert sample_cursors(1_000_000, 20_000, 100, seed=8) != cursors


@pytest.mark.parametrize(("value", "bits", "reversed_value"), [(0b0001, 4, 0b1000),
                                                               (0b0110, 4, 0b0110),
                                                               (1, 1, 1), (5, 0, 0)])
def test_reverse_bits(value: int, bits: int, reversed_value: int) -> None:
    assert reverse_bits(value, bits) == reversed_value


# -- parsers of server output ---------------------------------------------------------------------

KEYSIZES_8 = """# Keysizes
db0_distrib_strings_sizes:2=1,4=1,8=1,16=1,32=1,64=1,128=1,256=1,512=1,1K=1,2K=1,4M=3
db0_distrib_lists_items:1=5,2=1,64K=1
db0_distrib_sets_items:1=1
db1_distrib_hashes_items:1=9
"""


def test_info_keysizes_histograms() -> None:
    sizes = sizes_from_keysizes(KEYSIZES_8.encode(), 0)
    assert sizes is not None
    assert sizes.by_type["string"][4 << 20] == 3 and sizes.by_type["string"][1024] == 1
    assert sizes.by_type["list"] == {1: 5, 2: 1, 65536: 1}
    assert sizes.by_type["set"] == {1: 1}
    assert "hash" not in sizes.by_type                      # db1's
    assert sizes.unit == {"string": "bytes", "list": "items", "set": "items"}
    assert sizes_from_keysizes(b"", 0) is None               # Redis < 8: no such section
    assert parse_bound("512") == 512 and parse_bound("2G") == 2 << 30


# HOTKEYS GET as documented for Redis 8.6 (RESP2, one map in an array).
HOTKEYS_GET = [[b"tracking-active", 0, b"sample-ratio", 1, b"selected-slots", [[0, 16383]],
                b"all-commands-all-slots-us", 103, b"collection-duration-ms", 0,
                b"by-cpu-time-us", [b"hotkey_001_counter", 29, b"hotkey_001", 25],
                b"by-net-bytes", [b"hotkey_001", 446, b"hotkey_002", 328]]]


def test_hotkeys_get_reply() -> None:
    fields = parse_hotkeys(HOTKEYS_GET)
    assert fields is not None and fields["tracking-active"] == 0
    hot = hot_from_session(fields, 10)
    assert [(h.key, h.measure, h.score) for h in hot] == [
        (b"hotkey_001_counter", "cpu_us", 29.0), (b"hotkey_001", "cpu_us", 25.0),
        (b"hotkey_002", "net_bytes", 328.0)]
    assert parse_hotkeys(None) is None
    assert parse_hotkeys({b"by-cpu-time-us": [b"k", 1]}) == {"by-cpu-time-us": [b"k", 1]}


def test_lfu_reason() -> None:
    assert lfu_reason("allkeys-lfu", False) is None
    assert lfu_reason("volatile-lfu", False) is None
    why = lfu_reason("allkeys-lru", False)
    assert why is not None and "allkeys-lru" in why and "MONITOR" in why


DETAIL_DUMP = [b"PREFIX user get 100 hit 80 set 5 del 1", b"PREFIX page get 10 hit 3 set 0 del 0",
               b"PREFIX odd get x hit 1 set 0 del 0", b"garbage"]


def test_stats_detail_dump_and_interval_rates() -> None:
    before = parse_detail_dump(DETAIL_DUMP)
    assert before == {b"user": PrefixCounters(100, 80, 5, 1), b"page": PrefixCounters(10, 3, 0, 0)}
    after = {b"user": PrefixCounters(1100, 880, 25, 1), b"page": PrefixCounters(10, 3, 0, 0),
             b"new": PrefixCounters(4, 1, 0, 0)}
    rates = interval_rates(before, after, 2.0)
    assert rates[b"user"].hit_ratio == pytest.approx(0.8) and rates[b"user"].gets_per_s == 500
    assert rates[b"user"].sets_per_s == 10
    assert rates[b"page"].hit_ratio is None                  # no gets in the interval: not 0 %
    assert rates[b"new"].hit_ratio == pytest.approx(0.25)    # new prefixes count from zero
    reset = {b"user": PrefixCounters(3, 1, 0, 0)}
    assert b"user" not in interval_rates(before, reset, 2.0)  # a stats reset: no figure
    assert interval_rates(before, after, 0) == {}
