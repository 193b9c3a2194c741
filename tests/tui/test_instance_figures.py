"""Issue 20 on the instance screen, against real servers with the pilot: the host memory share
of a Redis without maxmemory, prod/read-only badges where people act, header and chart titles
reading the same interval, latency charts a spike does not flatten, and the CLIENT LIST pane."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import statistics
import threading

import pytest
from rich.text import Text
from textual.widgets import DataTable, TabbedContent

from cachetop.formatting import size
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.action import ActionScreen
from cachetop.tui.widgets.metric_chart import MetricChart
from tests.servers import RedisServer
from tests.tui.pilot import config_for, wait_for
from tests.tui.test_instance_screen import open_instance, plain_cell, rendered


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


class Workload:
    """GETs in a thread whose hit ratio changes every few tenths of a second, so successive
    intervals differ and a title one sample behind the header shows a different figure."""

    def __init__(self, server: RedisServer) -> None:
        self.client = server.client()
        self.client.mset({f"k:{i}": "v" for i in range(100)})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        phase = 0
        while not self.stop.is_set():
            phase += 1
            pipe = self.client.pipeline(transaction=False)
            hits = (phase * 37) % 100
            for i in range(100):
                pipe.get(f"k:{i}" if i < hits else f"absent:{i}")
            pipe.execute()
            self.stop.wait(0.05 * (1 + phase % 4))

    def __enter__(self) -> Workload:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_instance_header_and_chart_titles_read_the_same_interval(
        redis_server: RedisServer) -> None:
    config = config_for(redis_server.url, names=["busy"], interval_s=0.3)

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await open_instance(app, pilot, "busy")
            readings: list[tuple[str, str, str, str]] = []
            with Workload(redis_server):
                while len(readings) < 25:
                    await pilot.pause(0.07)
                    tiles = rendered(screen.query_one("#instance-tiles"))
                    hit_chart = rendered(screen.query_one("#chart-hit .chart-title"))
                    ops_chart = rendered(screen.query_one("#chart-ops .chart-title"))
                    tile_hit = re.search(r"hit ([0-9.]+%)", tiles)
                    tile_ops = re.search(r"ops/s (\S+)", tiles)
                    chart_hit = re.search(r"hit ratio ━ (\S+)", hit_chart)
                    chart_ops = re.search(r"ops/s ━ (\S+)", ops_chart)
                    if tile_hit and chart_hit and tile_ops and chart_ops:
                        readings.append((tile_hit.group(1), chart_hit.group(1),
                                         tile_ops.group(1), chart_ops.group(1)))
            assert len({r[0] for r in readings}) > 3  # the figure did change meanwhile
            assert [(r[0], r[2]) for r in readings] == [(r[1], r[3]) for r in readings]
            await pilot.press("q")

    asyncio.run(scenario())


def p99s(app: CachetopApp) -> list[float]:
    return [v for v in app.source.series("spiky").get("p99_s", ()) if math.isfinite(v)] or [0.0]


def test_one_latency_spike_does_not_flatten_the_rest_of_the_latency_chart() -> None:
    server = RedisServer("--enable-debug-command", "yes")
    server.start()
    base = config_for(server.url, names=["spiky"], interval_s=0.3)
    config = dataclasses.replace(base, targets=tuple(
        dataclasses.replace(t, timeout_s=2.0) for t in base.targets))  # outlives the sleep

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await open_instance(app, pilot, "spiky")
            chart = screen.query_one("#chart-latency", MetricChart)
            with Workload(server):  # GETs: a dozen ordinary intervals
                await wait_for(pilot, lambda: len(app.source.series("spiky").get("t", ())) > 12,
                               timeout_s=30)
                quiet_s = statistics.median(p99s(app))  # the typical interval (load-dependent)
            # Then a handful of commands far slower than that, and a hundred ordinary ones:
            # the histogram is read at the next poll (a hundred foreign calls make it due),
            # and 5 of 105 calls put its p99 on the slow ones.
            sleep_s = min(0.4, max(0.05, 30 * quiet_s))
            pipe = server.client().pipeline(transaction=False)
            for _ in range(5):
                pipe.execute_command("DEBUG", "SLEEP", str(sleep_s))
            for i in range(100):
                pipe.get(f"after:{i}")
            pipe.execute()
            await wait_for(pilot, lambda: max(p99s(app)) > 0.6 * sleep_s, timeout_s=40)
            await wait_for(pilot, lambda: "latency server ms" in rendered(
                chart.query_one(".chart-title")))
            await pilot.pause(1.5)  # a redraw with the spike on it
            assert max(p99s(app)) >= 10 * quiet_s and chart.shown_range is not None
            bottom, top = chart.shown_range
            assert chart.log_scale and top >= math.log10(max(p99s(app)) * 1e3)  # the spike...
            # ...and the quiet points sit well above its floor: a tenth of the height or more.
            # On a linear axis up to the spike they would be a tenth of it or less.
            quiet = math.log10(quiet_s * 1e3)
            assert (quiet - bottom) / (top - bottom) >= 0.1
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        server.close()


def test_client_list_pane_shows_top_clients_literally_and_never_values(
        redis_server: RedisServer) -> None:
    busy = redis_server.client()
    busy.client_setname("busy-worker")
    idle = redis_server.client()
    idle.client_setname("idle-one")
    idle.ping()
    hostile = redis_server.client()
    hostile.execute_command("CLIENT", "SETNAME", "[bold]x[/bold]")  # markup, not spaces
    base = config_for(redis_server.url, names=["clients"])
    config = dataclasses.replace(base, targets=tuple(
        dataclasses.replace(t, detail_every_s=0.5) for t in base.targets))
    secret = "VALUE-NEVER-SHOWN-7f3a"

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(160, 45)) as pilot:
            screen = await open_instance(app, pilot, "clients")
            await pilot.press("6")
            await wait_for(pilot, lambda: screen.query_one(TabbedContent).active
                           == "tab-redis-clients")
            table = screen.query_one("#redis-clients DataTable", DataTable)
            with Workload(redis_server):
                for _ in range(20):
                    busy.set("k", secret)
                    await pilot.pause(0.1)
                # Idle order: idle-one has been idle longest among the named clients.
                await pilot.press("o")
                await wait_for(pilot, lambda: "by idle" in rendered(
                    screen.query_one("#redis-clients .pane-note")))
                await wait_for(pilot, lambda: names(table)[:1] == ["idle-one"], timeout_s=20)
            shown = names(table)
            assert {"busy-worker", "idle-one", "[bold]x[/bold]", "cachetop"} <= set(shown)
            # Independent: each client's own address as CLIENT INFO gives it.
            row = next(k.value for k in table.rows
                       if plain_cell(table, str(k.value), "name") == "busy-worker")
            own_addr = busy.execute_command("CLIENT", "INFO").decode().split(" addr=")[1]
            assert plain_cell(table, str(row), "addr") == own_addr.split(" ")[0]
            assert plain_cell(table, str(row), "cmd") == "set"
            everything = " ".join(plain_cell(table, str(k.value), c)
                                  for k in table.rows for c in ("name", "cmd", "user", "addr"))
            assert secret not in everything
            # Memory order: the table is sorted by each client's tot-mem, largest first.
            await pilot.press("o")
            await pilot.press("o")
            await wait_for(pilot, lambda: "by memory" in rendered(
                screen.query_one("#redis-clients .pane-note")))
            await pilot.press("q")

    asyncio.run(scenario())


def names(table: DataTable[Text]) -> list[str]:
    return [plain_cell(table, str(k.value), "name") for k in table.rows]
