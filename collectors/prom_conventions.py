"""Provides map_families(): parsed metric families -> per-cache figures under canonical names.

A convention is a table: which series are hits, misses, evictions, memory... and which label
names the cache. Counters are matched by sample name with or without `_total`, because the
parser appends `_total` to typed counters that lack it and leaves untyped ones alone.

Conventions:
    cachetop: `cache_hits_total`, `cache_misses_total`, `cache_evictions_total`,
        `cache_expirations_total`, `cache_memory_bytes`, `cache_memory_max_bytes`,
        `cache_entries`, histogram `cache_operation_duration_seconds`; one cache per `cache`.
    micrometer: `cache_gets_total{result="hit"|"miss"}`, `cache_evictions_total`,
        `cache_size`; one cache per `cache`.
    redis_exporter / memcached_exporter: the exporters' default `redis_` / `memcached_` names
        (landscape.md section 4); one cache per exporter target. `redis_up 0` means the
        exporter could not reach its server: the poll is "down", not "no data".
    custom: built from `Target.mapping`. Keys (all optional, unknown keys are an error):
        hits, misses, evictions, expirations, ops: counter selectors;
        memory, memory_max, entries, connections: gauge selectors;
        latency: a histogram (or summary) family name; latency_unit: "s" (default), "ms", "us";
        cache_label: the label that names the cache (default "cache"; "" for a single cache).
        A selector is a sample name with optional required labels, PromQL style:
        `app_cache_gets_total{result="hit"}` (quotes optional), which is how one family that
        carries both hits and misses in a label is split. When `ops` is absent, ops = hits +
        misses (metrics.md: an endpoint's ops/s is its lookups).

Samples without the cache label belong to the cache named "" (the caller names it).
Non-finite values are skipped; a duplicate series keeps its first value (Prometheus does).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cachetop.collectors.base import CollectError
from cachetop.collectors.prom_text import Family, PromSample, sanitize
from cachetop.collectors.sample import (
    CONNECTIONS,
    EVICTIONS,
    EXPIRATIONS,
    HITS,
    INSTANCE_ID,
    KEYS,
    MAX_CONNECTIONS,
    MAX_MEMORY_BYTES,
    MISSES,
    OPS,
    ROLE,
    SERVER_LATENCY,
    SYSTEM_MEMORY_BYTES,
    UPTIME_S,
    USED_MEMORY_BYTES,
    VERSION,
    Histogram,
)

CONVENTIONS = ("cachetop", "micrometer", "redis_exporter", "memcached_exporter", "custom")
_CUSTOM_COUNTERS = {
    "hits": HITS,
    "misses": MISSES,
    "evictions": EVICTIONS,
    "expirations": EXPIRATIONS,
    "ops": OPS,
}
_CUSTOM_GAUGES = {
    "memory": USED_MEMORY_BYTES,
    "memory_max": MAX_MEMORY_BYTES,
    "entries": KEYS,
    "connections": CONNECTIONS,
}
CUSTOM_KEYS = frozenset(
    {*_CUSTOM_COUNTERS, *_CUSTOM_GAUGES, "latency", "latency_unit", "cache_label"}
)
_UNIT_SCALE_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_QUANTILE_KEYS = {0.5: "p50", 0.95: "p95", 0.99: "p99"}
_SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
_SELECTOR_LABEL = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"?([^"]*)"?\s*$')


@dataclass(frozen=True, slots=True)
class Selector:
    """A sample name plus label values a series must carry: `name{label="value"}`."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Latency:
    """A histogram or summary family whose observations are durations in `scale_s` seconds."""

    name: str
    scale_s: float = 1.0
    sparse: bool = False  # series omit buckets that gained nothing (Redis LATENCY HISTOGRAM)


@dataclass(frozen=True, slots=True)
class Convention:
    """What to read from an exposition. Several selectors for one figure are summed."""

    name: str
    cache_label: str
    counters: Mapping[str, tuple[Selector, ...]]
    gauges: Mapping[str, tuple[Selector, ...]]
    latency: tuple[Latency, ...] = ()  # alternatives: the first one present wins
    up: str = ""  # the exporter's own up gauge; 0 means its server is unreachable
    info: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # key -> (sample, label)
    server_info: str = ""  # a gauge whose `server` label names the server each cache lives on


