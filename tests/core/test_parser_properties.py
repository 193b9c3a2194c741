"""Property tests of the parsers that read server replies (reliability.md sections 5 and 6.3).

INFO, `stats` and expositions are untrusted input: for arbitrary bytes and for real replies with
mutated lines, the parsers never raise, every number they produce is finite, their output is
bounded, and the fields a mutation did not touch still parse to the values the server sent. The
real replies come from servers started here, and the expected values from what the test made
the server do (keys written, gets sent) or from an independent parser (redis-py's parse_info).
"""

from __future__ import annotations

import math
import re
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UntypedMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString
from redis._parsers.helpers import parse_info

from cachetop.collectors import memcached_stats, redis_parse
from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.prom_conventions import convention_for, map_families
from cachetop.collectors.prom_text import parse_exposition
from cachetop.collectors.redis_info import sample_from_info
from cachetop.collectors.sample import Histogram, Sample
from cachetop.tracker import TargetTracker
from tests.collectors.test_prom_endpoint import (
    RouteServer,
    collect,
    collect_error,
    metrics_target,
)
from tests.servers import MemcachedServer, RedisServer
from tests.wait import SLACK_S

# Examples, deadline and seed come from the profile loaded in tests/conftest.py.
PROPS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
HOSTILE_VALUES = (
    b"", b"=1.0", b"-", b"1.2.3", b"nan", b"NaN", b"inf", b"-inf", b"1e999", b"-1e999",
    b"\x1b]0;PWNED\x07\x1b[2J", b"\x00\x00", b"\xff\xfe\xc0", b"9" * 5000, b"1" * 70_000,
    b"[@click=app.quit]x[/]", b"0x10", b" ", b"1e308",
)
KEYS_WRITTEN = 37
GET_HITS, GET_MISSES = 5, 3
TARGET = Target("t", "redis", "127.0.0.1:1")


def _redis_raw(port: int, *args: str) -> bytes:
    conn = redis.Connection(port=port, socket_timeout=5)
    try:
        conn.send_command(*args)
        reply = conn.read_response()
    finally:
        conn.disconnect()
    assert isinstance(reply, bytes)
    return reply


@pytest.fixture(scope="module")
def info_raw() -> Iterator[bytes]:
    """INFO all of a real redis-server holding KEYS_WRITTEN keys in db 0 and 2 in db 3."""
    server = RedisServer()
    server.start()
    try:
        client = server.client()
        for i in range(KEYS_WRITTEN):
            client.set(f"k{i}", "v", ex=1000 if i < 10 else None)
        other = redis.Redis(port=server.port, db=3)
        other.set("a", "1")
        other.set("b", "2")
        other.close()
        yield _redis_raw(server.port, "INFO", "all")
    finally:
        server.close()


@pytest.fixture(scope="module")
def stats_raw() -> Iterator[bytes]:
    """`stats` of a real memcached after GET_HITS hits and GET_MISSES misses."""
    server = MemcachedServer()
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"set hit 0 0 1\r\nx\r\n")
            _read_until(sock, b"STORED\r\n")
            for _ in range(GET_HITS):
                sock.sendall(b"get hit\r\n")
                _read_until(sock, b"END\r\n")
            for _ in range(GET_MISSES):
                sock.sendall(b"get miss\r\n")
                _read_until(sock, b"END\r\n")
            sock.sendall(b"stats\r\n")
            yield _read_until(sock, b"END\r\n")
    finally:
        server.close()


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    return data


def _finite_everywhere(sample: Sample) -> None:
    for value in (*sample.counters.values(), *sample.gauges.values()):
        assert math.isfinite(value)


def _mutate(lines: list[bytes], picks: list[tuple[int, int]], sep: bytes) -> set[bytes]:
    """Replace the value of the picked lines by a hostile one; returns the names touched."""
    touched = set()
    for index, choice in picks:
        name = lines[index % len(lines)].partition(sep)[0]
        value = HOSTILE_VALUES[choice % len(HOSTILE_VALUES)]
        lines[index % len(lines)] = name + (sep + value if choice % 7 else b"")  # or no value
        touched.add(name)
    return touched


# ---------------------------------------------------------------- Redis INFO

