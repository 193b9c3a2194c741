"""The lean exposition parser, cachetop.collectors.prom_parse, against prometheus_client's.

For every input both give the same families (name, type) with the same samples (name, labels,
value) in the same order, or both refuse. Inputs: the fixtures, whole exporter scrapes, the demo
application's real output, a 20,000-cache endpoint, and Hypothesis-generated expositions: lines
with every variant the grammar allows or almost allows (escapes, HELP/TYPE, histograms and
summaries, timestamps, NaN/+Inf, exotic spacing, quoted names), runs of plain lines, mutated
fixtures and token soup. Each input is parsed with bulk runs from 1 line and from the default,
so both fast paths and the slow one are held to the oracle.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cachetop.collectors import prom_parse
from cachetop.collectors.prom_parse import ExpositionError, count_samples, parse_families
from cachetop.demo.app_metrics import AppMetrics

FIXTURES = Path(__file__).parent.parent / "fixtures"
ALL_FIXTURES = sorted([*FIXTURES.glob("*.prom"), *FIXTURES.glob("exporters/*.prom")])
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BULK_FROM = (1, 2, prom_parse.BULK_MIN_LINES)
# What prometheus_client raises for a line it refuses (IndexError: a whitespace-only name).
REFUSALS = (ValueError, IndexError, KeyError, TypeError)

Parsed = list[tuple[str, str, list[tuple[str, dict[str, str], object]]]] | None


def _value(value: float) -> object:
    """Values compare with ==, except that NaN equals NaN (and so -0.0 equals 0.0)."""
    return "NaN" if math.isnan(value) else value


def reference(text: str) -> Parsed:
    try:
        families = list(text_string_to_metric_families(text))
    except REFUSALS:
        return None
    return [(f.name, f.type, [(s.name, dict(s.labels), _value(float(s.value))) for s in f.samples])
            for f in families]


@contextmanager
def bulk_from(lines: int) -> Iterator[None]:
    saved = prom_parse.BULK_MIN_LINES
    prom_parse.BULK_MIN_LINES = lines
    try:
        yield
    finally:
        prom_parse.BULK_MIN_LINES = saved


def lean(text: str, bulk_lines: int = prom_parse.BULK_MIN_LINES) -> Parsed:
    with bulk_from(bulk_lines):
        try:
            families = parse_families(text)
        except ExpositionError:
            return None
    return [(f.name, f.type, [(s.name, dict(s.labels), _value(s.value)) for s in f.samples])
            for f in families]


def assert_same(text: str) -> None:
    expected = reference(text)
    for lines in BULK_FROM:
        assert lean(text, lines) == expected, (lines, text[:2000])


# ---- whole expositions


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_fixtures_parse_as_prometheus_client_does(path: Path) -> None:
    text = path.read_text()
    assert reference(text) is not None or "malformed" in path.name
    assert_same(text)
    assert_same(text.replace("\n", "\r\n"))


def test_the_demo_applications_output_parses_as_prometheus_client_does() -> None:
    caches = [f"cache-{i}" for i in range(40)]
    metrics = AppMetrics(caches, operations=("get", "set", "delete"))
    for number, cache in enumerate(caches):
        for _ in range(number % 7):
            metrics.hit(cache, True)
        metrics.hit(cache, False)
        metrics.timed(cache, "get", lambda: None)
    text = generate_latest(metrics.registry).decode()
    parsed = reference(text)
    assert parsed is not None and sum(len(f[2]) for f in parsed) > 40 * 3 * 14
    assert_same(text)


def endpoint_of(caches: int) -> str:
    """The issue's endpoint: hits and misses for `caches` values of the `cache` label."""
    lines = ["# HELP cache_hits_total Lookups that found a value.",
             "# TYPE cache_hits_total counter"]
    lines += [f'cache_hits_total{{cache="tenant-{i:05d}"}} {i * 37 + 11}' for i in range(caches)]
    lines += ["# HELP cache_misses_total Lookups that did not.",
              "# TYPE cache_misses_total counter"]
    lines += [f'cache_misses_total{{cache="tenant-{i:05d}"}} {i * 3 + 1}' for i in range(caches)]
    return "\n".join(lines) + "\n"