@dataclass(frozen=True, slots=True)
class CacheFigures:
    """Canonical figures of one cache, as a Sample would carry them."""

    counters: Mapping[str, float]
    gauges: Mapping[str, float]
    histograms: Mapping[str, Histogram]
    quantiles: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Mapped:
    """The result of mapping one exposition: caches by name, plus what was used to get them."""

    caches: Mapping[str, CacheFigures]
    info: Mapping[str, str]
    used_names: frozenset[str]
    degraded: tuple[str, ...]
    servers: Mapping[str, str] = field(default_factory=dict)  # cache -> its server's address


def _sel(name: str, **labels: str) -> tuple[Selector, ...]:
    return (Selector(name, tuple(sorted(labels.items()))),)


CACHETOP = Convention(
    "cachetop",
    "cache",
    counters={
        HITS: _sel("cache_hits"),
        MISSES: _sel("cache_misses"),
        EVICTIONS: _sel("cache_evictions"),
        EXPIRATIONS: _sel("cache_expirations"),
    },
    gauges={
        USED_MEMORY_BYTES: _sel("cache_memory_bytes"),
        MAX_MEMORY_BYTES: _sel("cache_memory_max_bytes"),
        KEYS: _sel("cache_entries"),
    },
    latency=(Latency("cache_operation_duration_seconds"),),
    server_info="cache_server_info",
)
MICROMETER = Convention(
    "micrometer",
    "cache",
    counters={
        HITS: _sel("cache_gets", result="hit"),
        MISSES: _sel("cache_gets", result="miss"),
        EVICTIONS: _sel("cache_evictions"),
    },
    gauges={KEYS: _sel("cache_size")},
)
REDIS_EXPORTER = Convention(
    "redis_exporter",
    "",
    counters={
        HITS: _sel("redis_keyspace_hits"),
        MISSES: _sel("redis_keyspace_misses"),
        EVICTIONS: _sel("redis_evicted_keys"),
        EXPIRATIONS: _sel("redis_expired_keys"),
        OPS: _sel("redis_commands_processed"),
    },
    gauges={
        USED_MEMORY_BYTES: _sel("redis_memory_used_bytes"),
        MAX_MEMORY_BYTES: _sel("redis_memory_max_bytes"),
        KEYS: _sel("redis_db_keys"),
        CONNECTIONS: _sel("redis_connected_clients"),
        MAX_CONNECTIONS: _sel("redis_config_maxclients"),
        SYSTEM_MEMORY_BYTES: _sel("redis_total_system_memory_bytes"),
        UPTIME_S: _sel("redis_uptime_in_seconds"),
    },
    # Redis >= 7 LATENCY HISTOGRAM (named redis_latency_usec before exporter v1.45), then the
    # latencystats summary, whose quantile label is a percentage ("99.9").
    latency=(
        Latency("redis_commands_latencies_usec", 1e-6, sparse=True),
        Latency("redis_latency_usec", 1e-6, sparse=True),
        Latency("redis_latency_percentiles_usec", 1e-6),
    ),
    up="redis_up",
    info={
        VERSION: ("redis_instance_info", "redis_version"),
        ROLE: ("redis_instance_info", "role"),
        INSTANCE_ID: ("redis_instance_info", "run_id"),
    },
)
MEMCACHED_EXPORTER = Convention(
    "memcached_exporter",
    "",
    counters={
        HITS: _sel("memcached_commands", command="get", status="hit"),
        MISSES: _sel("memcached_commands", command="get", status="miss"),
        EVICTIONS: _sel("memcached_items_evicted"),
        # metrics.md: expirations = reclaimed + expired_unfetched (the latter per slab).
        EXPIRATIONS: _sel("memcached_items_reclaimed")
        + _sel("memcached_slab_items_expired_unfetched"),
        # Every command and status: the same sum metrics.md defines from `stats`.
        OPS: _sel("memcached_commands"),
    },
    gauges={
        USED_MEMORY_BYTES: _sel("memcached_current_bytes"),
        MAX_MEMORY_BYTES: _sel("memcached_limit_bytes"),
        KEYS: _sel("memcached_current_items"),
        CONNECTIONS: _sel("memcached_current_connections"),
        MAX_CONNECTIONS: _sel("memcached_max_connections"),
        UPTIME_S: _sel("memcached_uptime_seconds"),
    },
    up="memcached_up",
    info={VERSION: ("memcached_version", "version")},
)
_BUILTIN = {c.name: c for c in (CACHETOP, MICROMETER, REDIS_EXPORTER, MEMCACHED_EXPORTER)}


