"""Actions from the keyboard: preview, confirm, run, result; refused in read-only mode."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path

import pytest

from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.action import ActionScreen
from cachetop.tui.screens.fleet import FleetScreen
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.servers import RedisServer
from tests.tui.pilot import cell, config_for, wait_for


@pytest.fixture(autouse=True)
def audit_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    return tmp_path


def _fill(server: RedisServer) -> None:
    client = server.client()
    client.mset({f"user:{i}": "v" for i in range(1000)})
    client.mset({f"other:{i}": "v" for i in range(1000)})


def _preview_text(app: CachetopApp) -> str:
    screen = app.screen
    assert isinstance(screen, ActionScreen)
    return str(screen.query_one("#action-preview").render())


def test_flush_by_pattern_from_the_fleet_screen(redis_server: RedisServer,
                                                audit_dir: Path) -> None:
    _fill(redis_server)
    config = config_for(redis_server.url, names=["cache"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "cache", "status") == "● up")
            await pilot.press("f")
            await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen))
            for ch in "user:*":
                await pilot.press(ch if ch != "*" else "asterisk")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "keys: 1000" in _preview_text(app))
            assert "user:" in _preview_text(app)                 # the sample of keys
            await pilot.click("#action-run")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
            await pilot.press("q")

    asyncio.run(scenario())
    client = redis_server.client()
    assert client.dbsize() == 1000
    assert not list(client.scan_iter(match="user:*"))
    entry = json.loads((audit_dir / "cachetop" / "audit.log").read_text().splitlines()[-1])
    assert (entry["done"], entry["status"], entry["target"]) == (1000, "done", "cache")


def test_read_only_refuses_and_deletes_nothing(redis_server: RedisServer,
                                               audit_dir: Path) -> None:
    _fill(redis_server)
    config = dataclasses.replace(config_for(redis_server.url, names=["cache"]), read_only=True)

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "cache", "status") == "● up")
            await pilot.press("F")                               # flush the whole db
            await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen))
            await wait_for(pilot, lambda: "read-only" in _preview_text(app).lower())
            assert app.screen.query_one("#action-run").disabled
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
            await pilot.press("q")

    asyncio.run(scenario())
    assert redis_server.client().dbsize() == 2000
    assert os.path.exists(audit_dir / "cachetop" / "audit.log")
    assert "refused" in (audit_dir / "cachetop" / "audit.log").read_text()


def test_a_prod_target_covering_the_instance_protects_another_row(
        redis_server: RedisServer, audit_dir: Path) -> None:
    """"cache" is a URL target; "cache-prod" names the same server another way, with env prod:
    the flush from the "cache" row needs "cache-prod" typed (the plan worker resolves it)."""
    from cachetop.config import load_config
    from cachetop.target_url import parse_target_url

    _fill(redis_server)
    config = dataclasses.replace(load_config(None, {}), interval_s=0.3, targets=(
        parse_target_url(redis_server.url, name="cache", timeout_s=0.3),
        parse_target_url(f"redis://localhost:{redis_server.port}", name="cache-prod",
                         env="prod", timeout_s=0.3)))

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: cell(table, "cache", "status") == "● up")
            table.move_cursor(row=table.get_row_index("cache"))
            await pilot.press("f")
            await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen))
            for ch in "user:*":
                await pilot.press(ch if ch != "*" else "asterisk")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "cache-prod is a prod target covering this instance"
                           in _preview_text(app))
            await pilot.click("#action-run")               # nothing typed: refused
            await wait_for(pilot, lambda: "does not match" in str(
                app.screen.query_one("#action-status").render()))
            assert redis_server.client().dbsize() == 2000
            await pilot.click("#action-confirm")
            for ch in "cache-prod":
                await pilot.press("minus" if ch == "-" else ch)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
            await pilot.press("q")

    asyncio.run(scenario())
    assert redis_server.client().dbsize() == 1000
    entry = json.loads((audit_dir / "cachetop" / "audit.log").read_text().splitlines()[-1])
    assert (entry["done"], entry["status"], entry["protection"]) == (
        1000, "done", ["prod: cache-prod"])
