"""Provides the PromQL cachetop asks a Prometheus-compatible API, per exporter, and the pure
assembly of the answers into TargetFigures.

Three sources of series are known: cachetop agents (`cachetop_*`, one target per `target`
label), redis_exporter (`redis_*`, one per `instance`) and memcached_exporter (`memcached_*`,
one per `instance`). Rates are `rate()`/`increase()` over a window of the poll interval or
three scrape intervals, whichever is longer (a rate needs two samples in its window: three
scrapes keep two when one is late); the hit ratio is increase(hits) / increase(hits + misses)
over that window; latency is `histogram_quantile` over the exporter's histogram.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cachetop.fleet import Latency, TargetFigures

QUANTILES = (("p50_s", 0.5), ("p95_s", 0.95), ("p99_s", 0.99))


@dataclass(frozen=True, slots=True)
class Family:
    """How one exporter names things. Counter and gauge values are metric names; a gauge
    may be a PromQL expression over `{SEL}` (the selector is put in by select())."""

    source: str
    key: str  # the label that names a target
    up: str
    kind: str  # "" : the kind is the series' `kind` label
    selector: str = ""  # matchers every series of this family needs
    counters: Mapping[str, str] = field(default_factory=dict)
    gauges: Mapping[str, str] = field(default_factory=dict)
    latency_bucket: str | None = None
    latency_scale: float = 1.0  # the bucket bounds' unit in seconds
    info: str | None = None  # a series whose labels carry version / role
    version_label: str = "version"
    role_label: str = "role"


CACHETOP = Family(
    source="cachetop agent", key="target", up="cachetop_target_up", kind="",
    selector='cache=""',
    counters={"hits": "cachetop_hits_total", "misses": "cachetop_misses_total",
              "ops": "cachetop_commands_total", "evictions": "cachetop_evictions_total",
              "expirations": "cachetop_expirations_total"},
    gauges={"memory_used_bytes": "cachetop_memory_used_bytes",
            "memory_max_bytes": "cachetop_memory_limit_bytes", "keys": "cachetop_keys",
            "connections": "cachetop_connections"},
    latency_bucket="cachetop_server_latency_seconds_bucket", info="cachetop_target_info")
REDIS_EXPORTER = Family(
    source="redis_exporter", key="instance", up="redis_up", kind="redis",
    counters={"hits": "redis_keyspace_hits_total", "misses": "redis_keyspace_misses_total",
              "ops": "redis_commands_processed_total", "evictions": "redis_evicted_keys_total",
              "expirations": "redis_expired_keys_total"},
    gauges={"memory_used_bytes": "redis_memory_used_bytes",
            "memory_max_bytes": "redis_memory_max_bytes",
            "keys": "sum by (instance) (redis_db_keys{SEL})",
            "connections": "redis_connected_clients"},
    latency_bucket="redis_commands_latencies_usec_bucket", latency_scale=1e-6,
    info="redis_instance_info", version_label="redis_version")
MEMCACHED_EXPORTER = Family(
    source="memcached_exporter", key="instance", up="memcached_up", kind="memcached",
    counters={"hits": 'memcached_commands_total{command="get",status="hit"}',
              "misses": 'memcached_commands_total{command="get",status="miss"}',
              "ops": "memcached_commands_total",
              "evictions": "memcached_items_evicted_total",
              "expirations": "memcached_items_reclaimed_total"},
    gauges={"memory_used_bytes": "memcached_current_bytes",
            "memory_max_bytes": "memcached_limit_bytes", "keys": "memcached_current_items",
            "connections": "memcached_current_connections"},
    info="memcached_version")
FAMILIES = (CACHETOP, REDIS_EXPORTER, MEMCACHED_EXPORTER)
MAX_POINTS = 11_000  # Prometheus refuses a range query of more points per series


def matchers(selector: str) -> str:
    """`{job="x",env="prod"}` or `job="x"` -> `job="x",env="prod"` (what goes inside braces)."""
    text = selector.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    return text.strip().strip(",")


def select(metric: str, *parts: str) -> str:
    """`metric` with matchers added: `m{a="1"}` + `b="2"` -> `m{a="1",b="2"}`."""
    extra = ",".join(p for p in parts if p)
    if not extra:
        return metric
    if metric.endswith("}"):
        head = metric[:-1]
        return f"{head},{extra}}}" if not head.endswith("{") else f"{head}{extra}}}"
    return f"{metric}{{{extra}}}"


def window_s(interval_s: float, scrape_s: float) -> float:
    return max(interval_s, 3.0 * scrape_s)


def _duration(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


@dataclass(frozen=True, slots=True)
class Query:
    """One instant query: what it measures for which family."""

    family: Family
    what: str  # "up", "status", "info", "rate:<counter>", "increase:<counter>", "gauge:<name>",
    #            "<quantile field>"
    promql: str


def family_queries(family: Family, user: str, window: float) -> list[Query]:
    sel = [family.selector, user]
    key = family.key
    by = f"{key},kind,group,address" if family is CACHETOP else key
    w = _duration(window)
    out = [Query(family, "up", f"max by ({by}) ({select(family.up, *sel)})")]
    if family is CACHETOP:
        out.append(Query(family, "status", f"max by ({key},status) "
                                           f"({select('cachetop_target_status', *sel)})"))
    if family.info:
        out.append(Query(family, "info", select(family.info, *sel)))
    for name, metric in family.counters.items():
        kind = "increase" if name in ("hits", "misses") else "rate"
        out.append(Query(family, f"{kind}:{name}",
                         f"sum by ({key}) ({kind}({select(metric, *sel)}[{w}]))"))
    for name, metric in family.gauges.items():
        inner = ",".join(p for p in sel if p)
        expr = (metric.replace("{SEL}", "{" + inner + "}" if inner else "")
                if "{SEL}" in metric else f"max by ({key}) ({select(metric, *sel)})")
        out.append(Query(family, f"gauge:{name}", expr))
    if family.latency_bucket:
        bucket = f"sum by ({key},le) (rate({select(family.latency_bucket, *sel)}[{w}]))"
        for attr, q in QUANTILES:
            out.append(Query(family, attr, f"histogram_quantile({q}, {bucket})"))
    return out


def all_queries(user_selector: str, interval_s: float, scrape_s: float) -> list[Query]:
    user = matchers(user_selector)
    window = window_s(interval_s, scrape_s)
    return [q for family in FAMILIES for q in family_queries(family, user, window)]


Vector = Sequence[tuple[Mapping[str, str], float]]


def _num(value: float | None, scale: float = 1.0) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value * scale


@dataclass
class _Partial:
    labels: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    status: str | None = None
    version: str = ""
    role: str = ""


def assemble(answers: Sequence[tuple[Query, Vector]], interval_s: float,
             scrape_s: float, now: float | None = None) -> list[tuple[Family, TargetFigures]]:
    """Every target the `up` series name, with what the other answers say of it, and the
    family it was found through; ordered by source, then name. Pure: answers in, figures out."""
    now = time.time() if now is None else now
    window = window_s(interval_s, scrape_s)
    found: dict[tuple[str, str], _Partial] = {}
    for query, vector in answers:
        family = query.family
        for labels, value in vector:
            name = labels.get(family.key)
            if not name:
                continue
            key = (family.source, name)
            if query.what == "up":
                found.setdefault(key, _Partial()).labels.update(labels)
                found[key].values["up"] = value
                continue
            part = found.setdefault(key, _Partial())
            if query.what == "status":
                if value == 1.0:
                    part.status = labels.get("status")
            elif query.what == "info":
                part.version = labels.get(family.version_label, part.version)
                part.role = labels.get(family.role_label, part.role)
            else:
                part.values[query.what] = value
    out: list[tuple[Family, TargetFigures]] = []
    by_source = {f.source: f for f in FAMILIES}
    for (source, name), part in sorted(found.items()):
        if "up" not in part.values:
            continue  # a series without the target's `up`: not a target of this fleet
        family = by_source[source]
        out.append((family, _figures(family, name, part, window, now)))
    return out


def _figures(family: Family, name: str, part: _Partial, window: float,
             now: float) -> TargetFigures:
    v = part.values
    up = v.get("up") == 1.0
    status = part.status or ("up" if up else "down")
    kind = family.kind or part.labels.get("kind", "")
    address = part.labels.get("address") or name
    live = status in ("up", "restarted")
    if not live:
        return TargetFigures(name=name, kind=kind, address=address,
                             group=part.labels.get("group", ""), status=status,
                             error=f"{family.source} says the target is {status}",
                             status_since=now, updated_at=now)
    hits, misses = _num(v.get("increase:hits")), _num(v.get("increase:misses"))
    ratio = hits / (hits + misses) if hits is not None and misses is not None and (
        hits + misses) > 0 else None
    scale = family.latency_scale
    p50, p95, p99 = (_num(v.get(attr), scale) for attr, _ in QUANTILES)
    latency = Latency(p50, p95, p99, source=f"{family.source} histogram")
    return TargetFigures(
        name=name, kind=kind, address=address, group=part.labels.get("group", ""),
        status=status, status_since=now, last_success=now, updated_at=now,
        role=part.role, version=part.version, interval_s=window,
        ops_per_s=_num(v.get("rate:ops")), hit_ratio=ratio, hits_delta=hits,
        misses_delta=misses, evictions_per_s=_num(v.get("rate:evictions")),
        expirations_per_s=_num(v.get("rate:expirations")),
        memory_used_bytes=_num(v.get("gauge:memory_used_bytes")),
        memory_max_bytes=_num(v.get("gauge:memory_max_bytes")) or None,
        connections=_num(v.get("gauge:connections")), keys=_num(v.get("gauge:keys")),
        server_latency=latency if latency.known else Latency())


def range_step_s(span_s: float, width: int, scrape_s: float) -> float:
    """A chart's step: one point per column, never finer than the scrape interval nor more
    than MAX_POINTS points over the span."""
    return max(span_s / max(1, width), scrape_s, span_s / MAX_POINTS)