def convention_for(name: str, mapping: Mapping[str, str]) -> Convention:
    """The convention called `name`; "custom" is built from `mapping`.

    Raises:
        ValueError: an unknown convention, mapping key, latency unit or malformed selector.
    """
    if name in _BUILTIN:
        return _BUILTIN[name]
    if name != "custom":
        raise ValueError(f"unknown metrics convention {name!r}; one of {', '.join(CONVENTIONS)}")
    unknown = sorted(set(mapping) - CUSTOM_KEYS)
    if unknown:
        known = ", ".join(sorted(CUSTOM_KEYS))
        raise ValueError(f"unknown mapping key {unknown[0]!r}; one of {known}")
    unit = mapping.get("latency_unit", "s")
    if unit not in _UNIT_SCALE_S:
        raise ValueError(f"latency_unit must be one of s, ms, us, not {unit!r}")
    latency = mapping.get("latency", "").strip().removesuffix("_bucket")
    return Convention(
        "custom",
        mapping.get("cache_label", "cache"),
        counters={
            c: (parse_selector(mapping[k]),) for k, c in _CUSTOM_COUNTERS.items() if k in mapping
        },
        gauges={
            g: (parse_selector(mapping[k]),) for k, g in _CUSTOM_GAUGES.items() if k in mapping
        },
        latency=(Latency(latency, _UNIT_SCALE_S[unit]),) if latency else (),
    )


def parse_selector(text: str) -> Selector:
    """`name` or `name{label="value", ...}` -> Selector. Raises ValueError when malformed."""
    match = _SELECTOR.match(text)
    if match is None:
        raise ValueError(f"not a metric selector: {text!r}")
    labels: list[tuple[str, str]] = []
    for term in filter(str.strip, (match.group(2) or "").split(",")):
        label = _SELECTOR_LABEL.match(term)
        if label is None:
            raise ValueError(f"not a label matcher: {term!r} in {text!r}")
        labels.append((label.group(1), label.group(2)))
    return Selector(match.group(1), tuple(sorted(labels)))


def map_families(convention: Convention, families: Iterable[Family]) -> Mapped:
    """Map parsed families to per-cache figures.

    Returns:
        Caches by cache-label value (possibly empty: the caller decides that is an error).

    Raises:
        CollectError: "down" when an exporter reports that it cannot reach its server.
    """
    by_name = _index(families)
    _check_up(convention, by_name)
    used: set[str] = set()
    counters = _pick(convention.counters, by_name, convention.cache_label, used, counter=True)
    gauges = _pick(convention.gauges, by_name, convention.cache_label, used)
    histograms, quantiles, degraded = _latency(convention, by_name, used)
    names = set(counters) | set(gauges) | set(histograms) | set(quantiles)
    caches = {
        cache: _figures(
            counters.get(cache, {}),
            gauges.get(cache, {}),
            histograms.get(cache),
            quantiles.get(cache, {}),
        )
        for cache in sorted(names)
    }
    servers = _servers(convention, by_name, used)
    return Mapped(caches, _info(convention, by_name, used), frozenset(used), degraded,
                  {cache: server for cache, server in servers.items() if cache in caches})


def _servers(
    convention: Convention, by_name: Mapping[str, list[PromSample]], used: set[str]
) -> dict[str, str]:
    """Each cache's `server` label from the convention's server-info gauge (first wins)."""
    servers: dict[str, str] = {}
    for sample in by_name.get(convention.server_info, []) if convention.server_info else []:
        server = sample.labels.get("server", "")
        if server:
            servers.setdefault(sample.labels.get(convention.cache_label, ""), server)
            used.add(convention.server_info)
    return servers


def _index(families: Iterable[Family]) -> dict[str, list[PromSample]]:
    """Samples by name; a repeated series (same name and labels) keeps its first value.

    A series is keyed by its labels in any order: a frozenset, except for none or one label,
    where a tuple says the same at a third of the cost (20,000 caches: bench/prom_parse.py)."""
    by_name: dict[str, list[PromSample]] = {}
    seen: set[tuple[object, ...]] = set()
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            key = ((sample.name, *labels.items()) if len(labels) < 2
                   else (sample.name, frozenset(labels.items())))
            if key not in seen:
                seen.add(key)
                by_name.setdefault(sample.name, []).append(sample)
    return by_name


def _check_up(convention: Convention, by_name: Mapping[str, list[PromSample]]) -> None:
    for sample in by_name.get(convention.up, []) if convention.up else []:
        if sample.value == 0:
            raise CollectError("down", f"{convention.name} reports {convention.up} 0")


