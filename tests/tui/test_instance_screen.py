"""The instance screen driven with the pilot against real redis-server, memcached and a metrics
endpoint; plus the pure helpers it is built from."""

from __future__ import annotations

import asyncio
import io
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Static, TabbedContent

from cachetop.detail import call_rates, commandstats
from cachetop.host_process import is_local, process_for_port
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.fleet import FleetScreen
from cachetop.tui.screens.instance import InstanceScreen, chart_window
from cachetop.tui.widgets.fleet_table import FleetTable
from cachetop.tui.widgets.instance_detail import RawView, filtered
from cachetop.tui.widgets.instance_tiles import Flow, latency_unit
from cachetop.tui.widgets.metric_chart import MetricChart, ago, segments, time_ticks
from tests.servers import MemcachedServer, RedisServer, free_port
from tests.tui.pilot import cell, config_for, wait_for

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EVIL = b"[bold]x[/bold]\x1b[31mred"


def rendered(widget: Widget, width: int = 200) -> str:
    """What a Static shows, as plain text."""
    assert isinstance(widget, Static)
    content = widget.content
    if isinstance(content, Text):
        return content.plain
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(content)
    return out.getvalue()


def plain_cell(table: DataTable[Text], row: str, column: str) -> str:
    value = table.get_cell(row, column)
    assert isinstance(value, Text)  # never a markup string
    return value.plain


def column_values(table: DataTable[Text], column: str) -> list[str]:
    return [plain_cell(table, str(key.value), column) for key in table.rows]


async def open_instance(app: CachetopApp, pilot: Pilot[None], name: str) -> InstanceScreen:
    """Wait for the row to be up, select it, press enter, and wait for the detail the engine
    fetches for the target a screen shows."""
    table = app.fleet_screen.query_one(FleetTable)
    await wait_for(pilot, lambda: name in table.rows and cell(table, name, "status") == "● up")
    table.move_cursor(row=table.get_row_index(name))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, InstanceScreen))
    screen = app.screen
    assert isinstance(screen, InstanceScreen)
    assert screen.target_name == name
    await wait_for(pilot, lambda: app.snapshot is not None and any(
        t.name == name and t.detail is not None for t in app.snapshot.targets))
    await pilot.pause(0.3)
    return screen


async def goto(pilot: Pilot[None], screen: InstanceScreen, key: str, pane: str) -> None:
    await pilot.press(key)
    await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == pane)


# -- Redis --------------------------------------------------------------------------------------