def test_real_info_parses_to_what_the_server_holds(info_raw: bytes) -> None:
    space = redis_parse.keyspace(info_raw)
    assert space[0][:2] == (KEYS_WRITTEN, 10) and space[3][:2] == (2, 0)
    oracle = parse_info(info_raw.decode())
    fields = redis_parse.info_fields(info_raw)
    for name, value in fields.items():
        assert value == (float(oracle[name]) if isinstance(value, float) else str(oracle[name]))
    sample = sample_from_info(TARGET, info_raw, taken_at=1.0, rtt_s=0.0)
    assert sample.gauges["keys"] == KEYS_WRITTEN + 2


@PROPS
@given(st.binary(max_size=4096))
def test_info_parsers_never_raise_on_arbitrary_bytes(raw: bytes) -> None:
    for value in redis_parse.info_fields(raw).values():
        assert isinstance(value, str) or math.isfinite(value)
    for keys, expires, ttl in redis_parse.keyspace(raw).values():
        assert 0 <= keys < 2**64 and 0 <= expires < 2**64 and 0 <= ttl < 2**64
    redis_parse.info_all(raw)
    _finite_everywhere(sample_from_info(TARGET, raw, taken_at=1.0, rtt_s=0.0))


@PROPS
@given(picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=12),
       junk=st.lists(st.binary(max_size=300).map(lambda b: re.sub(rb"[\r\n]", b"", b)),
                     max_size=5),
       crlf=st.booleans())
def test_mutated_info_leaves_other_fields_exact(
    info_raw: bytes, picks: list[tuple[int, int]], junk: list[bytes], crlf: bool
) -> None:
    clean = redis_parse.info_fields(info_raw)
    lines = info_raw.split(b"\r\n")
    touched = _mutate(lines, picks, b":")
    touched |= {line.partition(b":")[0] for line in junk}
    raw = (b"\r\n" if crlf else b"\n").join(lines[:5] + junk + lines[5:])
    fields = redis_parse.info_fields(raw)
    for value in fields.values():
        assert len(value) <= 256 if isinstance(value, str) else math.isfinite(value)
    for name, value in clean.items():
        if name.encode() not in touched:
            assert fields.get(name) == value, name
    everything = redis_parse.info_all(raw)
    assert all(len(k) <= 256 and len(v) <= redis_parse.MAX_VALUE_CHARS
               for k, v in everything.items())
    _finite_everywhere(sample_from_info(TARGET, raw, taken_at=1.0, rtt_s=0.0))


def test_the_redis_exporter_panic_line_is_only_that_field(info_raw: bytes) -> None:
    raw = info_raw.replace(b"\r\nused_memory:", b"\r\nlatency_percentiles_usec_get:=1.0"
                           b"\r\nused_memory:=1.0\r\nx_used_memory:", 1)
    fields = redis_parse.info_fields(raw)
    assert "used_memory" not in fields
    assert fields["keyspace_hits"] == float(parse_info(info_raw.decode())["keyspace_hits"])


def test_huge_info_is_bounded_in_output_and_time(info_raw: bytes) -> None:
    flood = b"".join(b"field%d:%d\r\n" % (i, i) for i in range(100_000))
    raw = info_raw + b"\r\nhuge:" + b"x" * (1 << 20) + b"\r\n" + flood
    started = time.perf_counter()
    everything = redis_parse.info_all(raw)
    fields = redis_parse.info_fields(raw)
    elapsed = time.perf_counter() - started
    assert len(everything) <= redis_parse.MAX_LINES
    assert len(everything["huge"]) == redis_parse.MAX_VALUE_CHARS
    assert fields == redis_parse.info_fields(info_raw)
    assert elapsed < 2.0


def test_keyspace_with_absurd_counts_skips_the_line() -> None:
    raw = (b"# Keyspace\r\ndb0:keys=" + b"9" * 5000 + b",expires=0,avg_ttl=0\r\n"
           b"db1:keys=7,expires=1,avg_ttl=5\r\n" + b"db2:keys=1e3,expires=0\r\n")
    assert redis_parse.keyspace(raw) == {1: (7, 1, 5)}
    many = b"".join(b"db%d:keys=1,expires=0,avg_ttl=0\r\n" % i for i in range(50_000))
    assert len(redis_parse.keyspace(many)) == redis_parse.MAX_DBS