def _matching(
    selector: Selector, by_name: Mapping[str, list[PromSample]], used: set[str]
) -> list[PromSample]:
    """Series of the selector's name, with or without `_total` (the parser appends it to
    typed counters that lack it: memcached_exporter's counter `memcached_uptime_seconds`)."""
    names = (selector.name.removesuffix("_total"), selector.name.removesuffix("_total") + "_total")
    found: list[PromSample] = []
    for name in names:
        for sample in by_name.get(name, []):
            if all(sample.labels.get(k) == v for k, v in selector.labels):
                found.append(sample)
                used.add(name)
    return found


def _pick(
    table: Mapping[str, tuple[Selector, ...]],
    by_name: Mapping[str, list[PromSample]],
    cache_label: str,
    used: set[str],
    counter: bool = False,
) -> dict[str, dict[str, float]]:
    """cache -> canonical name -> sum of the finite values of every matching series.

    A negative counter is invalid (OpenMetrics refuses it) and is skipped; a sum that overflows
    to infinity (1e308 + 1e308) leaves the figure out rather than showing inf.
    """
    out: dict[str, dict[str, float]] = {}
    for canonical, selectors in table.items():
        for selector in selectors:
            for sample in _matching(selector, by_name, used):
                if math.isfinite(sample.value) and not (counter and sample.value < 0):
                    figures = out.setdefault(sample.labels.get(cache_label, ""), {})
                    figures[canonical] = figures.get(canonical, 0.0) + sample.value
    for figures in out.values():
        for canonical in [name for name, value in figures.items() if not math.isfinite(value)]:
            del figures[canonical]
    return out


def _figures(
    counters: dict[str, float],
    gauges: dict[str, float],
    histogram: Histogram | None,
    quantiles: Mapping[str, float],
) -> CacheFigures:
    counters = dict(counters)
    ops = counters.get(HITS, math.nan) + counters.get(MISSES, math.nan)
    if OPS not in counters and math.isfinite(ops):
        counters[OPS] = ops
    gauges = {k: v for k, v in gauges.items() if not (k == MAX_MEMORY_BYTES and v <= 0)}
    histograms = {SERVER_LATENCY: histogram} if histogram is not None else {}
    return CacheFigures(counters, gauges, histograms, dict(quantiles))


def _latency(
    convention: Convention, by_name: Mapping[str, list[PromSample]], used: set[str]
) -> tuple[dict[str, Histogram], dict[str, dict[str, float]], tuple[str, ...]]:
    """Per-cache server latency from the first latency family present, histogram preferred
    (metrics.md: a summary is used only if that is all the endpoint has)."""
    label = convention.cache_label
    for source in convention.latency:
        buckets = by_name.get(source.name + "_bucket", [])
        if buckets:
            used.update(_present(by_name, source.name, ("_bucket", "_sum", "_count")))
            counts = by_name.get(source.name + "_count", [])
            histograms, problems = _histograms(source, buckets, counts, label)
            return histograms, {}, problems
    for source in convention.latency:
        series = [s for s in by_name.get(source.name, []) if "quantile" in s.labels]
        if series:
            used.update(_present(by_name, source.name, ("", "_sum", "_count")))
            counts = by_name.get(source.name + "_count", [])
            return {}, _summaries(source, series, counts, label), ()
    return {}, {}, ()


def _present(by_name: Mapping[str, object], base: str, suffixes: Iterable[str]) -> list[str]:
    return [base + suffix for suffix in suffixes if base + suffix in by_name]


def _histograms(
    source: Latency, buckets: list[PromSample], counts: list[PromSample], cache_label: str
) -> tuple[dict[str, Histogram], tuple[str, ...]]:
    """One Histogram per cache: the series of other labels (operation...) summed per bound."""
    per_cache: dict[str, dict[frozenset[tuple[str, str]], dict[float, float]]] = {}
    for sample in buckets:
        others = frozenset((k, v) for k, v in sample.labels.items() if k not in ("le", cache_label))
        series = per_cache.setdefault(sample.labels.get(cache_label, ""), {})
        series.setdefault(others, {})[_bound(sample.labels.get("le", ""))] = sample.value
    count_of = {frozenset(s.labels.items()): s.value for s in counts}
    out: dict[str, Histogram] = {}
    problems: list[str] = []
    for cache, series_by_labels in per_cache.items():
        histogram = _sum_series(list(series_by_labels.values()), source)
        if histogram is None or not _counts_agree(series_by_labels, count_of, cache_label, cache):
            problems.append(
                f"invalid histogram {source.name} (cache {sanitize(cache, 60)!r}):"
                " needs cumulative buckets, +Inf, and _count equal to +Inf"
            )
        else:
            out[cache] = histogram
    return out, tuple(problems)


