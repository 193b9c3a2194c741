"""The Keys tab on real servers: the prefix table, `f` on a prefix opening the flush dialog with
`prefix*` (protections included), memcached's asked-for `stats detail`, hostile key names, and
`stats detail` turned off again when the dashboard stops (q and SIGTERM, in a real terminal)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from cachetop.actions.connect import McConnection
from cachetop.config import Config
from cachetop.keys.memcached_detail import read_settings, restore_all
from cachetop.target_url import parse_target_url
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.action import ActionScreen
from cachetop.tui.screens.instance import InstanceScreen
from cachetop.tui.widgets.instance_keys import ConfirmDetail, KeysPane
from tests.actions.helpers import kill
from tests.demo.terminal import PtyProgram
from tests.servers import MemcachedServer, RedisServer
from tests.tui.pilot import config_for, wait_for
from tests.tui.test_hostile_text import assert_inert, widget_text
from tests.tui.test_instance_screen import column_values, open_instance


@pytest.fixture(autouse=True)
def audit_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    return tmp_path


async def keys_tab(app: CachetopApp, pilot: object, name: str) -> KeysPane:
    screen = await open_instance(app, pilot, name)  # type: ignore[arg-type]
    await pilot.press("k")  # type: ignore[attr-defined]
    pane = screen.query_one(KeysPane)
    await wait_for(pilot, lambda: pane.report is not None and not pane.running,  # type: ignore[arg-type]
                   timeout_s=30)
    return pane


def _fill(server: RedisServer) -> None:
    client = server.client()
    client.mset({f"user:{i}": "x" * 40 for i in range(600)})
    client.mset({f"cart:{i}": "y" for i in range(150)})


def test_prefix_table_and_flush_of_a_prefix(redis_server: RedisServer,
                                            audit_dir: Path) -> None:
    _fill(redis_server)
    config = config_for(redis_server.url, names=["cache"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(160, 50)) as pilot:
            pane = await keys_tab(app, pilot, "cache")
            table = pane.query_one(DataTable)
            assert column_values(table, "prefix") == ["user:", "cart:"]  # by memory
            assert column_values(table, "keys") == ["600", "150"]          # exact: a small db
            assert "full" in widget_text(pane.query_one(".pane-note"))
            table.move_cursor(row=1)
            await pilot.press("f")
            await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen))
            assert app.screen.query_one("#action-input", Input).value == "cart:*"
            await pilot.press("enter")                                     # preview
            await wait_for(pilot, lambda: "keys: 150" in widget_text(
                app.screen.query_one("#action-preview")))
            await pilot.click("#action-run")
            await wait_for(pilot, lambda: isinstance(app.screen, InstanceScreen))
            await pilot.press("q")

    asyncio.run(scenario())
    client = redis_server.client()
    assert client.dbsize() == 600 and not list(client.scan_iter(match="cart:*"))
    entry = json.loads((audit_dir / "cachetop" / "audit.log").read_text().splitlines()[-1])
    assert (entry["done"], entry["status"], entry["args"]["pattern"]) == (150, "done", "cart:*")


def test_the_flush_a_prefix_opens_is_refused_on_a_read_only_target(
        redis_server: RedisServer) -> None:
    _fill(redis_server)
    config = dataclasses.replace(config_for(redis_server.url, names=["cache"]), read_only=True)

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(160, 50)) as pilot:
            await keys_tab(app, pilot, "cache")
            await pilot.press("f")
            await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen))
            await pilot.press("enter")
            await wait_for(pilot, lambda: "read-only" in widget_text(
                app.screen.query_one("#action-preview")).lower())
            assert app.screen.query_one("#action-run").disabled
            await pilot.press("escape", "q")

    asyncio.run(scenario())
    assert redis_server.client().dbsize() == 750


HOSTILE = (b"[@click=app.quit]x[/]:1", b"\x1b]0;PWNED\x07\x1b[2J:2", b"r\xe2\x80\xael:3",
           b"bad\xff\xfe:4", b"[link=https://evil]y[/link]:5")


def test_hostile_key_names_are_shown_literally(redis_server: RedisServer) -> None:
    client = redis_server.client()
    for key in HOSTILE:
        client.set(key, b"v" * 64)
    config = config_for(redis_server.url, names=["cache"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(160, 50)) as pilot:
            pane = await keys_tab(app, pilot, "cache")
            prefixes = column_values(pane.query_one(DataTable), "prefix")
            side = widget_text(pane.query_one("#keys-side"))
            assert "[@click=app.quit]x[/]:" in prefixes                # markup, not parsed
            assert "\\x1b]0;PWNED\\x07\\x1b[2J:" in prefixes          # escapes, shown escaped
            assert "bad\\xff\\xfe:" in prefixes and "r\\u202el:" in prefixes
            assert "[link=https://evil]y[/link]:5" in side
            assert_inert(app, *prefixes, side)
            pane.query_one(DataTable).move_cursor(
                row=prefixes.index("\\x1b]0;PWNED\\x07\\x1b[2J:"))
            await pilot.press("f")                     # no raw control bytes in a text box
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ActionScreen)
            assert app.is_running
            await pilot.press("q")

    asyncio.run(scenario())


def detail_on(server: MemcachedServer) -> bool:
    with McConnection(parse_target_url(server.url)) as conn:
        return read_settings(conn)[0]


def test_memcached_asks_before_turning_detail_on_and_shows_hit_ratios() -> None:
    server = MemcachedServer()
    server.start()
    try:
        client = server.client()
        for i in range(40):
            client.set(f"user:{i}", b"x")
        asyncio.run(_memcached_scenario(config_for(server.url, names=["mc"]), server))
        assert detail_on(server)             # on until cachetop stops (run_app restores)...
        assert restore_all() == []
        assert not detail_on(server)         # ...which turns it off again
    finally:
        kill(server)


async def _memcached_scenario(config: Config, server: MemcachedServer) -> None:
    app = CachetopApp(config)
    client = server.client()
    async with app.run_test(size=(160, 50)) as pilot:
        pane = await keys_tab(app, pilot, "mc")
        table = pane.query_one(DataTable)
        assert column_values(table, "keys") == ["40"]
        assert "e: hit ratios (asks first)" in widget_text(pane.query_one(".pane-note"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDetail))
        await pilot.press("n")                                 # no: nothing changes
        await pilot.pause(0.3)
        assert not detail_on(server)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDetail))
        await pilot.press("y")
        await wait_for(pilot, lambda: pane.detail_on)
        assert detail_on(server)
        for i in range(30):                                    # 30 hits, 10 misses
            client.get(f"user:{i}")
        for i in range(10):
            client.get(f"user:none{i}")
        pane._tick_detail()
        await wait_for(pilot, lambda: column_values(table, "hit") == ["75.0%"], timeout_s=20)
        await pilot.press("q")


@pytest.mark.parametrize("how", ["q", "sigterm"])
def test_the_dashboard_turns_detail_off_when_it_stops(tmp_path: Path, how: str) -> None:
    server = MemcachedServer()
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path))
    server.client().set("user:1", b"x")
    program = PtyProgram([sys.executable, "-m", "cachetop", server.url, "--interval", "0.5"],
                         env, rows=40, cols=150)
    try:
        steps = ((b"", "● up"), (b"\r", "Slabs"), (b"k", "e: hit ratios"),
                 (b"e", "Turn it on"))
        for keys, shown in steps:
            program.send(keys)
            text = program.wait_for(lambda t, shown=shown: shown in t, 30)
            assert shown in text, text
        program.send(b"y")
        deadline = time.monotonic() + 30
        while not detail_on(server):
            assert time.monotonic() < deadline, program.text()
            time.sleep(0.1)
        if how == "q":
            program.send(b"q")
        else:
            os.kill(program.proc.pid, signal.SIGTERM)
        assert program.proc.wait(30) == 0
        assert not detail_on(server)
    finally:
        program.close()
        kill(server)