def test_a_20000_cache_endpoint_parses_as_prometheus_client_does() -> None:
    text = endpoint_of(20_000)
    parsed = lean(text)
    assert parsed == reference(text)
    assert parsed is not None and [len(f[2]) for f in parsed] == [20_000, 20_000]
    assert count_samples(text) == 40_000


# Corners of the reference's grammar, each checked against it (most are accepted there).
EDGE_CASES = [
    "inf\n", "nan 1\n", 'x y{a="1"} 1\n', '{"my.metric",b="2"} 3', 'x{a="1",,b="2"} 1\n',
    'x{a\\n="1"} 1\n', '# TYPE "" bogus\nx 1\n', '# HELP\n{__name__=""} 1\n',
    "x 1 garbage 3\n", 'x{a="1"}1\n', "x 1\t2\n", "x 1 \t 2\n", "x\t1\n",
    "# TYPE x counter\nx 1\n# TYPE x gauge\n", "# TYPE x_total counter\nx_total 1\n",
    "# TYPE x counter\nx_total 1\n", 'x 1 # {a="b"} 2', 'x{ a = "1" , b="2" } 1',
    'x{__a="1"} 1', 'x{"__a"="1"} 1', 'x{"__\\nx"="1"} 1\n', 'x{"a b"="1"} 1',
    'x{a="1" b="2"} 1', 'x{a="\\\\"} 1', 'x{a="\\"} 1', 'x{a="\\u00e9\\x"} 1', "x 0x10",
    "x 1_0", 'x{a="1"} 1 2 3', '# HELP x a "b c\nx 1', "#HELP x y\nx 1", "# TYPE x\n",
    '# TYPE "q.name" counter extra\n{"q.name"} 1\n', '# TYPE "q.name" counter\n{"q.name"} 1\n',
    "# TYPE x\x0bcounter\nx 1\n", "#\tTYPE\tx\tgauge\nx 1\n", "# TYPE x gauge\n# TYPE x bogus\n",
    "# TYPE x histogram\nx_bucket{le=\"1\"} 1\nx_count 1\nx_sum 2\nx 3\n",
    "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\ns_bucket 4\n",
    'x{a="1",} 1', 'x{,a="1"} 1', "x{} 1", "x{,} 1", 'x{a="}"} 1', 'x{a="{"} 1', 'x{a=","} 1',
    'x{a="1"} 1 # exemplar', "x{\"a\"} 1", '{"x"} 1', '{"x", "y"} 1', '{__name__="x"} 1',
    'x{__name__="x"} 1', 'x{ ="1"} 1', 'x{a="1", ="2"} 1', "# HELP \u00a0 doc\n", "x 1e999\n",
    "\ufeffx 1\n", "x\u3000 1\n", '# TYPE x gauge\nx{__a="1"} 1\nx{__a="2"} 2\n',
    "x 1\u3000\n", "x 1 2\u3000\n", '  \t x{a="1"}  1  \n',
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_parse_as_prometheus_client_does(text: str) -> None:
    assert_same(text)
    assert_same(text * 20)  # and in runs, for the bulk paths


# ---- generated expositions

# Each line is clean (every variant the reference accepts) or, one time in HOSTILE, built from
# pieces that may make it refused; a whole exposition is then accepted about half the time.
HOSTILE = 20
_NAMES = st.sampled_from(["x", "x_total", "cache_hits_total", "cache_hits", "h", "h_bucket",
                          "h_sum", "h_count", "s", "s_sum", "s_count", "m:ns", "_u", "x_created",
                          "in", "i1"])
_BAD_NAMES = st.sampled_from(["", " ", "x y", "1x", "x-y"])
_LABEL_NAMES = st.sampled_from(["cache", "le", "quantile", "a", "b_2", "a:b", '"q.name"',
                                '"a b"', " a", "a\\n", '"\\u"'])
_BAD_LABEL_NAMES = st.sampled_from(["__name__", "__x", '"__q"', "", "1a", "a b", '"'])
_VALUE_PIECES = st.sampled_from([*"ab1 ,={}#\t.-", "\\\\", '\\"', "\\n", "\\x", "é", "\u202e",
                                 "\x00", "\r", "\\u00e9"])
_BAD_VALUE_PIECES = st.sampled_from(['"', "\\", '\\\\"'])
_NUMBERS = st.one_of(
    st.integers(-(10**15), 10**15).map(str),
    st.floats().map(repr),
    st.sampled_from(["+Inf", "-Inf", "Inf", "inf", "NaN", "nan", "1e3", "1E3", ".5", "1.", "+1",
                     "-0", "١٢", "0e0", "Infinity", "-nan", "1.5e+06", "4.9E-324", "1e999"]),
)
_BAD_NUMBERS = st.sampled_from(["0x10", "1_0", "abc", "", "}", "{", "#", "1.2.3", "--1"])
_TIMESTAMPS = st.one_of(st.none(), st.integers(-(2**53), 2**53).map(str),
                        st.sampled_from(["1.5", "-1", "NaN", "1 2"]))
_BAD_TIMESTAMPS = st.sampled_from(["abc", "1_0", "#", "0x1"])
_SPACES = st.sampled_from([" ", " ", " ", "\t", "  ", " \t", "\t "])
_EDGES = st.sampled_from(["", "", "", " ", "\t", "\r", " \r", "\x0b", "\u3000"])
_TYPES = st.sampled_from(["counter", "gauge", "histogram", "summary", "untyped", "unknown",
                          "info", "stateset", "gaugehistogram"])
_BAD_TYPES = st.sampled_from(["bogus", "counter extra", "Counter"])


def _hostile(draw: st.DrawFn) -> bool:
    return draw(st.integers(0, HOSTILE - 1)) == 0


@st.composite
def _label_term(draw: st.DrawFn, hostile: bool) -> str:
    name = draw(st.one_of(_LABEL_NAMES, _BAD_LABEL_NAMES) if hostile else _LABEL_NAMES)
    pieces = st.one_of(_VALUE_PIECES, _BAD_VALUE_PIECES) if hostile else _VALUE_PIECES
    value = "".join(draw(st.lists(pieces, max_size=5)))
    shapes = ["ok", "ok", "ok", "spaced"] + (["no-quotes", "open", "name-only"] if hostile else [])
    shape = draw(st.sampled_from(shapes))
    if shape == "spaced":
        return f' {name} = "{value}" '
    if shape == "no-quotes":
        return f"{name}={value}"
    if shape == "open":
        return f'{name}="{value}'
    if shape == "name-only":
        return f'"{value}"'
    return f'{name}="{value}"'


@st.composite
def sample_line(draw: st.DrawFn) -> str:
    hostile = _hostile(draw)
    quoted_name = not hostile and draw(st.integers(0, 9)) == 0  # {"my.metric",a="1"}
    name = "" if quoted_name else draw(st.one_of(_NAMES, _BAD_NAMES) if hostile else _NAMES)
    terms = draw(st.lists(_label_term(hostile), max_size=3))
    if quoted_name:
        terms.insert(0, '"' + draw(st.sampled_from(["my.metric", "a b", "x", "é"])) + '"')
    braces = ""
    if terms or draw(st.booleans()):
        joint = draw(st.sampled_from([",", ",", ", ", " ,"] + ([",,"] if hostile else [])))
        braces = ("{" + draw(st.sampled_from(["", "", ",", " "])) + joint.join(terms)
                  + draw(st.sampled_from(["", "", ","])) + "}")
        if hostile and draw(st.booleans()):
            braces = braces[:-1]
    space = draw(_SPACES)
    if braces and draw(st.integers(0, 9)) == 0:
        space = ""  # `x{a="1"}1` is a sample
    number = draw(st.one_of(_NUMBERS, _BAD_NUMBERS) if hostile else _NUMBERS)
    line = draw(_EDGES) + name + braces + space + number
    stamp = draw(st.one_of(_TIMESTAMPS, _BAD_TIMESTAMPS) if hostile else _TIMESTAMPS)
    if stamp is not None:
        line += draw(_SPACES) + stamp
    tails = [" # {a=\"b\"} 1", " 1 2"] + ([" x", "}", "{"] if hostile else [])
    if draw(st.integers(0, 9)) == 0:
        line += draw(st.sampled_from(tails))
    return line + draw(_EDGES)


@st.composite
def comment_line(draw: st.DrawFn) -> str:
    hostile = _hostile(draw)
    names = st.one_of(_NAMES, st.sampled_from(['"q.name"', '"a b"', '""', "x\\n"]))
    if hostile:
        names = st.one_of(names, st.sampled_from(['"', "1x", '"a" b']))
    name = draw(names)
    kind = draw(st.sampled_from(["HELP", "TYPE", "TYPE", "other", "blank"]))
    space = draw(st.sampled_from([" ", " ", "\t", "  "] + (["", "\x0b"] if hostile else [])))
    if kind == "HELP":
        text = draw(st.sampled_from(["", " doc", " a \\n \\\\ \"q\" x", "  spaced  doc"]))
        return f"#{space}HELP{space}{name}{text}"
    if kind == "TYPE":
        kinds = st.one_of(_TYPES, _BAD_TYPES) if hostile else _TYPES
        end = "" if hostile and draw(st.booleans()) else space + draw(kinds)
        return f"#{space}TYPE{space}{name}{end}"
    if kind == "other":
        return "#" + draw(st.sampled_from(["", " a comment", "HELP x y", ' "x y" z', " HELP",
                                           " TYPE x gauge and more"]))
    return draw(st.sampled_from(["", " ", "\t", "\u3000", "\x0b"]))


@st.composite
def plain_run(draw: st.DrawFn) -> list[str]:
    """A family as exporters write it: TYPE, then many lines with the same label names, now
    and then one that differs (the bulk path must hand those to the row path)."""
    family = draw(_NAMES)
    kind = draw(st.sampled_from(["counter", "gauge", "histogram", "summary", "untyped"]))
    names = draw(st.lists(st.sampled_from(["cache", "le", "a", "b", "quantile", "__r"]),
                          max_size=3, unique=True))
    suffixes = {"histogram": ["_bucket", "_sum", "_count"], "summary": ["", "_sum", "_count"]}
    lines = [f"# TYPE {family} {kind}"] if draw(st.booleans()) else []
    for index in range(draw(st.integers(1, 40))):
        sample = family + draw(st.sampled_from(suffixes.get(kind, [""])))
        values = [draw(st.sampled_from(["a", "b c", "", "1", "+Inf", "x=y", "é", "{", "}"]))
                  for _ in names]
        body = ",".join(f'{k}="{v}"' for k, v in zip(names, values, strict=True))
        line = sample + (f"{{{body}}}" if names else "") + " " + draw(_NUMBERS)
        if draw(st.integers(0, 14)) == 0:
            line = draw(sample_line())  # a line that differs: the bulk path declines the run
        lines.append(line + ("\r" if index % 7 == 3 and draw(st.booleans()) else ""))
    return lines


@st.composite
def exposition(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.one_of(sample_line().map(lambda line: [line]),
                                     comment_line().map(lambda line: [line]),
                                     plain_run()), max_size=12))
    lines = [line for piece in pieces for line in piece]
    newline = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


