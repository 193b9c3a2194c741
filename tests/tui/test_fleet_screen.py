"""The fleet screen driven with the pilot against real redis-server and memcached processes."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.fleet import FleetScreen
from cachetop.tui.screens.instance import InstanceScreen
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.servers import MemcachedServer, RedisServer, free_port
from tests.tui.pilot import cell, config_for, row_order, wait_for

TRAFFIC = """
import sys, time, redis
client = redis.Redis(port=int(sys.argv[1]))
client.set("hot", "v")
while True:
    pipe = client.pipeline(transaction=True)
    for _ in range(4):
        pipe.get("hot")
    pipe.get("cold")
    pipe.execute()
    time.sleep(0.002)
"""


@contextlib.contextmanager
def four_hits_one_miss(server: RedisServer):  # type: ignore[no-untyped-def]
    """Traffic whose every interval is exactly 80 % hits: 4 hits and 1 miss per transaction.
    In its own process: a thread here would hold the GIL and slow the pilot, not the app."""
    proc = subprocess.Popen([sys.executable, "-c", TRAFFIC, str(server.port)],
                            stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def test_fleet_table_shows_live_figures_statuses_and_reacts_to_keys(
        redis_server: RedisServer, memcached_server: MemcachedServer) -> None:
    config = config_for(redis_server.url, memcached_server.url,
                        f"redis://127.0.0.1:{free_port()}", names=["b-redis", "a-mc", "c-gone"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "b-redis", "hit") == "80.0%")
            assert cell(table, "b-redis", "status") == "● up"
            assert cell(table, "a-mc", "status") == "● up"
            assert cell(table, "a-mc", "hit") == "—"          # no lookups: no ratio
            assert cell(table, "c-gone", "status") == "✖ down"
            # The server's histogram is read on a slower cadence than the counters: wait.
            await wait_for(pilot, lambda: cell(table, "b-redis", "src") == "srv")
            assert cell(table, "a-mc", "src") == "probe"

            await pilot.press("l")                          # whole table to probe latency
            await wait_for(pilot, lambda: cell(table, "b-redis", "src") == "probe")

            await pilot.press("s")                          # sort by name
            await wait_for(pilot, lambda: row_order(table) == ["a-mc", "b-redis", "c-gone"])
            await pilot.press("r")
            await wait_for(pilot, lambda: row_order(table) == ["c-gone", "b-redis", "a-mc"])

            await pilot.press("slash", "m", "c")            # filter
            await wait_for(pilot, lambda: row_order(table) == ["a-mc"])
            await pilot.press("escape")
            await wait_for(pilot, lambda: len(row_order(table)) == 3)

            table.move_cursor(row=row_order(table).index("b-redis"))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, InstanceScreen))
            assert app.screen.target_name == "b-redis"      # type: ignore[attr-defined]
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
            await pilot.press("q")

    with four_hits_one_miss(redis_server):
        asyncio.run(scenario())


def test_hung_target_never_stalls_the_screen(memcached_server: MemcachedServer) -> None:
    healthy, hung = RedisServer(), RedisServer()
    healthy.start()
    hung.start()
    config = config_for(healthy.url, hung.url, memcached_server.url, interval_s=0.3,
                        names=["healthy", "hung", "mc"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(120, 36)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "hung", "status") == "● up")
            hung.freeze()
            await wait_for(pilot, lambda: cell(table, "hung", "status") == "✖ timeout")
            # Other rows keep updating on time while the hung one times out every poll.
            seen: dict[str, set[float]] = {"healthy": set(), "mc": set()}

            def six_updates_each() -> bool:
                snap = app.snapshot
                assert snap is not None
                for t in snap.targets:
                    if t.name in seen:
                        seen[t.name].add(t.updated_at)
                return all(len(times) >= 6 for times in seen.values())

            await wait_for(pilot, six_updates_each, timeout_s=30.0)
            for name, times in seen.items():
                updates = sorted(times)
                gaps = [b - a for a, b in zip(updates, updates[1:], strict=False)]
                assert max(gaps) < 0.9, name
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        hung.thaw()
        healthy.close()
        hung.close()


def test_keys_answer_while_a_poll_hangs(memcached_server: MemcachedServer) -> None:
    """Counted, not timed: while one poll of a frozen server holds its whole 8 s deadline,
    the screen answers key after key (about a dozen rounds; 3 even on a loaded machine). A
    screen that waited on that server would answer at most one before the timeout shows."""
    healthy, hung = RedisServer(), RedisServer()
    healthy.start()
    hung.start()
    config = config_for(healthy.url, hung.url, memcached_server.url, interval_s=8.0,
                        names=["healthy", "hung", "mc"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(120, 36)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: all(cell(table, name, "status") == "● up"
                                              for name in ("healthy", "hung", "mc")))
            hung.freeze()
            await pilot.press("R")  # poll every target now: the hung poll starts its deadline
            answered = 0
            while cell(table, "hung", "status") == "● up" and answered < 100:
                await pilot.press("slash", "m", "c")
                await wait_for(pilot, lambda: row_order(table) == ["mc"])
                await pilot.press("escape")
                await wait_for(pilot, lambda: len(row_order(table)) == 3)
                answered += 1
            # The timeout showed while keys kept coming: figures wait for keys, not forever.
            assert answered < 100, "the timeout never showed while keys were pressed"
            await wait_for(pilot, lambda: cell(table, "hung", "status") == "✖ timeout")
            assert answered >= 3, answered
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        hung.thaw()
        healthy.close()
        hung.close()


def test_keys_typed_at_once_after_slash_go_to_the_filter() -> None:
    """A terminal delivers a paste, or a fast typist's `/redis⏎`, in one read: every key is
    queued at the table before the screen's `/` binding opens the filter. They belong to the
    filter: the `e` must not open the events, the Enter must not drill down."""
    import dataclasses

    from textual import events

    from cachetop.config import load_config
    from cachetop.demo.scripted import ScriptedMonitor

    def keys(text: str) -> list[events.Key]:
        names = {"/": "slash", "\r": "enter"}
        return [events.Key(names.get(c, c), None if c == "\r" else c) for c in text]

    async def scenario() -> None:
        config = dataclasses.replace(load_config(None, {}), targets=())
        app = CachetopApp(config, source=ScriptedMonitor())  # type: ignore[arg-type]
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: len(row_order(table)) > 3)
            every = row_order(table)
            for key in keys("/sessions\r"):
                app.post_message(key)
            await wait_for(pilot, lambda: row_order(table) != every)
            await pilot.pause(0.3)
            assert isinstance(app.screen, FleetScreen)
            assert row_order(table) == [r for r in every if "sessions" in r]
            assert app.focused is table  # Enter applied the filter and closed its line
            for key in keys("/"):
                app.post_message(key)
            await pilot.pause(0.3)
            for key in keys("ape"):  # typed after the line opened: the ordinary path
                app.post_message(key)
            await wait_for(pilot, lambda: row_order(table) == [r for r in every if "ape" in r])
            await pilot.press("q")

    asyncio.run(scenario())
