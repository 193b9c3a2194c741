"""An endpoint with many caches: a front that asked for N gets the N busiest and one row for the
rest, and the endpoint's own row still covers every cache."""

from __future__ import annotations

import itertools
import time
from http.server import BaseHTTPRequestHandler

import pytest

from cachetop.engine.client import EngineClient
from tests.collectors.test_prom_endpoint import RouteServer, metrics_target, respond

CACHES = 250
LIMIT = 20


@pytest.fixture
def endpoint() -> RouteServer:
    server = RouteServer()
    scrapes = itertools.count(1)

    def metrics(handler: BaseHTTPRequestHandler) -> None:
        # Cache i serves i lookups per scrape, hit ratio 3/4: the busiest are the last ones.
        n = next(scrapes)
        lines = []
        for i in range(CACHES):
            lookups = n * (i + 1) * 4
            lines.append(f'cache_hits_total{{cache="c{i}"}} {lookups * 3 // 4}')
            lines.append(f'cache_misses_total{{cache="c{i}"}} {lookups // 4}')
        respond(handler, ("\n".join(lines) + "\n").encode())

    server.routes["/metrics"] = metrics
    server.start()
    yield server
    server.close()


def test_the_busiest_caches_and_one_row_for_the_rest(endpoint: RouteServer) -> None:
    target = metrics_target(endpoint.url("/metrics"), timeout_s=1.0)
    client = EngineClient([target], 0.4, caches_limit=LIMIT)
    client.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            (row,) = client.snapshot().targets
            if row.status == "up" and row.caches and row.caches[-1].hits_delta:
                break
            time.sleep(0.05)
    finally:
        client.stop()
    shown, more = row.caches[:-1], row.caches[-1]
    assert len(shown) == LIMIT
    assert {c.name for c in shown} == {f"c{i}" for i in range(CACHES - LIMIT, CACHES)}
    assert more.name == f"{CACHES - LIMIT} more caches"
    assert more.kind == "more" and all(c.kind == "metrics" for c in shown)
    # Between two scrapes cache i grew by (i + 1) * 4 lookups, 3 of 4 hits.
    rest = range(CACHES - LIMIT)
    assert more.hits_delta == sum((i + 1) * 3 for i in rest)
    assert more.misses_delta == sum(i + 1 for i in rest)
    assert more.hit_ratio == pytest.approx(0.75)
    # The endpoint's own row covers every cache, shown or not.
    assert row.hits_delta == sum((i + 1) * 3 for i in range(CACHES))
    assert row.ops_per_s == pytest.approx(sum(c.ops_per_s or 0 for c in row.caches))