@PROPS
@given(exposition())
def test_generated_expositions_parse_as_prometheus_client_does(text: str) -> None:
    assert_same(text)


_SOUP = st.sampled_from([*'abc_{}="\\,# \n\t01.e+-:', "le", "\r", "Inf", "NaN", "HELP", "TYPE",
                         "__name__", "x_total", "\u202e", "\x0b", "é"])


@PROPS
@given(st.lists(_SOUP, max_size=300).map("".join))
def test_token_soup_parses_as_prometheus_client_does(text: str) -> None:
    assert_same(text)


@PROPS
@given(fixture=st.sampled_from(ALL_FIXTURES),
       picks=st.lists(st.tuples(st.integers(0, 10**6),
                                st.sampled_from(["", "=1.0", "-", "1.2.3", "nan", "1e999", '"',
                                                 "{", "}", ",", "\\", " ", "\t", "# ", "le=",
                                                 ' 1 2 3', "\ufffd", "_", "\r", "\n"])),
                      max_size=4))
def test_mutated_fixtures_parse_as_prometheus_client_does(
    fixture: Path, picks: list[tuple[int, str]]
) -> None:
    lines = fixture.read_text().split("\n")
    for index, junk in picks:
        i = index % len(lines)
        cut = index % (len(lines[i]) + 1)
        lines[i] = lines[i][:cut] + junk + lines[i][cut:]
    assert_same("\n".join(lines))