_RESP = st.recursive(
    st.one_of(st.integers(-2**70, 2**70), st.binary(max_size=12), st.text(max_size=8),
              st.floats(), st.none(), st.booleans()),
    lambda children: st.one_of(st.lists(children, max_size=8),
                               st.dictionaries(st.binary(max_size=8), children, max_size=4)),
    max_leaves=40,
)


def _histogram_reply(commands: Mapping[bytes, list[int]]) -> list[object]:
    reply: list[object] = []
    for name, counts in commands.items():
        flat: list[object] = []
        for i, count in enumerate(counts):
            flat += [2 ** (i + 1), count]
        reply += [name, [b"calls", counts[-1] if counts else 0, b"histogram_usec", flat]]
    return reply


@PROPS
@given(st.one_of(_RESP, st.dictionaries(
    st.binary(min_size=1, max_size=6),
    st.lists(st.integers(0, 2**63), max_size=6), max_size=4).map(_histogram_reply)))
def test_latency_histogram_is_none_or_a_sane_histogram(reply: object) -> None:
    parsed = redis_parse.latency_histogram(reply)
    if parsed is None:
        return
    histogram, calls = parsed
    assert isinstance(histogram, Histogram) and calls >= 0
    bounds = [b for b, _ in histogram.buckets]
    counts = [c for _, c in histogram.buckets]
    assert bounds == sorted(bounds) and bounds[-1] == math.inf
    assert all(math.isfinite(c) and c >= 0 for c in counts)
    assert counts == sorted(counts)


def test_latency_histogram_rejects_non_cumulative_counts() -> None:
    good = _histogram_reply({b"get": [3, 5, 9]})
    parsed = redis_parse.latency_histogram(good)
    assert parsed is not None and parsed[0].buckets[-1] == (math.inf, 9.0)
    assert redis_parse.latency_histogram(_histogram_reply({b"get": [3, 9, 5]})) is None
    assert redis_parse.latency_histogram(_histogram_reply({b"get": [-3, 9]})) is None


# ---------------------------------------------------------------- memcached stats

def _stat_lines(raw: bytes) -> dict[str, bytes]:
    """The oracle: every `STAT name value` line, split the obvious way."""
    out = {}
    for line in raw.split(b"\r\n"):
        parts = line.split(b" ", 2)
        if len(parts) == 3 and parts[0] == b"STAT":
            out[parts[1].decode()] = parts[2]
    return out


def test_real_stats_parse_to_the_gets_sent(stats_raw: bytes) -> None:
    fields = memcached_stats.stats_fields(stats_raw)
    oracle = _stat_lines(stats_raw)
    assert fields == {k: v for k, v in oracle.items() if k in fields}
    sample = memcached_stats.sample_from_stats(TARGET, fields, taken_at=1.0, rtt_s=0.0)
    assert sample.counters["hits"] == GET_HITS and sample.counters["misses"] == GET_MISSES
    assert memcached_stats.all_stats(stats_raw) == {k: v.decode() for k, v in oracle.items()}


@PROPS
@given(st.binary(max_size=4096))
def test_stats_parsers_never_raise_on_arbitrary_bytes(raw: bytes) -> None:
    fields = memcached_stats.stats_fields(raw)
    assert all(len(v) <= memcached_stats.MAX_VALUE_BYTES for v in fields.values())
    everything = memcached_stats.all_stats(raw)
    assert all(len(k) <= 128 and len(v) <= 1024 for k, v in everything.items())
    _finite_everywhere(memcached_stats.sample_from_stats(TARGET, fields, taken_at=1.0, rtt_s=0.0))
    _finite_everywhere(memcached_stats.sample_from_stats(TARGET, everything, taken_at=1.0,
                                                         rtt_s=0.0))


@PROPS
@given(st.binary(max_size=4096))
def test_the_fused_poll_parser_equals_the_two_steps_on_arbitrary_bytes(raw: bytes) -> None:
    assert memcached_stats.poll_parts(raw) == memcached_stats.stats_parts(
        memcached_stats.stats_fields(raw))


@PROPS
@given(picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=12),
       crlf=st.booleans())
