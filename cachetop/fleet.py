"""Provides TargetFigures and FleetSnapshot: the frozen figures every view and output reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cachetop.collectors.base import Target
from cachetop.metrics.ratios import weighted_hit_ratio

# Statuses a target row can have; "up" and "restarted" carry live figures.
LIVE_STATUSES = frozenset({"up", "restarted"})

# Fleet layers (README, "How fleet totals are made"): cache servers, and the caches that
# applications report through their metrics endpoints. Totals are made per layer.
SERVERS = "servers"
APP_CACHES = "app caches"
# Endpoint conventions that describe a server (an exporter beside one Redis or memcached).
SERVER_CONVENTIONS = frozenset({"redis_exporter", "memcached_exporter"})


def layer_of(target: Target) -> str:
    """A metrics endpoint is an application's caches unless an exporter serves it."""
    if target.kind == "metrics" and target.convention not in SERVER_CONVENTIONS:
        return APP_CACHES
    return SERVERS


@dataclass(frozen=True, slots=True)
class Latency:
    """Three percentiles in seconds, with where they come from ("interval", "since start",
    "endpoint summary" or "probe 60s")."""

    p50_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    source: str = ""

    @property
    def known(self) -> bool:
        return self.p50_s is not None or self.p99_s is not None


@dataclass(frozen=True, slots=True)
class TargetFigures:
    """One target's figures over its last interval. A figure that cannot be computed is None.

    `hits_delta` / `misses_delta` are the interval's raw increases, kept so that group and fleet
    hit ratios can be weighted by traffic. `last_good` is the last figures with status up, kept
    while the target is failing so a view can show them greyed.

    A topology target (redis-cluster, redis-sentinel) has its nodes as `caches`, and
    `topology` holds plain data: for the group, the last read (nodes, shards, slots covered,
    nodes up, quorum); for a node, its role, shard, slots, link, offset and lag. `events` are
    the group's recent topology changes ({time, target, kind, text, node}), newest last.
    `layer` is layer_of(target); `lives_on`, for an endpoint's cache, the fleet target whose
    server holds it ("" if none).
    """

    name: str
    kind: str
    address: str
    group: str = ""
    status: str = "down"
    error: str | None = None
    status_since: float = 0.0  # wall clock (time.time())
    last_success: float | None = None
    updated_at: float = 0.0
    role: str = ""
    version: str = ""
    engine: str = ""  # Redis targets: redis, valkey, dragonfly or keydb (from INFO)
    interval_s: float | None = None
    ops_per_s: float | None = None
    hit_ratio: float | None = None
    lifetime_hit_ratio: float | None = None
    hits_delta: float | None = None
    misses_delta: float | None = None
    evictions_per_s: float | None = None
    expirations_per_s: float | None = None
    memory_used_bytes: float | None = None
    memory_max_bytes: float | None = None
    memory_system_bytes: float | None = None
    connections: float | None = None
    max_connections: float | None = None
    keys: float | None = None
    loading_percent: float | None = None
    server_latency: Latency = field(default_factory=Latency)
    probe_latency: Latency = field(default_factory=Latency)
    degraded: tuple[str, ...] = ()
    tls_insecure: bool = False
    topology: Mapping[str, Any] | None = None
    events: tuple[Mapping[str, str], ...] = ()
    caches: tuple[TargetFigures, ...] = ()
    detail: Any = None
    last_good: TargetFigures | None = None
    master_address: str = ""  # a replica's master as it names it (host:port)
    master_link: str = ""  # a replica's link to it: "up" or "down"
    replication_lag_s: float | None = None  # a replica: seconds since its master last spoke
    layer: str = SERVERS
    lives_on: str = ""
    serves: tuple[str, ...] = ()  # a server: the "endpoint/cache" names that live on it

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def memory_ratio(self) -> float | None:
        """Used / limit, or None when there is no limit (see memory_system_ratio)."""
        if self.memory_used_bytes is None or not self.memory_max_bytes:
            return None
        return self.memory_used_bytes / self.memory_max_bytes


@dataclass(frozen=True, slots=True)
class FleetFigures:
    """Fleet or group totals: rates summed, hit ratio weighted by traffic, worst p99."""

    ops_per_s: float | None
    hit_ratio: float | None
    evictions_per_s: float | None
    memory_used_bytes: float | None
    worst_p99_s: float | None
    targets_up: int
    targets_total: int