def test_redis_instance_screen_shows_keyspace_commands_slowlog_and_raw_info(
        redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.mset({f"k:{i}": "v" for i in range(37)})
    for i in range(5):
        client.set(f"ttl:{i}", "v", ex=600)
    client.config_set("slowlog-log-slower-than", 0)
    client.execute_command("ECHO", EVIL)         # logged, touches no key
    client.config_set("slowlog-log-slower-than", 1_000_000)
    config = config_for(redis_server.url, names=["sessions"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await open_instance(app, pilot, "sessions")
            title = rendered(screen.query_one("#instance-title"))
            assert "sessions" in title
            assert "redis" in title
            assert "master" in title
            assert "● up" in title
            assert "v7" in title
            await wait_for(pilot, lambda: "keys 42" in rendered(screen.query_one(
                "#instance-tiles")))
            tiles = rendered(screen.query_one("#instance-tiles"))
            for label in ("ops/s", "hit", "lifetime", "server p50/95/99", "probe", "memory",
                          "evict/s", "expire/s", "conns 2 / 10k"):
                assert label in tiles
            for chart in ("hit ratio", "ops/s", "latency", "memory", "evictions/s"):
                assert any(rendered(c.query_one(".chart-title")).startswith(chart)
                           for c in screen.query(MetricChart))
            # The local redis-server process, read by a worker thread.
            await wait_for(pilot, lambda: f"pid {redis_server.pid}" in rendered(
                screen.query_one("#instance-process")))
            assert "redis-server" in rendered(screen.query_one("#instance-process"))

            await goto(pilot, screen, "2", "tab-redis-keyspace")
            keyspace = screen.query_one("#redis-keyspace DataTable", DataTable)
            assert plain_cell(keyspace, "0", "keys") == "42"
            assert plain_cell(keyspace, "0", "expires") == "5"

            await goto(pilot, screen, "3", "tab-redis-commands")
            commands = screen.query_one("#redis-commands DataTable", DataTable)
            assert plain_cell(commands, "mset", "calls") == "1"
            assert plain_cell(commands, "info", "cmd") == "info *"    # cachetop's own

            await goto(pilot, screen, "4", "tab-redis-slowlog")
            slowlog = screen.query_one("#redis-slowlog DataTable", DataTable)
            echoed = [c for c in column_values(slowlog, "cmd") if c.startswith("ECHO")]
            assert echoed == ["ECHO [bold]x[/bold]\\x1b[31mred"]        # literal, escaped
            assert all("\x1b" not in c for c in column_values(slowlog, "cmd"))

            await goto(pilot, screen, "5", "tab-redis-server")
            sections = rendered(screen.query_one("#redis-server .server-sections"))
            for field in ("connected_clients", "blocked_clients", "maxclients", "role",
                          "connected_slaves", "rdb_last_bgsave_status", "aof_enabled",
                          "loading"):
                assert field in sections

            await pilot.press("slash")                                   # to the raw INFO
            await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "tab-raw")
            raw = screen.query_one(RawView)
            await pilot.pause()
            await pilot.press(*"redis_version")
            await wait_for(pilot, lambda: rendered(raw.query_one(".raw-count")).startswith(
                "1 of "))
            assert rendered(raw.query_one(".raw-lines")).startswith("redis_version:7.")
            await pilot.press("escape")               # leaves the search box first
            assert isinstance(app.screen, InstanceScreen)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
            await pilot.press("q")

    asyncio.run(scenario())


def test_failing_target_keeps_last_good_figures_greyed_with_its_reason(
        redis_server: RedisServer) -> None:
    redis_server.client().mset({f"k:{i}": "v" for i in range(12)})
    config = config_for(redis_server.url, names=["going"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await open_instance(app, pilot, "going")
            await wait_for(pilot, lambda: "keys 12" in rendered(screen.query_one(
                "#instance-tiles")))
            redis_server.stop()
            await wait_for(pilot, lambda: "connection refused" in rendered(
                screen.query_one("#instance-title")))
            assert "greyed: last good figures" in rendered(screen.query_one("#instance-title"))
            assert screen.has_class("-stale")
            tiles = screen.query_one("#instance-tiles", Static).content
            assert isinstance(tiles, Flow)
            keys = next(t for t in tiles.items if t.plain.startswith("keys"))
            assert keys.plain == "keys 12"
            assert all(span.style == "grey50" for span in keys.spans[1:])  # greyed
            await pilot.press("2")
            keyspace = screen.query_one("#redis-keyspace DataTable", DataTable)
            assert plain_cell(keyspace, "0", "keys") == "12"               # last detail

            redis_server.start()                      # same port, new run_id: a restart
            await wait_for(pilot, lambda: "restarted" in rendered(
                screen.query_one("#instance-title")))
            assert not screen.has_class("-stale")
            await pilot.press("1")                    # charts mark the restart
            await wait_for(pilot, lambda: "restart" in rendered(
                screen.query_one("#chart-ops .chart-title")))
            await pilot.press("q")

    asyncio.run(scenario())


# -- memcached ----------------------------------------------------------------------------------


def test_memcached_instance_screen_at_80x24_shows_slabs_lifetime_and_settings(
        memcached_server: MemcachedServer) -> None:
    client = memcached_server.client()
    for i in range(23):
        client.set(f"page:{i}", b"x" * 3000)
    client.get("page:1")
    client.get("absent")
    config = config_for(memcached_server.url, names=["pages"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_instance(app, pilot, "pages")
            assert "memcached" in rendered(screen.query_one("#instance-title"))
            charts = list(screen.query(MetricChart))
            assert len(charts) == 5
            assert all(c.size.height >= 4 and c.size.width >= 20 for c in charts)

            await goto(pilot, screen, "2", "tab-mc-slabs")
            slabs = screen.query_one("#mc-slabs DataTable", DataTable)
            rows = {key.value: plain_cell(slabs, str(key.value), "items") for key in slabs.rows}
            assert list(rows.values()).count("23") == 1
            slab = next(key for key, items in rows.items() if items == "23")
            assert plain_cell(slabs, str(slab), "pages_mem") == "1.0M"      # 1 page of 1 MB
            chunk = float(plain_cell(slabs, str(slab), "chunk").rstrip("K")) * 1024
            assert chunk >= 3000
            note = rendered(screen.query_one("#mc-slabs .pane-note"))
            assert "total_pages" in note
            assert "used_chunks × chunk_size" in note

            await goto(pilot, screen, "3", "tab-mc-lifetime")
            lifetime = rendered(screen.query_one("#mc-lifetime .lifetime"), width=80)
            assert "total_items" in lifetime
            assert "23" in lifetime
            assert "hit ratio (lifetime)" in lifetime
            assert "50.0%" in lifetime

            await goto(pilot, screen, "4", "tab-mc-settings")
            settings = screen.query_one("#mc-settings", RawView)
            settings.focus_filter()
            await pilot.press(*"item_size_max")
            await wait_for(pilot, lambda: rendered(settings.query_one(".raw-lines"))
                           == "item_size_max 1048576")
            await pilot.resize_terminal(140, 45)                 # nothing breaks on resize
            await pilot.press("escape", "1")
            await wait_for(pilot, lambda: screen.query_one(TabbedContent).active
                           == "tab-overview")
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
            await pilot.press("q")

    asyncio.run(scenario())


# -- metrics endpoint ---------------------------------------------------------------------------


@pytest.fixture
def metrics_endpoint() -> Iterator[str]:
    body = (FIXTURES / "metrics_cachetop.prom").read_bytes().replace(
        b"# HELP cache_hits_total Lookups that found a value.",
        b"# HELP cache_hits_total Lookups [red]that[/red] found a \\\\x1b value.")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_metrics_endpoint_instance_screen_shows_caches_and_raw_families(
        metrics_endpoint: str) -> None:
    config = config_for(metrics_endpoint, names=["api"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await open_instance(app, pilot, "api")
            await goto(pilot, screen, "2", "tab-metrics-caches")
            caches = screen.query_one("#metrics-caches DataTable", DataTable)
            await wait_for(pilot, lambda: len(caches.rows) == 2)
            assert sorted(column_values(caches, "name")) == ["pages", "sessions"]
            assert plain_cell(caches, "sessions", "keys") == "2500"
            assert plain_cell(caches, "pages", "mem") == "512.0K"
            # Charts redraw at most once a second, and not while their tab is hidden.
            drawn_at = screen._charts_at
            await pilot.pause(1.5)
            assert screen._charts_at == drawn_at
            await goto(pilot, screen, "1", "tab-overview")
            await wait_for(pilot, lambda: screen._charts_at > drawn_at)

            await goto(pilot, screen, "3", "tab-raw")
            raw = rendered(screen.query_one("#raw .raw-lines"))
            assert 'cache_hits_total{cache="sessions"} 9000' in raw
            assert "Lookups [red]that[/red] found" in raw
            assert "process_cpu_seconds_total" not in raw        # only the cache families
            await pilot.press("q")

    asyncio.run(scenario())


# -- pure helpers -------------------------------------------------------------------------------


def test_process_for_port_finds_the_local_server(redis_server: RedisServer) -> None:
    info = process_for_port(redis_server.port)
    assert info is not None
    assert info.pid == redis_server.pid
    assert info.name == "redis-server"
    assert info.cpu_percent is None                               # first reading
    again = process_for_port(redis_server.port)
    assert again is not None
    assert again.cpu_percent is not None
    assert process_for_port(free_port()) is None


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("::1", True), ("localhost", True), ("127.0.0.2", True),
    ("10.0.0.5", False), ("cache.internal", False), (None, False)])
def test_is_local(host: str | None, local: bool) -> None:
    assert is_local(host) is local


@pytest.mark.parametrize(("oldest_s", "history_s", "window"), [
    (0.0, 600.0, 60.0), (59.0, 600.0, 60.0), (61.0, 600.0, 120.0), (400.0, 600.0, 600.0),
    (900.0, 600.0, 600.0), (100.0, 90.0, 90.0)])
def test_chart_window_grows_with_the_history_up_to_history_s(
        oldest_s: float, history_s: float, window: float) -> None:
    assert chart_window(oldest_s, history_s) == window


def test_chart_helpers_split_gaps_and_label_time_ago() -> None:
    nan = math.nan
    assert segments([-3, -2, -1, 0], [1, nan, 2, 3]) == [([-3], [1]), ([-1, 0], [2, 3])]
    assert segments([-1, 0], [nan, nan]) == []
    assert [ago(t) for t in (0, -30, -60, -300, -90, -3600)] == [
        "now", "-30s", "-1m", "-5m", "-90s", "-1h"]
    assert time_ticks(600, 40) == [-600, -300, 0]
    assert time_ticks(600, 60) == [-600, -480, -360, -240, -120, 0]
    assert time_ticks(60, 80) == [-60, -50, -40, -30, -20, -10, 0]


def test_command_rates_from_two_refreshes() -> None:
    before = commandstats({"cmdstat_get": "calls=100,usec=300,usec_per_call=3.00",
                           "cmdstat_set": "calls=50,usec=100,usec_per_call=2.00"})
    after = commandstats({"cmdstat_get": "calls=300,usec=900,usec_per_call=3.00",
                          "cmdstat_set": "calls=10,usec=20,usec_per_call=2.00",
                          "cmdstat_del": "calls=5,usec=5,usec_per_call=1.00",
                          "used_memory": "1"})
    assert before["get"] == {"calls": 100.0, "usec": 300.0, "usec_per_call": 3.0}
    assert call_rates(before, after, 10.0) == {"get": 20.0, "set": None, "del": 0.5}
    assert call_rates(before, after, 0.0)["get"] is None


def test_latency_unit_and_tiles_flow() -> None:
    assert latency_unit([2e-6, 9e-4]) == ("µs", 1e6)
    assert latency_unit([2e-6, 2e-3, None]) == ("ms", 1e3)
    flow = Flow([Text("a" * 30), Text("b" * 30), Text("c" * 30)],
                [Text("a"), Text("b"), Text("c")], gap=2)
    assert [line.plain for line in flow.lines(flow.items, 70)] == ["a" * 30 + "  " + "b" * 30,
                                                                   "c" * 30]
    text, shown = filtered(["alpha:1", "beta:2", "ALPHABET:3"], "alpha")
    assert shown == 2
    assert text.plain == "alpha:1\nALPHABET:3"
