"""Provides TargetFigures and FleetSnapshot: the frozen figures every view and output reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cachetop.metrics.ratios import weighted_hit_ratio

# Statuses a target row can have; "up" and "restarted" carry live figures.
LIVE_STATUSES = frozenset({"up", "restarted"})


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


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Every target's latest figures, in configured order, and the fleet totals."""

    taken_at: float  # wall clock
    interval_s: float
    targets: tuple[TargetFigures, ...]
    fleet: FleetFigures
    version: int = 0

    @classmethod
    def build(cls, targets: Sequence[TargetFigures], interval_s: float, taken_at: float,
              version: int = 0) -> FleetSnapshot:
        return cls(taken_at, interval_s, tuple(targets), aggregate(targets), version)

    def groups(self) -> dict[str, FleetFigures]:
        by_group: dict[str, list[TargetFigures]] = {}
        for t in self.targets:
            by_group.setdefault(t.group, []).append(t)
        return {name: aggregate(members) for name, members in by_group.items()}
