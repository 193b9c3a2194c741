"""Issue 20 items 1 and 16 on screen: the fleet header's totals per layer, the link between an
application cache and its server on both rows, and the totals of the rows a filter leaves.
Real redis-servers and a live metrics endpoint, driven with the pilot."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator

import pytest

from cachetop.collectors.base import Target
from cachetop.tui.app import CachetopApp
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.integration.test_fleet_layers import CountingEndpoint
from tests.servers import RedisServer
from tests.tui.pilot import cell, config_for, wait_for

UNITS = {"B": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


def header_text(app: CachetopApp) -> str:
    content = app.fleet_screen.query_one("#fleet-figures").content
    return str(getattr(content, "plain", content))


def memory_after(label: str, text: str) -> float:
    found = re.search(rf"{label} ([0-9.]+)([BKMG])", text)
    assert found is not None, text
    return float(found.group(1)) * UNITS[found.group(2)]


@pytest.fixture
def fleet() -> Iterator[tuple[RedisServer, RedisServer, CountingEndpoint]]:
    catalog, sessions = RedisServer(), RedisServer()
    catalog.start()
    sessions.start()
    endpoint = CountingEndpoint(sessions.port)
    yield catalog, sessions, endpoint
    endpoint.close()
    catalog.close()
    sessions.close()


def test_header_totals_per_layer_links_on_both_rows_and_filtered_totals(
        fleet: tuple[RedisServer, RedisServer, CountingEndpoint]) -> None:
    catalog, sessions, endpoint = fleet
    catalog.client().mset({f"p:{i}": "x" * 1000 for i in range(3000)})  # ~4 MB: tells apart
    base = config_for(catalog.url, sessions.url, names=["catalog", "sessions"], interval_s=0.3)
    app_target = Target(name="app", kind="metrics", address=f"127.0.0.1:{endpoint.port}",
                        http_url=f"http://127.0.0.1:{endpoint.port}/metrics", timeout_s=2.0,
                        cache_servers={"redis-l2": "catalog"})
    config = dataclasses.replace(base, targets=(*base.targets, app_target))

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: "own memory 1.0K" in header_text(app)
                           and "fleet 3/3 up" in header_text(app), timeout_s=20)
            text = header_text(app)
            # Servers: both Redis once each; the app's redis-l2 (2 MB) and sessions-cache
            # (3 MB) are not added: they are catalog's and sessions' memory.
            used = sum(int(s.client().info("memory")["used_memory"]) for s in (catalog, sessions))
            assert memory_after("memory", text) == pytest.approx(used, rel=0.06)
            assert "app caches 1/1 up:" in text
            assert "lookups/s" in text

            await wait_for(pilot, lambda: "app\x00redis-l2" in table.rows
                           and "→" in cell(table, "app\x00redis-l2", "name"))
            assert cell(table, "app\x00redis-l2", "name").endswith("→ catalog")
            assert cell(table, "app\x00sessions-cache", "name").endswith("→ sessions")
            assert cell(table, "app\x00local-lru", "name") == "└ local-lru"
            assert "← app/redis-l2" in cell(table, "catalog", "name")
            assert "← app/sessions-cache" in cell(table, "sessions", "name")

            await pilot.press("slash")
            await pilot.press(*"catalog")
            await wait_for(pilot, lambda: "(filter: 1 of 3)" in header_text(app))
            text = header_text(app)
            assert "fleet 1/1 up" in text and "app caches" not in text
            alone = int(catalog.client().info("memory")["used_memory"])
            assert memory_after("memory", text) == pytest.approx(alone, rel=0.06)
            await pilot.press("escape")
            await wait_for(pilot, lambda: "filter" not in header_text(app))
            await pilot.press("q")

    asyncio.run(scenario())