def test_the_fused_poll_parser_equals_the_two_steps_on_mutated_stats(
    stats_raw: bytes, picks: list[tuple[int, int]], crlf: bool
) -> None:
    lines = stats_raw.split(b"\r\n")
    _mutate_stats(lines, picks)
    raw = (b"\r\n" if crlf else b"\n").join(lines)
    assert memcached_stats.poll_parts(raw) == memcached_stats.stats_parts(
        memcached_stats.stats_fields(raw))
    assert memcached_stats.poll_parts(stats_raw)[0]["hits"] == GET_HITS


@PROPS
@given(picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=12),
       crlf=st.booleans())
def test_mutated_stats_leave_other_fields_exact(
    stats_raw: bytes, picks: list[tuple[int, int]], crlf: bool
) -> None:
    clean = memcached_stats.stats_fields(stats_raw)
    lines = stats_raw.split(b"\r\n")
    touched = {name.removeprefix(b"STAT ") for name in _mutate_stats(lines, picks)}
    raw = (b"\r\n" if crlf else b"\n").join(lines)
    fields = memcached_stats.stats_fields(raw)
    for name, value in clean.items():
        if name.encode() not in touched:
            assert fields.get(name) == value, name
    sample = memcached_stats.sample_from_stats(TARGET, fields, taken_at=1.0, rtt_s=0.0)
    _finite_everywhere(sample)
    assert all(len(v) <= 256 for v in sample.info.values())


def _mutate_stats(lines: list[bytes], picks: list[tuple[int, int]]) -> set[bytes]:
    touched = set()
    for index, choice in picks:
        line = lines[index % len(lines)]
        if not line.startswith(b"STAT "):
            continue
        name = b" ".join(line.split(b" ", 2)[:2])
        value = HOSTILE_VALUES[choice % len(HOSTILE_VALUES)]
        lines[index % len(lines)] = name + (b" " + value if choice % 7 else b"")
        touched.add(name)
    return touched


def test_a_hostile_value_cannot_fake_another_field(stats_raw: bytes) -> None:
    raw = stats_raw.replace(b"STAT version ", b"STAT version 1 STAT get_hits 999999 ", 1)
    assert memcached_stats.stats_fields(raw)["get_hits"] == str(GET_HITS).encode()


def test_huge_stats_are_bounded(stats_raw: bytes) -> None:
    flood = b"".join(b"STAT f%d %d\r\n" % (i, i) for i in range(100_000))
    raw = stats_raw.replace(b"END\r\n", flood + b"STAT big " + b"7" * (1 << 20) + b"\r\nEND\r\n")
    started = time.perf_counter()
    assert len(memcached_stats.all_stats(raw)) <= memcached_stats.MAX_LINES
    assert "big" not in memcached_stats.stats_fields(raw)
    assert time.perf_counter() - started < 2.0


_STATS_VALUE = st.one_of(st.sampled_from(HOSTILE_VALUES), st.binary(max_size=20),
                         st.text(max_size=20), st.integers(-2**2000, 2**2000), st.floats(),
                         st.booleans(), st.none())
_STATS_KEY = st.one_of(
    st.builds(lambda n, f: f"{n}:{f}", st.text(max_size=6), st.text(max_size=8)),
    st.builds(lambda n, f: f"items:{n}:{f}", st.text(max_size=6), st.text(max_size=8)),
    st.text(max_size=12),
)


@PROPS
@given(st.dictionaries(_STATS_KEY, _STATS_VALUE, max_size=30),
       st.dictionaries(_STATS_KEY, _STATS_VALUE, max_size=30))
def test_slab_table_and_typed_stats_are_finite(slabs: dict[str, object],
                                               items: dict[str, object]) -> None:
    table = memcached_stats.slab_table(slabs, items)
    assert len(table) <= 1024
    assert all(math.isfinite(v) for fields in table.values() for v in fields.values())
    _finite_everywhere(memcached_stats.sample_from_stats(TARGET, slabs, taken_at=1.0,
                                                         rtt_s=0.0))


def test_sums_of_huge_finite_counters_are_dropped_not_infinite() -> None:
    stats = {"cmd_get": b"1.7e308", "cmd_set": b"1.7e308", "get_hits": b"4"}
    sample = memcached_stats.sample_from_stats(TARGET, stats, taken_at=1.0, rtt_s=0.0)
    assert "ops" not in sample.counters and sample.counters["hits"] == 4.0