# ---- counting before parsing


def _sample_lines(text: str) -> int:
    """The oracle: lines (split on "\\n" only, as the parsers read) that are neither blank nor
    a comment once stripped."""
    return sum(1 for line in text.split("\n") if line.strip() and line.strip()[0] != "#")


@PROPS
@given(st.one_of(exposition(), st.lists(_SOUP, max_size=300).map("".join), st.text()))
def test_count_samples_counts_the_sample_lines(text: str) -> None:
    count = count_samples(text)
    assert count == _sample_lines(text)
    families = reference(text)
    if families is not None:
        assert sum(len(samples) for _, _, samples in families) <= count


# ---- errors, deliberate differences, deadline


@pytest.mark.parametrize(("text", "line", "reason"), [
    ('ok 1\nx{a="1" 1\n', 2, "missing closing brace"),
    ("ok 1\n\n# TYPE x bogus\nx 1\ny 2\n", 3, "invalid metric type 'bogus'"),
    ("# TYPE x\n", 1, "TYPE without a type"),
    ('x{a="1",a="2"} 1\n', 1, """label 'a' given twice in labels 'a="1",a="2"'"""),
    ('x{__a="1"} 1\n', 1, """invalid label name '__a' in labels '__a="1"'"""),
    ("x 0x10\n", 1, "invalid number '0x10'"),
    ("a 1\n" * 40 + "a 1 2_0\n", 41, "invalid number '2_0'"),
    ("# TYPE _total counter\n_total 1\n", 1, "invalid metric name ''"),
])
def test_errors_name_the_first_bad_line(text: str, line: int, reason: str) -> None:
    assert reference(text) is None
    for lines in BULK_FROM:
        with bulk_from(lines), pytest.raises(ExpositionError) as caught:
            parse_families(text)
        assert (caught.value.line, caught.value.reason) == (line, reason)


