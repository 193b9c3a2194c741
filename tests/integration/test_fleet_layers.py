"""Issue 20 item 1: fleet totals per layer, with an application cache that lives on a server
counted once. A real redis-server pair and a live metrics endpoint, polled by the Monitor."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import pytest

from cachetop.collectors.base import Target
from cachetop.collectors.registry import make_collectors
from cachetop.fleet import FleetSnapshot
from cachetop.monitor import Monitor
from tests.integration.helpers import redis_target
from tests.integration.test_endpoint_figures import Endpoint
from tests.servers import RedisServer
from tests.wait import wait_until

L2_MEMORY = 2_000_000  # what the app reports for redis-l2: catalog's memory, seen from the app
LOCAL_MEMORY = 1_000
SESSIONS_MEMORY = 3_000_000


def app_exposition(scrape: int, sessions_port: int) -> str:
    """Three caches: redis-l2 (linked by the config to catalog), sessions-cache (its endpoint
    names its server), local-lru (in process). Counters grow by a fixed step per scrape."""
    lines = ["# TYPE cache_hits_total counter"]
    lines += [f'cache_hits_total{{cache="{c}"}} {step * scrape}'
              for c, step in (("redis-l2", 80), ("sessions-cache", 30), ("local-lru", 90))]
    lines += ["# TYPE cache_misses_total counter"]
    lines += [f'cache_misses_total{{cache="{c}"}} {step * scrape}'
              for c, step in (("redis-l2", 20), ("sessions-cache", 70), ("local-lru", 10))]
    lines += ["# TYPE cache_evictions_total counter"]
    lines += [f'cache_evictions_total{{cache="{c}"}} {step * scrape}'
              for c, step in (("redis-l2", 100), ("sessions-cache", 100), ("local-lru", 10))]
    lines += ["# TYPE cache_memory_bytes gauge"]
    lines += [f'cache_memory_bytes{{cache="{c}"}} {n}' for c, n in (
        ("redis-l2", L2_MEMORY), ("sessions-cache", SESSIONS_MEMORY),
        ("local-lru", LOCAL_MEMORY))]
    lines += ["# TYPE cache_server_info gauge",
              f'cache_server_info{{cache="sessions-cache",server="127.0.0.1:{sessions_port}"}} 1']
    return "\n".join(lines) + "\n"


class CountingEndpoint(Endpoint):
    """An Endpoint whose exposition advances by one step at every scrape."""

    def __init__(self, sessions_port: int) -> None:
        self.scrapes = itertools.count(1)
        self.sessions_port = sessions_port
        super().__init__()

    @property  # type: ignore[override]
    def text(self) -> str:
        return app_exposition(next(self.scrapes), self.sessions_port)

    @text.setter
    def text(self, value: str) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[RedisServer, RedisServer]]:
    catalog, sessions = RedisServer(), RedisServer()
    catalog.start()
    sessions.start()
    yield catalog, sessions
    catalog.close()
    sessions.close()


def test_an_app_cache_living_on_a_server_is_counted_once(
        servers: tuple[RedisServer, RedisServer]) -> None:
    catalog, sessions = servers
    catalog.client().mset({f"p:{i}": "x" * 500 for i in range(500)})
    endpoint = CountingEndpoint(sessions.port)
    app = Target(name="app", kind="metrics", address=f"127.0.0.1:{endpoint.port}",
                 http_url=f"http://127.0.0.1:{endpoint.port}/metrics", timeout_s=2.0,
                 cache_servers={"redis-l2": "catalog"})
    targets = [redis_target(catalog.port, "catalog", timeout_s=2.0),
               redis_target(sessions.port, "sessions", timeout_s=2.0), app]
    monitor = Monitor(make_collectors(targets), 0.2)
    monitor.start()
    try:
        def ready() -> FleetSnapshot | None:
            snap = monitor.snapshot()
            live = all(t.status == "up" and t.interval_s is not None for t in snap.targets)
            return snap if live else None

        wait_until(ready, "every target up with an interval")
        snap = ready()
        assert snap is not None
    finally:
        monitor.stop()
        endpoint.close()

    app_row = next(t for t in snap.targets if t.name == "app")
    links = {c.name: c.lives_on for c in app_row.caches}
    assert links == {"redis-l2": "catalog", "sessions-cache": "sessions", "local-lru": ""}
    assert snap.serves() == {"catalog": ("app/redis-l2",), "sessions": ("app/sessions-cache",)}

    servers_layer, app_layer = snap.layers["servers"], snap.layers["app caches"]
    used = sum(int(s.client().info("memory")["used_memory"]) for s in (catalog, sessions))
    # Servers: each Redis once, as its own INFO says (a poll ago: a little drift allowed).
    assert servers_layer.memory_used_bytes == pytest.approx(used, rel=0.05)
    assert (servers_layer.targets_up, servers_layer.targets_total) == (2, 2)
    # Application caches: memory and evictions only of what lives in the app itself; the
    # linked caches' are their servers' (counted above).
    assert app_layer.memory_used_bytes == LOCAL_MEMORY
    local = next(c for c in app_row.caches if c.name == "local-lru")
    assert app_layer.evictions_per_s == pytest.approx(local.evictions_per_s)
    # Lookups and hit ratio are the application's view: all three caches, traffic-weighted.
    # Per scrape: hits 80 + 30 + 90 = 200 of 300 lookups.
    assert app_layer.hit_ratio == pytest.approx(200 / 300)
    assert (app_layer.targets_up, app_layer.targets_total) == (1, 1)
    # The fleet line is the servers' figures: no byte or eviction counted twice.
    assert snap.fleet.memory_used_bytes == servers_layer.memory_used_bytes
    assert snap.fleet.evictions_per_s == servers_layer.evictions_per_s
    assert snap.fleet.targets_total == 3


def test_exporter_endpoints_are_servers_not_app_caches() -> None:
    from cachetop.fleet import layer_of

    exporter = Target(name="x", kind="metrics", address="h:9121", convention="redis_exporter")
    app = Target(name="a", kind="metrics", address="h:8000")
    assert layer_of(dataclasses.replace(exporter)) == "servers"
    assert layer_of(app) == "app caches"
    assert layer_of(redis_target(1, "r")) == "servers"