# ---------------------------------------------------------------- Prometheus ingest

FIXTURES = Path(__file__).parent.parent / "fixtures"
CACHETOP = convention_for("cachetop", {})


def _ingest(text: str) -> None:
    """Parse and map with every built-in convention; only CollectError may come out."""
    try:
        families = parse_exposition(text)
    except CollectError as exc:
        failed: CollectError | None = exc
    else:
        failed = None
    if failed is not None:
        assert failed.status in ("bad-data", "too-large") and "\n" not in failed.message
        return
    for name in ("cachetop", "micrometer", "redis_exporter", "memcached_exporter"):
        try:
            mapped = map_families(convention_for(name, {}), families)
        except CollectError as exc:
            assert exc.status == "down", exc.message  # noqa: PT017 (many calls in one test)
            continue
        for cache in mapped.caches.values():
            for value in (*cache.counters.values(), *cache.gauges.values(),
                          *cache.quantiles.values()):
                assert math.isfinite(value)
            for histogram in cache.histograms.values():
                assert all(math.isfinite(c) for _, c in histogram.buckets)


_PROM_ALPHABET = st.sampled_from(list('abc_{}="\\,# \n\t01.e+-InfNa\x1b\x00\u202e:') + ["le", "\r"])


@PROPS
@given(st.one_of(st.text(max_size=10_240),
                 st.lists(_PROM_ALPHABET, max_size=2000).map("".join)))
def test_arbitrary_exposition_raises_only_collect_error(text: str) -> None:
    started = time.perf_counter()
    _ingest(text)
    assert time.perf_counter() - started < 1.0  # 10 KiB at most: generous for a noisy CI


@PROPS
@given(fixture=st.sampled_from(sorted(p.name for p in FIXTURES.glob("*.prom"))),
       picks=st.lists(st.tuples(st.integers(0, 10**6),
                                st.sampled_from(["", "=1.0", "-", "1.2.3", "nan", "1e999",
                                                 '"', "{", "}", "\x1b[2J", "\x00", "\\",
                                                 "le=", ' 1 2 3', "\ufffd"])), max_size=8))
def test_mutated_fixtures_raise_only_collect_error(fixture: str,
                                                   picks: list[tuple[int, str]]) -> None:
    lines = (FIXTURES / fixture).read_text().split("\n")
    for index, junk in picks:
        i = index % len(lines)
        cut = index % (len(lines[i]) + 1)
        lines[i] = lines[i][:cut] + junk + lines[i][cut:]
    _ingest("\n".join(lines))


def test_escaped_quotes_are_read_in_linear_time() -> None:
    # 1.28 MB of \" in one label took prometheus_client 6.3 s (reliability.md section 5): its
    # scan for the closing quote is quadratic. The lean parser's is not, so nothing is refused.
    for body, quotes in (('x{a="' + '\\"' * 640_000 + '"} 1\n', [640_000]),
                         (''.join('x{a="' + '\\"' * 30_000 + f'",b="{i}"}} 1\n'
                                  for i in range(40)), [30_000] * 40)):
        started = time.perf_counter()
        samples = [s for family in parse_exposition(body) for s in family.samples]
        assert [len(s.labels["a"]) for s in samples] == quotes
        assert all(set(s.labels["a"]) == {'"'} for s in samples)
        assert time.perf_counter() - started < SLACK_S  # the quadratic scan took 6.3 s


def test_a_deadline_is_checked_within_a_body_of_long_lines() -> None:
    body = "".join(f'x{{a="{"y" * 60_000}",b="{i}"}} 1\n' for i in range(100))
    calls = []
    parse_exposition(body, check=lambda: calls.append(1))
    assert len(calls) >= 5  # 6 MB in 100 lines: checked by volume, not only every 4096 lines


# -- round trip: families rendered by prometheus_client's own exposition, parsed back equal

_NAME = st.from_regex(r"\Am_[a-z][a-z0-9_]{0,10}[a-z0-9]\Z")
_LABEL = st.from_regex(r"\A[a-z][a-z0-9_]{0,6}\Z").filter(lambda n: n not in ("le", "quantile"))
_LABEL_VALUE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_VALUE = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from([math.inf, -math.inf]))
_COUNT = st.integers(0, 2**53)


