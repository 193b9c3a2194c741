"""Provides the collector interface: Target (what to poll), Collector (how), CollectError."""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from cachetop.collectors.secret import Secret

if TYPE_CHECKING:
    from cachetop.collectors.sample import Sample

KINDS = ("redis", "memcached", "metrics", "redis-cluster", "redis-sentinel")
TOPOLOGY_KINDS = frozenset({"redis-cluster", "redis-sentinel"})


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS settings of one target; `verify=False` is shown as a badge, never silently."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True)
class Target:
    """One cache instance or metrics endpoint to poll. Carries no secret in its repr.

    `host`/`port` are set for TCP targets, `socket_path` for unix sockets, `http_url` for metrics
    endpoints (without credentials). `address` is the display form, safe to print anywhere.

    A topology target (kind redis-cluster or redis-sentinel) names the whole set: `seeds` are
    the `host:port` of its seed nodes or sentinels (host/port hold the first), `master_name`
    the Sentinel master's name, and `remap` maps announced addresses to reachable ones. Its
    credentials and TLS options are used for the nodes of that topology only.
    """

    name: str
    kind: str
    address: str
    host: str | None = None
    port: int | None = None
    socket_path: str | None = None
    http_url: str | None = None
    db: int = 0
    username: str | None = None
    password: Secret | None = None
    tls: TlsOptions | None = None
    timeout_s: float = 1.0
    group: str = ""
    convention: str = "cachetop"
    mapping: Mapping[str, str] = field(default_factory=dict)
    probes_per_poll: int = -1  # -1: chosen by fleet size (registry.make_collectors)
    detail_every_s: float = 10.0
    max_body_bytes: int = 16 * 1024 * 1024
    sample_limit: int = 50_000  # metrics: more samples and the poll is "too-large"; 0: no limit
    read_only: bool = False
    env: str = ""
    dialect: str = "cachetop"
    seeds: tuple[str, ...] = ()
    master_name: str = ""
    remap: Mapping[str, str] = field(default_factory=dict)
    # A metrics endpoint's caches that live on a server of the fleet: cache label -> the
    # server target's name (config `[targets.caches]`), so fleet totals count it once.
    cache_servers: Mapping[str, str] = field(default_factory=dict)
    cluster_node: bool = False  # a node found in a redis+cluster topology (actions per slot)


class CollectError(Exception):
    """A poll failed: `status` is a snapshot status, the message one sanitized line."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Deadline:
    """A hard per-poll deadline: every blocking call gets at most the time that is left.

    Library timeouts are per operation, so a poll of several round trips could otherwise take
    several timeouts; this keeps the whole poll within one.
    """

    __slots__ = ("expires_at", "budget_s")

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.expires_at = time.monotonic() + budget_s

    def left_s(self) -> float:
        left = self.expires_at - time.monotonic()
        if left <= 0:
            raise CollectError("timeout", f"timeout after {self.budget_s:g}s")
        return left


class Collector(Protocol):
    """Reads one target. `poll()` is a script for the event loop (cachetop.collectors.netloop) that
    returns a Sample or raises; `collect()` runs one poll blocking, within the deadline."""

    kind: ClassVar[str]
    target: Target

    def poll(self) -> Generator[Any, Any, Sample]: ...

    def classify(self, exc: BaseException, timeout_s: float) -> CollectError: ...

    def connections(self) -> tuple[Any, ...]: ...

    def want_detail(self, wanted: bool) -> None: ...

    def defer_first_detail(self, at: float) -> None: ...

    def collect(self, deadline: Deadline) -> Sample: ...

    def close(self) -> None: ...