def _sum(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def aggregate(targets: Sequence[TargetFigures]) -> FleetFigures:
    """Totals over the targets that are live; a down target adds nothing, not zeros."""
    live = [t for t in targets if t.live]
    p99s = [t.server_latency.p99_s if t.server_latency.p99_s is not None
            else t.probe_latency.p99_s for t in live]
    known_p99 = [p for p in p99s if p is not None]
    return FleetFigures(
        ops_per_s=_sum([t.ops_per_s for t in live]),
        hit_ratio=weighted_hit_ratio((t.hits_delta, t.misses_delta) for t in live),
        evictions_per_s=_sum([t.evictions_per_s for t in live]),
        memory_used_bytes=_sum([t.memory_used_bytes for t in live]),
        worst_p99_s=max(known_p99) if known_p99 else None,
        targets_up=len(live),
        targets_total=len(targets),
    )


def _own(t: TargetFigures) -> tuple[float | None, float | None]:
    """An endpoint's memory and evictions/s without its caches that live on a fleet server
    (those are the server's, counted in the servers layer); (None, None) when none is known."""
    if not t.caches:
        return t.memory_used_bytes, t.evictions_per_s
    own = [c for c in t.caches if c.live and not c.lives_on]
    return _sum([c.memory_used_bytes for c in own]), _sum([c.evictions_per_s for c in own])


def aggregate_app(targets: Sequence[TargetFigures]) -> FleetFigures:
    """The application-cache layer: lookups, hit ratio and latency as the applications see
    them (every cache, weighted by traffic); memory and evictions only of the caches that do
    not live on a fleet server."""
    totals = aggregate(targets)
    owns = [_own(t) for t in targets if t.live]
    return replace(totals, memory_used_bytes=_sum([m for m, _ in owns]),
                   evictions_per_s=_sum([e for _, e in owns]))


def layer_totals(targets: Sequence[TargetFigures]) -> dict[str, FleetFigures]:
    """Totals per layer that has targets, servers first."""
    servers = [t for t in targets if t.layer != APP_CACHES]
    apps = [t for t in targets if t.layer == APP_CACHES]
    layers: dict[str, FleetFigures] = {}
    if servers:
        layers[SERVERS] = aggregate(servers)
    if apps:
        layers[APP_CACHES] = aggregate_app(apps)
    return layers


def fleet_totals(targets: Sequence[TargetFigures],
                 layers: Mapping[str, FleetFigures]) -> FleetFigures:
    """The fleet line: the servers layer's figures (or the application layer's when there is
    no server), and how many of all the targets are up: no server counted twice through an
    application cache that lives on it, and no app lookups added to server commands."""
    first = layers.get(SERVERS) or layers.get(APP_CACHES)
    if first is None:
        return aggregate(targets)
    return replace(first, targets_up=sum(1 for t in targets if t.live),
                   targets_total=len(targets))


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Every target's latest figures, in configured order, and the fleet totals."""

    taken_at: float  # wall clock
    interval_s: float
    targets: tuple[TargetFigures, ...]
    fleet: FleetFigures
    version: int = 0
    layers: Mapping[str, FleetFigures] = field(default_factory=dict)

    @classmethod
    def build(cls, targets: Sequence[TargetFigures], interval_s: float, taken_at: float,
              version: int = 0) -> FleetSnapshot:
        layers = layer_totals(targets)
        links = serves_of(targets)
        if links:  # each server row names the caches that live on it
            targets = [replace(t, serves=links[t.name]) if links.get(t.name, ()) != t.serves
                       else t for t in targets]
        return cls(taken_at, interval_s, tuple(targets), fleet_totals(targets, layers), version,
                   layers)

    def not_up(self) -> tuple[int, int]:
        """(targets not up, targets): what the exit status of --once and --batch reports."""
        return sum(1 for t in self.targets if not t.live), len(self.targets)

    def serves(self) -> dict[str, tuple[str, ...]]:
        """Server target name -> the "endpoint/cache" names that live on it."""
        return serves_of(self.targets)


def serves_of(targets: Sequence[TargetFigures]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for t in targets:
        if t.layer != APP_CACHES:
            continue
        for c in t.caches:
            if c.lives_on:
                out.setdefault(c.lives_on, []).append(f"{t.name}/{c.name}")
    return {name: tuple(caches) for name, caches in out.items()}

    def groups(self) -> dict[str, FleetFigures]:
        by_group: dict[str, list[TargetFigures]] = {}
        for t in self.targets:
            by_group.setdefault(t.group, []).append(t)
        return {name: aggregate(members) for name, members in by_group.items()}


def pending_figures(target: Target, since: float) -> TargetFigures:
    """A target not polled yet: the "connecting…" row of a first frame."""
    return TargetFigures(name=target.name, kind=target.kind, address=target.address,
                         group=target.group, status="pending", status_since=since,
                         layer=layer_of(target))