@st.composite
def _families(draw: st.DrawFn) -> list[Metric]:
    names = draw(st.lists(_NAME, min_size=1, max_size=4, unique=True)
                 .filter(lambda ns: _no_suffix_clash(ns)))
    families: list[Metric] = []
    for name in names:
        labels = draw(st.lists(_LABEL, max_size=3, unique=True))
        kind = draw(st.sampled_from(["counter", "gauge", "untyped", "histogram"]))
        family: Metric
        if kind == "counter":
            family = CounterMetricFamily(name, "help", labels=labels)
        elif kind == "gauge":
            family = GaugeMetricFamily(name, "help \\ with \n escapes", labels=labels)
        elif kind == "untyped":
            family = UntypedMetricFamily(name, "", labels=labels)
        else:
            family = HistogramMetricFamily(name, "h", labels=labels)
        for values in draw(st.lists(st.tuples(*[_LABEL_VALUE] * len(labels)), max_size=3,
                                    unique=True)):
            if kind == "histogram":
                counts = sorted(draw(st.lists(_COUNT, min_size=1, max_size=4)))
                bounds = sorted(draw(st.lists(st.floats(0, 1e6), min_size=len(counts) - 1,
                                              max_size=len(counts) - 1, unique=True)))
                buckets = [(floatToGoString(b), c) for b, c in
                           zip([*bounds, math.inf], counts, strict=True)]
                family.add_metric(list(values), buckets, sum_value=draw(_VALUE))
            elif kind == "counter":
                family.add_metric(list(values), draw(st.floats(0, 1e300)))
            else:
                family.add_metric(list(values), draw(_VALUE))
        families.append(family)
    return families


def _no_suffix_clash(names: list[str]) -> bool:
    suffixes = ("_total", "_bucket", "_count", "_sum", "_created")
    return not any(a != b and a.startswith(b) and a[len(b):] in suffixes
                   for a in names for b in names) and not any(n.endswith(suffixes) for n in names)


class _Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


@PROPS
@given(_families())
def test_round_trip_through_prometheus_client_exposition(families: list[Metric]) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    parsed = parse_exposition(generate_latest(registry).decode())
    expected = [(f.name, f.type, sorted((s.name, sorted(s.labels.items()), s.value)
                                        for s in f.samples))
                for f in families if f.samples]
    got = [(f.name, f.type, sorted((s.name, sorted(s.labels.items()), s.value)
                                   for s in f.samples))
           for f in parsed if f.samples]
    assert got == expected


# -- histograms: only valid ones give percentiles

def _latency(body: str) -> tuple[Mapping[str, Histogram], tuple[str, ...]]:
    mapped = map_families(CACHETOP, parse_exposition(body))
    return mapped.caches["a"].histograms, mapped.degraded


_H = "cache_operation_duration_seconds"


@pytest.mark.parametrize("body", [
    # buckets not cumulative
    f'{_H}_bucket{{cache="a",le="0.1"}} 9\n{_H}_bucket{{cache="a",le="+Inf"}} 4\n',
    # no +Inf bucket
    f'{_H}_bucket{{cache="a",le="0.1"}} 4\n{_H}_bucket{{cache="a",le="1"}} 9\n',
    # _count is not the +Inf bucket
    f'{_H}_bucket{{cache="a",le="0.1"}} 4\n{_H}_bucket{{cache="a",le="+Inf"}} 9\n'
    f'{_H}_count{{cache="a"}} 12\n',
    # a negative count
    f'{_H}_bucket{{cache="a",le="0.1"}} -4\n{_H}_bucket{{cache="a",le="+Inf"}} 9\n',
    # le is not a number
    f'{_H}_bucket{{cache="a",le="fast"}} 4\n{_H}_bucket{{cache="a",le="+Inf"}} 9\n',
], ids=["not-cumulative", "no-inf", "count-mismatch", "negative", "bad-le"])
def test_invalid_histograms_give_no_percentiles(body: str) -> None:
    histograms, degraded = _latency(f'cache_hits_total{{cache="a"}} 1\n{body}')
    assert histograms == {}
    assert any("invalid histogram" in line for line in degraded)


