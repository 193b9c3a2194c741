"""Issue 20 on the instance screen, against real servers with the pilot: the host memory share
of a Redis without maxmemory, prod/read-only badges where people act, header and chart titles
reading the same interval, latency charts a spike does not flatten, and the CLIENT LIST pane."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest

from cachetop.formatting import size
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.action import ActionScreen
from tests.servers import RedisServer
from tests.tui.pilot import config_for, wait_for
from tests.tui.test_instance_screen import open_instance, rendered


def test_a_redis_without_maxmemory_shows_its_share_of_host_memory(
        redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.mset({f"k:{i}": "x" * 1000 for i in range(2000)})  # about 2 MB used
    info = client.info("memory")
    assert int(info["maxmemory"]) == 0
    host = int(info["total_system_memory"])
    config = config_for(redis_server.url, names=["nolimit"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await open_instance(app, pilot, "nolimit")
            tiles = screen.query_one("#instance-tiles")
            await wait_for(pilot, lambda: "of host" in rendered(tiles))
            text = rendered(tiles)
            assert "no limit" in text
            found = re.search(r"([0-9.]+)% of host ([0-9.]+[KMGT])", text)
            assert found is not None, text
            used = int(client.info("memory")["used_memory"])
            # Independent: INFO's used_memory over total_system_memory, read by redis-py.
            assert float(found.group(1)) == pytest.approx(used / host * 100, rel=0.25)
            assert found.group(2) == size(host)
            await pilot.press("q")

    asyncio.run(scenario())


def test_prod_and_read_only_badges_in_the_instance_header_and_action_dialog(
        redis_server: RedisServer) -> None:
    base = config_for(redis_server.url, redis_server.url + "/1", names=["orders", "scratch"])
    orders, scratch = base.targets
    config = dataclasses.replace(base, targets=(
        dataclasses.replace(orders, env="prod", read_only=True), scratch))

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await open_instance(app, pilot, "orders")
            title = rendered(screen.query_one("#instance-title"))
            assert title.startswith("orders  prod  read-only  redis"), title
            await pilot.press("f")
            await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen))
            dialog = rendered(app.screen.query_one("#action-title"))
            assert " on orders  prod  read-only  " in dialog, dialog
            await pilot.press("escape")
            await pilot.press("escape")
            other = await open_instance(app, pilot, "scratch")
            title = rendered(other.query_one("#instance-title"))
            assert "prod" not in title and "read-only" not in title, title
            await pilot.press("q")

    asyncio.run(scenario())