def test_numbers_too_large_for_a_float_are_infinite_where_the_reference_overflows() -> None:
    huge = "9" * 400
    with pytest.raises(OverflowError):
        reference(f"x {huge}\n")
    assert lean(f"x {huge}\ny -{huge}\nz 1 {huge}\n") == [
        ("x", "unknown", [("x", {}, math.inf)]), ("y", "unknown", [("y", {}, -math.inf)]),
        ("z", "unknown", [("z", {}, 1.0)])]


def test_the_deadline_is_checked_between_chunks_and_on_slow_lines() -> None:
    calls: list[int] = []
    text = endpoint_of(20_000)
    parse_families(text, check=lambda: calls.append(1))
    assert len(calls) == len(text) // prom_parse.CHUNK_CHARS
    slow = "x 1 2 3\n" * 5000  # three values: the slow path, in one chunk
    calls.clear()
    parse_families(slow, check=lambda: calls.append(1))
    assert len(calls) == 5000 // 1024


def test_metric_types_are_prometheus_clients() -> None:
    """prom_parse writes the list out (importing prometheus_client slows every start)."""
    from prometheus_client.metrics_core import METRIC_TYPES

    from cachetop.collectors import prom_parse

    assert tuple(METRIC_TYPES) == prom_parse.METRIC_TYPES