def test_a_valid_histogram_with_its_count_is_kept() -> None:
    body = (f'cache_hits_total{{cache="a"}} 1\n{_H}_bucket{{cache="a",le="0.1"}} 4\n'
            f'{_H}_bucket{{cache="a",le="+Inf"}} 9\n{_H}_count{{cache="a"}} 9\n')
    histograms, degraded = _latency(body)
    assert histograms["server_latency_s"].buckets == ((0.1, 4.0), (math.inf, 9.0))
    assert degraded == ()


# -- the rows of reliability.md section 5 about metrics not covered by test_prom_endpoint.py

def test_special_floats_are_parsed_and_kept_out_of_figures() -> None:
    families = parse_exposition("x NaN\ny +Inf\nz -Inf\nw Infinity\nv 1e999\nu nan\n")
    values = [s.value for f in families for s in f.samples]
    assert math.isnan(values[0]) and math.isnan(values[5])
    assert values[1:5] == [math.inf, -math.inf, math.inf, math.inf]
    body = ('cache_hits_total{cache="a"} 5\ncache_hits_total{cache="a",op="x"} +Inf\n'
            'cache_misses_total{cache="a"} 1e999\ncache_entries{cache="a"} 7\n')
    cache = map_families(CACHETOP, parse_exposition(body)).caches["a"]
    assert cache.counters == {"hits": 5.0} and cache.gauges == {"keys": 7.0}


@pytest.mark.parametrize("value", ["1_000", "0x10"])
def test_go_incompatible_numbers_are_a_line_error(value: str) -> None:
    with pytest.raises(CollectError) as caught:
        parse_exposition(f"ok 1\nx {value}\n")
    assert caught.value.status == "bad-data" and caught.value.message.startswith("line 2: ")


def test_label_escapes_are_unescaped_and_control_bytes_kept() -> None:
    body = 'x{p="C:\\\\DIR\\\\F.TXT",q="x:\\n\\"F\\"",r="\x1b[2J\x00[@click=app.quit]"} 1\n'
    (family,) = parse_exposition(body)
    assert family.samples[0].labels == {"p": "C:\\DIR\\F.TXT", "q": 'x:\n"F"',
                                        "r": "\x1b[2J\x00[@click=app.quit]"}


def test_duplicate_type_and_interleaved_families_merge_by_name() -> None:
    body = ("# TYPE cache_hits_total counter\ncache_hits_total{cache=\"a\"} 5\n"
            "# TYPE cache_misses_total counter\ncache_misses_total{cache=\"a\"} 2\n"
            "# TYPE cache_hits_total counter\ncache_hits_total{cache=\"b\"} 7\n")
    caches = map_families(CACHETOP, parse_exposition(body)).caches
    assert caches["a"].counters == {"hits": 5.0, "misses": 2.0, "ops": 7.0}
    assert caches["b"].counters == {"hits": 7.0}


def test_negative_counter_is_left_out() -> None:
    body = 'cache_hits_total{cache="a"} -5\ncache_misses_total{cache="a"} 3\n'
    assert map_families(CACHETOP, parse_exposition(body)).caches["a"].counters == {"misses": 3.0}


def test_huge_counters_whose_sum_overflows_are_left_out() -> None:
    body = ('cache_hits_total{cache="a",op="get"} 1.7e308\n'
            'cache_hits_total{cache="a",op="set"} 1.7e308\ncache_misses_total{cache="a"} 3\n')
    assert map_families(CACHETOP, parse_exposition(body)).caches["a"].counters == {"misses": 3.0}


def test_no_trailing_newline_crlf_and_quoted_utf8_names_are_accepted() -> None:
    families = parse_exposition('x{a="1"} 1\r\n{"my.metric",b="2"} 3')
    assert [(f.name, dict(f.samples[0].labels), f.samples[0].value) for f in families] == [
        ("x", {"a": "1"}, 1.0), ("my.metric", {"b": "2"}, 3.0)]


# ---------------------------------------------------------------- rates over any sequence

_STEP = st.tuples(
    st.floats(-1.0, 10.0),                      # dt between receive times (may be <= 0)
    st.lists(st.integers(-50, 1000), min_size=4, max_size=4),  # counter moves; < 0 is a reset
    st.sampled_from(["same", "same", "same", "new-run-id", "uptime-down"]),
)


