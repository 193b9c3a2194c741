"""The fleet table on real servers: groups that fold, roles and badges, MEM% without a limit,
an endpoint's caches cut to 100 rows and one "more" row, the cursor across re-sorts, the
column sets, and the first frame drawn before any target is polled."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from http.server import BaseHTTPRequestHandler

from cachetop.config import Config
from cachetop.engine.client import EngineClient
from cachetop.tui.app import CHILD_ROWS, CachetopApp
from cachetop.tui.table_model import child_key, group_key
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.collectors.test_prom_endpoint import RouteServer, respond
from tests.servers import MemcachedServer, RedisServer, free_port
from tests.tui.pilot import cell, config_for, row_order, screen_line, wait_for


def _widget_text(app: CachetopApp, selector: str) -> str:
    return str(app.fleet_screen.query_one(selector).render())


def _grouped(config: Config, groups: dict[str, str]) -> Config:
    targets = tuple(dataclasses.replace(t, group=groups[t.name]) for t in config.targets)
    return dataclasses.replace(config, targets=targets)


def test_group_rows_fold_with_enter_and_keep_the_worst_p99_apart(
        redis_server: RedisServer, memcached_server: MemcachedServer) -> None:
    config = _grouped(config_for(redis_server.url, memcached_server.url, names=["r", "m"]),
                      {"r": "sessions", "m": "web"})

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "r", "p99") not in ("", "—"))
            await pilot.press("g")
            web, sessions = group_key("web"), group_key("sessions")
            await wait_for(pilot, lambda: row_order(table) == [sessions, "r", web, "m"])
            line = screen_line(table, sessions)
            assert line.startswith("▾ sessions")
            # The group's worst p99 and the word "worst" stay apart ("1.96worst" before).
            assert re.search(r"\d worst", line), line
            table.move_cursor(row=table.get_row_index(sessions))
            await pilot.press("enter")                      # folds: its target is hidden
            await wait_for(pilot, lambda: row_order(table) == [sessions, web, "m"])
            assert screen_line(table, sessions).startswith("▸ sessions")
            assert table.selected_key == sessions
            assert "sessions" in _widget_text(app, "#selection")   # not blank
            await pilot.press("enter")                      # and back
            await wait_for(pilot, lambda: row_order(table) == [sessions, "r", web, "m"])
            await pilot.press("q")

    asyncio.run(scenario())


def test_memory_percent_without_maxmemory_is_a_dash(redis_server: RedisServer) -> None:
    config = config_for(redis_server.url, names=["nolimit"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "nolimit", "mem") not in ("", "—"))
            assert cell(table, "nolimit", "limit") == "none"
            assert cell(table, "nolimit", "mem_pct") == "—"   # was a share of the host, "0%*"
            await pilot.press("q")

    asyncio.run(scenario())


def test_replicas_show_their_master_by_name_and_rows_show_protection() -> None:
    primary = RedisServer()
    primary.start()
    replica = RedisServer("--replicaof", "127.0.0.1", str(primary.port))
    replica.start()
    config = config_for(primary.url, replica.url, names=["primary", "copy"])
    targets = (dataclasses.replace(config.targets[0], env="prod"),
               dataclasses.replace(config.targets[1], read_only=True))
    config = dataclasses.replace(config, targets=targets)

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "copy", "role").startswith("replica"),
                           timeout_s=20)
            await wait_for(pilot, lambda: re.fullmatch(r"replica of primary \d+s",
                                                       cell(table, "copy", "role")) is not None)
            assert cell(table, "primary", "role") == "master · 1 replica"
            assert "replica of primary" in screen_line(table, "copy")   # the column is shown
            assert screen_line(table, "primary").startswith("prod primary")
            assert screen_line(table, "copy").startswith("ro copy")
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        replica.close()
        primary.close()


CACHES = 250


def test_an_endpoints_caches_are_its_busiest_100_rows_and_one_more_row() -> None:
    server = RouteServer()
    scrapes = iter(range(1, 1 << 30))

    def metrics(handler: BaseHTTPRequestHandler) -> None:
        # Cache i serves (i + 1) * 4 lookups per scrape: the busiest are the last ones.
        n = next(scrapes)
        lines = []
        for i in range(CACHES):
            lookups = n * (i + 1) * 4
            lines.append(f'cache_hits_total{{cache="c{i}"}} {lookups * 3 // 4}')
            lines.append(f'cache_misses_total{{cache="c{i}"}} {lookups // 4}')
        respond(handler, ("\n".join(lines) + "\n").encode())

    server.routes["/metrics"] = metrics
    server.start()
    config = config_for(server.url("/metrics"), names=["app"], interval_s=0.5)

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            more = child_key("app", "\x02more")
            await wait_for(pilot, lambda: more in table.rows
                           and cell(table, more, "ops") not in ("", "—"), timeout_s=20)
            rows = row_order(table)
            assert len(rows) == 1 + CHILD_ROWS + 1 and rows[-1] == more
            assert {r.split("\x00")[1] for r in rows[1:-1]} == {
                f"c{i}" for i in range(CACHES - CHILD_ROWS, CACHES)}
            assert cell(table, more, "name") == f"└ {CACHES - CHILD_ROWS} more caches"
            assert cell(table, more, "kind") == "more"
            # 3 hits in 4 lookups for every cache, so for their sum too.
            assert cell(table, more, "hit") == "75.0%"
            while app.fleet_screen.view.sort_column != "ops":  # s: name, kind, status, ops
                await pilot.press("s")
            await wait_for(pilot, lambda: app.fleet_screen.view.sort_column == "ops")
            assert row_order(table)[-1] == more               # the rest stays last
            await pilot.press("end")
            await wait_for(pilot, lambda: table.selected_key == more)
            assert "more caches" in screen_line(table, more)
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        server.close()


def test_the_cursor_stays_on_its_target_across_re_sorts(
        redis_server: RedisServer, memcached_server: MemcachedServer) -> None:
    config = config_for(redis_server.url, memcached_server.url,
                        f"redis://127.0.0.1:{free_port()}", names=["b", "a", "c"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: row_order(table) == ["b", "a", "c"])
            table.move_cursor(row=0)
            await wait_for(pilot, lambda: table.selected_key == "b")
            for keys, order in ((["s"], ["a", "b", "c"]), (["r"], ["c", "b", "a"]),
                                (["s"], None), (["S", "S", "r"], None)):
                await pilot.press(*keys)
                if order is not None:
                    await wait_for(pilot, lambda order=order: row_order(table) == order)
                await pilot.pause()
                assert table.selected_key == "b"
                assert _widget_text(app, "#selection").startswith("b ")
            await pilot.press("q")

    asyncio.run(scenario())


def test_column_sets_cycle_and_the_first_figures_fit_80_columns(
        redis_server: RedisServer) -> None:
    config = config_for(redis_server.url, names=["r"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "r", "status") == "● up")
            header = "".join(s.text for s in table.render_line(0))
            for label in ("NAME", "STATUS", "OPS/s", "HIT%", "P99ms", "MEM%", "EVICT/s"):
                assert label in header, header
            assert len(header.rstrip()) <= table.size.width
            await pilot.press("c")                           # latency
            await wait_for(pilot, lambda: "P50ms" in "".join(
                s.text for s in table.render_line(0)))
            assert "MEM%" not in "".join(s.text for s in table.render_line(0))
            await pilot.press("c", "c")                      # memory, then overview again
            await wait_for(pilot, lambda: "".join(s.text for s in table.render_line(0))
                           == header)
            await pilot.press("q")

    asyncio.run(scenario())


def test_the_first_frame_shows_every_target_connecting_before_the_engine_starts() -> None:
    ports = [free_port() for _ in range(3)]
    config = config_for(*(f"redis://127.0.0.1:{p}" for p in ports), names=["x", "y", "z"])
    seen: dict[str, object] = {}

    class Recording(EngineClient):
        def start(self) -> None:
            table = app.fleet_screen.query_one(FleetTable)
            seen["rows"] = row_order(table)
            seen["status"] = [cell(table, n, "status") for n in ("x", "y", "z")]
            seen["header"] = "".join(s.text for s in table.render_line(0))
            super().start()

    source = Recording(config.targets, config.interval_s, config.history_s)
    app = CachetopApp(config, source=source)

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: "rows" in seen)
            await wait_for(pilot, lambda: cell(app.fleet_screen.query_one(FleetTable), "x",
                                               "status") == "✖ down")
            await pilot.press("q")

    asyncio.run(scenario())
    assert seen["rows"] == ["x", "y", "z"]
    assert seen["status"] == ["◌ connecting…"] * 3
    assert str(seen["header"]).startswith("NAME")