def _counts_agree(
    series_by_labels: Mapping[frozenset[tuple[str, str]], Mapping[float, float]],
    count_of: Mapping[frozenset[tuple[str, str]], float],
    cache_label: str,
    cache: str,
) -> bool:
    """The text format requires a series' `_count` to equal its +Inf bucket (when present)."""
    for others, series in series_by_labels.items():
        labels = others | ({(cache_label, cache)} if cache_label and cache else set())
        count = count_of.get(frozenset(labels))
        if count is not None and count != series.get(math.inf):
            return False
    return True


def _bound(le: str) -> float:
    try:
        return float(le)
    except ValueError:
        return math.nan  # fails validation below


def _valid_series(series: Mapping[float, float]) -> bool:
    """The text format's rules, which the parser does not check: finite counts that never
    decrease with the bound, and a +Inf bucket (histogram_quantile is NaN without it)."""
    if math.inf not in series or any(math.isnan(bound) for bound in series):
        return False
    counts = [series[bound] for bound in sorted(series)]
    rising = all(a <= b for a, b in zip(counts, counts[1:], strict=False))
    return rising and all(math.isfinite(c) and c >= 0 for c in counts)


def _sum_series(series: list[dict[float, float]], source: Latency) -> Histogram | None:
    """Sum cumulative series per bound.

    Series with different bounds are summed on the bounds they share, where every count is
    exact (+Inf is always shared). Sparse series omit buckets that gained nothing, so there a
    missing bound's count is that of the nearest bound below it, and all bounds are kept.
    """
    if not all(_valid_series(s) for s in series):
        return None
    sets = [set(s) for s in series]
    bounds = sorted(set.union(*sets) if source.sparse else set.intersection(*sets))
    totals = [0.0] * len(bounds)
    for one in series:
        for i, count in enumerate(_counts_at(one, bounds)):
            totals[i] += count
    if not all(math.isfinite(total) for total in totals):
        return None  # finite counts whose sum overflows: no figure, rather than inf
    return Histogram(tuple((b * source.scale_s, c) for b, c in zip(bounds, totals, strict=True)))


def _counts_at(series: Mapping[float, float], bounds: list[float]) -> list[float]:
    """Cumulative count of the series at each of the sorted bounds (0 below its first)."""
    own = sorted(series)
    counts, last, i = [], 0.0, 0
    for bound in bounds:
        while i < len(own) and own[i] <= bound:
            last, i = series[own[i]], i + 1
        counts.append(last)
    return counts


def _summaries(
    source: Latency, series: list[PromSample], counts: list[PromSample], cache_label: str
) -> dict[str, dict[str, float]]:
    """p50/p95/p99 per cache from a summary, as the endpoint reports them. Quantiles of several
    series (operations) cannot be merged, so each cache shows its busiest series (largest
    `_count`). Quantile labels above 1 are percentages (redis_exporter's "99")."""
    count_of = {frozenset(s.labels.items()): s.value for s in counts if math.isfinite(s.value)}
    grouped: dict[str, dict[frozenset[tuple[str, str]], dict[str, float]]] = {}
    for sample in series:
        key = frozenset((k, v) for k, v in sample.labels.items() if k != "quantile")
        quantile = _quantile_key(sample.labels["quantile"])
        if quantile and math.isfinite(sample.value):
            by_key = grouped.setdefault(sample.labels.get(cache_label, ""), {})
            by_key.setdefault(key, {})[quantile] = sample.value * source.scale_s
    return {
        cache: by_key[max(by_key, key=lambda k: count_of.get(k, 0.0))]
        for cache, by_key in grouped.items()
    }


def _quantile_key(label: str) -> str:
    try:
        quantile = float(label)
    except ValueError:
        return ""
    quantile = quantile / 100 if quantile > 1 else quantile
    return next((key for q, key in _QUANTILE_KEYS.items() if math.isclose(q, quantile)), "")


def _info(
    convention: Convention, by_name: Mapping[str, list[PromSample]], used: set[str]
) -> dict[str, str]:
    info: dict[str, str] = {}
    for key, (name, label) in convention.info.items():
        for sample in by_name.get(name, []):
            if label in sample.labels:
                info[key] = sample.labels[label]
                used.add(name)
                break
    return info