def _samples(steps: list[tuple[float, list[int], str]]) -> list[Sample]:
    t, uptime, run = 100.0, 1000.0, 0
    values = [10**6] * 4
    out = []
    for dt, moves, event in steps:
        t += dt
        values = [max(0, v + m) for v, m in zip(values, moves, strict=True)]
        uptime = 1.0 if event == "uptime-down" else uptime + max(dt, 0.0)
        run += event == "new-run-id"
        counters = dict(zip(("ops", "hits", "misses", "evictions"), map(float, values),
                            strict=True))
        out.append(Sample("t", "redis", t, 0.0, counters=counters,
                          gauges={"uptime_s": uptime}, info={"instance_id": f"run{run}"}))
    return out


@PROPS
@given(st.lists(_STEP, min_size=1, max_size=30))
def test_rates_are_never_negative_and_resets_are_gaps(
    steps: list[tuple[float, list[int], str]]
) -> None:
    tracker = TargetTracker(Target("t", "redis", "127.0.0.1:1"))
    previous: Sample | None = None
    for sample in _samples(steps):
        figures = tracker.update(sample)
        rates = {"ops": figures.ops_per_s, "evictions": figures.evictions_per_s}
        for value in (*rates.values(), figures.hit_ratio, figures.hits_delta,
                      figures.misses_delta):
            assert value is None or (math.isfinite(value) and value >= 0)
        if previous is not None:
            dt = sample.taken_at - previous.taken_at
            reset = (sample.info != previous.info
                     or sample.gauges["uptime_s"] < previous.gauges["uptime_s"]
                     or any(sample.counters[k] < previous.counters[k] for k in sample.counters))
            for name, rate in rates.items():
                if reset or dt <= 0:
                    assert rate is None, (name, reset, dt)
                else:
                    expected = (sample.counters[name] - previous.counters[name]) / dt
                    assert rate == pytest.approx(expected)
        previous = sample


# -- the same rows end to end, through a real HTTP server

@pytest.fixture
def route_server() -> Iterator[RouteServer]:
    srv = RouteServer()
    srv.start()
    yield srv
    srv.close()


def test_escaped_quotes_over_http_are_read_fast(route_server: RouteServer) -> None:
    body = "".join(f'cache_hits_total{{cache="{i}",a="' + '\\"' * 30_000 + '"} 1\n'
                   for i in range(40)).encode()
    started = time.perf_counter()
    sample = collect(metrics_target(route_server.serve("/m", body)))
    assert sorted(sample.children, key=int) == [str(i) for i in range(40)]
    assert sample.counters["hits"] == 40
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("content_type", ["application/vnd.google.protobuf; proto=x",
                                          "application/json"])
def test_non_text_content_types_are_bad_data(route_server: RouteServer,
                                             content_type: str) -> None:
    url = route_server.serve("/m", b'cache_hits_total{cache="a"} 1\n', content_type=content_type)
    assert collect_error(metrics_target(url)).status == "bad-data"
    assert route_server.requests[-1]["Accept"].startswith("text/plain;version=0.0.4")


_NAME_CHARS = "ab_:"  # few letters: names that are prefixes of one another, shared stems


@settings(max_examples=300)
@given(names=st.sets(st.text(_NAME_CHARS[:3], min_size=1, max_size=6), min_size=1, max_size=12),
       text=st.text(_NAME_CHARS + "\n ", max_size=120))
def test_the_name_trie_matches_what_the_plain_alternation_matches(names: set[str],
                                                                   text: str) -> None:
    """The parsers' field-name group (a trie) finds the same fields as the alternation it
    replaced (every name, longest first), on text made of the names' own letters."""
    from cachetop.collectors.name_trie import name_alternation

    plain = b"|".join(re.escape(n.encode()) for n in sorted(names, key=len, reverse=True))
    old = re.compile(rb"\n(" + plain + rb"):([^\n]*)")
    new = re.compile(rb"\n(" + name_alternation(names) + rb"):([^\n]*)")
    raw = b"\n" + text.encode()
    assert new.findall(raw) == old.findall(raw)
