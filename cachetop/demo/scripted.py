"""Provides ScriptedMonitor: a Monitor stand-in that serves fixed, realistic figures.

Used by the SVG snapshot tests and the screenshot script, where the picture must not depend on
timing; the live paths are tested against real servers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from cachetop.collectors.base import Target
from cachetop.collectors.secret import Secret
from cachetop.events.model import ACTION, RESTART, STATUS, THRESHOLD, Event
from cachetop.fleet import APP_CACHES, FleetFigures, FleetSnapshot, Latency, TargetFigures
from cachetop.metrics.series import History

FIXED_WALL = 1_795_000_000.0  # a fixed wall clock: pictures never show "now"


def scripted_fleet() -> list[TargetFigures]:
    """A small fleet with every kind of row: healthy, evicting, restarted, down, an endpoint."""
    def redis(name: str, **kw: object) -> TargetFigures:
        base = TargetFigures(
            name=name, kind="redis", address="10.0.0.5:6379", group="sessions", status="up",
            version="7.0.15", role="master", interval_s=1.0, ops_per_s=18250.0, hit_ratio=0.962,
            lifetime_hit_ratio=0.91, hits_delta=15800, misses_delta=630, evictions_per_s=0.0,
            expirations_per_s=12.0, memory_used_bytes=1.8e9, memory_max_bytes=4.0e9,
            connections=412, max_connections=10000, keys=2_450_000,
            server_latency=Latency(0.0000041, 0.0000128, 0.000031, "interval"),
            probe_latency=Latency(0.00018, 0.00031, 0.00052, "probe 60s"),
            status_since=FIXED_WALL, updated_at=FIXED_WALL, last_success=FIXED_WALL)
        return replace(base, **kw)  # type: ignore[arg-type]

    catalog = redis("catalog-1", address="10.0.0.7:6379", group="catalog", ops_per_s=5200.0,
                    hit_ratio=0.712, hits_delta=3700, misses_delta=1500, evictions_per_s=340.0,
                    memory_used_bytes=1.02e9, memory_max_bytes=1.07e9, keys=880_000,
                    server_latency=Latency(0.0000062, 0.00041, 0.0068, "interval"))
    restarted = redis("sessions-2", address="10.0.0.6:6379", status="restarted",
                      error="restarted (new instance id)", ops_per_s=None, hit_ratio=None,
                      hits_delta=None, misses_delta=None, evictions_per_s=None,
                      expirations_per_s=None, keys=120, memory_used_bytes=2.1e6)
    down_last = redis("sessions-3", address="10.0.0.8:6379", ops_per_s=9100.0, hit_ratio=0.95)
    down = TargetFigures(name="sessions-3", kind="redis", address="10.0.0.8:6379",
                         group="sessions", status="down", error="connection refused",
                         status_since=FIXED_WALL, last_good=down_last)
    pages = TargetFigures(
        name="pages", kind="memcached", address="10.0.1.2:11211", group="catalog", status="up",
        version="1.6.18", interval_s=1.0, ops_per_s=7400.0, hit_ratio=0.884,
        lifetime_hit_ratio=0.87, hits_delta=6100, misses_delta=800, evictions_per_s=55.0,
        expirations_per_s=3.0, memory_used_bytes=6.3e7, memory_max_bytes=6.7e7, connections=96,
        max_connections=1024, keys=51_000,
        probe_latency=Latency(0.00021, 0.00038, 0.00061, "probe 60s"),
        status_since=FIXED_WALL, updated_at=FIXED_WALL)
    local = TargetFigures(name="local-lru", kind="metrics", address="http://app:8000/metrics",
                          group="api", status="up", interval_s=1.0, ops_per_s=2400.0,
                          hit_ratio=0.81, hits_delta=1944, misses_delta=456, keys=10_000,
                          server_latency=Latency(0.000011, 0.000049, 0.00009, "interval"),
                          status_since=FIXED_WALL, layer=APP_CACHES)
    api = replace(local, name="api", caches=(
        replace(local, name="local-lru"),
        replace(local, name="redis-l2", ops_per_s=456.0, hit_ratio=0.64, hits_delta=292,
                misses_delta=164, server_latency=Latency(0.00021, 0.0009, 0.0031, "interval"),
                lives_on="catalog-1")),
        ops_per_s=2856.0, hits_delta=2236, misses_delta=620, hit_ratio=2236 / 2856)
    return [redis("sessions-1"), restarted, down, catalog, pages, api]


class ScriptedMonitor:
    """Serves one fixed snapshot; polling controls are accepted and do nothing."""

    def __init__(self, targets: list[TargetFigures] | None = None,
                 interval_s: float = 1.0) -> None:
        self.targets = targets if targets is not None else scripted_fleet()
        self.interval_s = interval_s
        self.version = 1
        self.history = History(600, 1.0)
        now = time.monotonic()
        for t in self.targets:  # ten minutes of gently moving history for the charts
            for i in range(600):
                wave = 1 + 0.1 * math.sin(i / 30)
                self.history.record(t.name, now - 600 + i, {
                    "ops_per_s": (t.ops_per_s or 0) * wave, "hit_ratio": t.hit_ratio,
                    "p50_s": t.server_latency.p50_s, "p95_s": t.server_latency.p95_s,
                    "p99_s": (t.server_latency.p99_s or 0) * wave,
                    "memory_used_bytes": t.memory_used_bytes,
                    "evictions_per_s": t.evictions_per_s})

    def fleet_history(self) -> list[FleetFigures]:
        """Two minutes of fleet totals, swaying a little, for the header's sparklines."""
        fleet = self.snapshot().fleet
        points = []
        for i in range(120):
            wave = 1 + 0.15 * math.sin(i / 9)
            points.append(replace(
                fleet, ops_per_s=(fleet.ops_per_s or 0) * wave,
                hit_ratio=min(1.0, (fleet.hit_ratio or 0) * (1 + 0.03 * math.cos(i / 7))),
                worst_p99_s=(fleet.worst_p99_s or 0) * (2 - wave),
                evictions_per_s=(fleet.evictions_per_s or 0) * wave * wave))
        return points

    def snapshot(self) -> FleetSnapshot:
        return FleetSnapshot.build(self.targets, self.interval_s, FIXED_WALL, self.version)

    def series(self, name: str, last_s: float | None = None) -> Mapping[str, Sequence[float]]:
        return self.history.series(name, last_s)

    def target(self, name: str) -> Target | None:
        """A target for a scripted row: its kind and address, nothing to connect to."""
        row = next((t for t in self.targets if t.name == name), None)
        return None if row is None else Target(name=row.name, kind=row.kind,
                                               address=row.address, group=row.group)

    def events_since(self, seq: int = 0) -> list[Event]:
        """A few minutes of what happened to the scripted fleet, for pictures."""
        events = [
            Event(FIXED_WALL - 240, "sessions-1", THRESHOLD, "evicting 12 keys/s", 1),
            Event(FIXED_WALL - 95, "sessions-3", STATUS, "down: connection refused", 2),
            Event(FIXED_WALL - 60, "sessions-2", RESTART, "restarted (new instance id)", 3),
            Event(FIXED_WALL - 20, "pages", ACTION,
                  "flush pattern 'tmp:*': deleted 1200 of 1200 done", 4),
        ]
        return [e for e in events if e.seq > seq]

    def watch(self, name: str, on: bool = True) -> None: ...

    def notice(self) -> str | None:
        return None

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def set_interval(self, interval_s: float) -> None:
        self.interval_s = interval_s

    def set_paused(self, paused: bool) -> None: ...

    def poll_now(self) -> None: ...

    def watch_clients(self, name: str, on: bool = True) -> None: ...

    def set_credentials(self, name: str, username: str | None,
                        password: Secret | None) -> None: ...
