"""Provides Sample and Histogram, the immutable records collectors emit, and canonical metric names.

Each collector maps its native field names to these names, so the engine computes every rate in
one place whatever the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Counters: only ever increase, until a restart or a stats reset.
OPS = "ops"
OWN_OPS = "own_ops"  # commands cachetop itself sent, counted in OPS by the server (subtracted)
HITS = "hits"
MISSES = "misses"
EVICTIONS = "evictions"
EXPIRATIONS = "expirations"

# Gauges.
USED_MEMORY_BYTES = "used_memory_bytes"
MAX_MEMORY_BYTES = "max_memory_bytes"
SYSTEM_MEMORY_BYTES = "system_memory_bytes"
KEYS = "keys"
CONNECTIONS = "connections"
MAX_CONNECTIONS = "max_connections"
UPTIME_S = "uptime_s"
LOADING_PERCENT = "loading_percent"
LOADING_ETA_S = "loading_eta_s"
REPLICATION_LAG_S = "replication_lag_s"  # a replica: seconds since its master last spoke
REPL_OFFSET = "repl_offset"  # Redis master_repl_offset: a replica's lag is its primary's less it

# Info strings.
VERSION = "version"  # the server's own version (Valkey's, Dragonfly's, not redis_version)
ENGINE = "engine"  # redis, valkey, dragonfly, keydb (Redis targets)
COMPAT_VERSION = "compat_version"  # redis_version: what the server says it speaks
ROLE = "role"
INSTANCE_ID = "instance_id"  # Redis run_id, memcached pid: a change means a restart.
# An application cache's server, as its endpoint names it (`cache_server_info{server=...}`):
# "host:port" or a URL, which the engine matches against the fleet's targets.
CACHE_SERVER = "cache_server"
LOADING = "loading"
MASTER_ADDRESS = "master_address"  # a replica's master, host:port as the replica names it
MASTER_LINK = "master_link"  # a replica's link to its master: up or down

# Histograms and quantiles.
SERVER_LATENCY = "server_latency_s"

COUNTER_NAMES = (OPS, HITS, MISSES, EVICTIONS, EXPIRATIONS)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative buckets, as Prometheus exposes them: ((upper_bound, count_le_bound), ...).

    Bounds are in seconds and strictly increasing; the last bound may be +inf.
    """

    buckets: tuple[tuple[float, float], ...]

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0


@dataclass(frozen=True, slots=True)
class Sample:
    """What one poll of one target read. Built fresh per poll and never mutated.

    `taken_at` is `time.monotonic()` when the main reply arrived: rates divide by the difference
    of two of these, not by the nominal interval. `probes_s` are this poll's round-trip probes.
    `children` are the caches one metrics endpoint exposes (the `cache` label), by name.
    `detail` is slow-cadence drill-down data, present only on the polls that fetched it.
    `degraded` lists optional parts the server refused (ACL, disabled, renamed), one line each.
    `quantiles` are since-start percentiles reported by the server, used only as a fallback.
    """

    target: str
    kind: str
    taken_at: float
    rtt_s: float
    counters: Mapping[str, float] = field(default_factory=dict)
    gauges: Mapping[str, float] = field(default_factory=dict)
    histograms: Mapping[str, Histogram] = field(default_factory=dict)
    quantiles: Mapping[str, float] = field(default_factory=dict)
    info: Mapping[str, str] = field(default_factory=dict)
    probes_s: tuple[float, ...] = ()
    children: Mapping[str, Sample] = field(default_factory=dict)
    detail: Mapping[str, Any] | None = None
    degraded: tuple[str, ...] = ()
    # A topology target (redis-cluster, redis-sentinel): the last read of the topology as plain
    # data (cachetop.collectors.topology.Topology.as_dict), the nodes that failed this poll by name
    # (status, message), and the topology changes first seen by this poll.
    topology: Mapping[str, Any] | None = None
    child_errors: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    events: tuple[Mapping[str, str], ...] = ()
