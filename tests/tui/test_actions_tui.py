"""Actions from the keyboard: preview, confirm, run, result; refused in read-only mode."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import Button, OptionList, SelectionList

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


def _status(app: CachetopApp) -> str:
    return str(app.screen.query_one("#action-status").render())


async def _type(pilot: Pilot[None], text: str) -> None:
    names = {"*": "asterisk", "-": "minus", ":": "colon", " ": "space"}
    for ch in text:
        await pilot.press(names.get(ch, ch))


async def _open(pilot: Pilot[None], app: CachetopApp, key: str, row: str = "cache") -> None:
    table = app.fleet_screen.query_one(FleetTable)
    await wait_for(pilot, lambda: cell(table, row, "status") == "● up", timeout_s=30)
    table.move_cursor(row=table.get_row_index(row))
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen), timeout_s=30)


def test_a_replica_is_refused_once_and_the_flushdb_button_says_flushdb(
        redis_server: RedisServer, audit_dir: Path) -> None:
    """Issue 20.8: `refused: refused: …` said once; FLUSHDB's button is not "Delete"."""
    _fill(redis_server)
    replica = RedisServer("--replicaof", "127.0.0.1", str(redis_server.port))
    replica.start()
    config = config_for(redis_server.url, replica.url, names=["cache", "cache-replica"])
    labels: dict[str, str] = {}

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            await _open(pilot, app, "F", "cache-replica")
            await wait_for(pilot, lambda: "replica" in _status(app), timeout_s=30)
            assert _status(app).count("refused") == 1, _status(app)
            assert "refused: refused" not in _preview_text(app)
            assert app.screen.query_one("#action-run", Button).disabled
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen), timeout_s=30)
            await _open(pilot, app, "F", "cache")
            await wait_for(pilot, lambda: "keys: " in _preview_text(app), timeout_s=30)
            labels["flushdb"] = str(app.screen.query_one("#action-run", Button).label)
            await pilot.press("escape")
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        replica.close()
    assert labels["flushdb"] == "FLUSHDB db 0"
    assert redis_server.client().dbsize() == 2000


def test_a_pattern_that_matches_nothing_shows_the_naming_and_cannot_run(
        redis_server: RedisServer) -> None:
    """Issue 20.8 and 20.16: "Delete 0 keys" is not offered; a few keys show the naming."""
    _fill(redis_server)
    config = config_for(redis_server.url, names=["cache"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            await _open(pilot, app, "f")
            await _type(pilot, "usr:*")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "keys: 0" in _preview_text(app), timeout_s=30)
            text = _preview_text(app)
            assert "no key matches 'usr:*'; keys here look like: '" in text
            shown = re.findall(r"'((?:user|other):\d+)'", text.split("look like:")[1])
            assert len(shown) == 5
            assert app.screen.query_one("#action-run", Button).disabled
            assert "nothing to delete" in _status(app)
            await pilot.press("q")

    asyncio.run(scenario())
    assert redis_server.client().dbsize() == 2000


def test_the_tag_picker_highlights_the_biggest_live_tag_and_sorts_by_live_keys(
        redis_server: RedisServer) -> None:
    """Issue 20.9: something is highlighted at once; tags sort by live keys, then naturally."""
    from cachetop.actions.tagging import tag_cache

    client = redis_server.client()
    cache = tag_cache(client)
    live = {0: 3, 1: 9, 2: 5, 10: 9}                 # category:N -> live keys
    for n, count in live.items():
        for i in range(count + 4):                   # 4 dead members in every index
            cache.set(f"c{n}:{i}", b"v", ttl=600, tags=[f"category:{n}"])
        client.delete(*[f"c{n}:{i}".encode() for i in range(count, count + 4)])
    config = config_for(redis_server.url, names=["cache"])
    order: list[str] = []

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            await _open(pilot, app, "t")
            options = app.screen.query_one("#action-tags", OptionList)
            await wait_for(pilot, lambda: options.option_count == 4, timeout_s=30)
            assert options.highlighted == 0
            order.extend(str(options.get_option_at_index(i).id) for i in range(4))
            assert "9 live of 13 keys" in str(options.get_option_at_index(0).prompt)
            await pilot.press("enter")                # the highlighted one, at once
            await wait_for(pilot, lambda: "keys: 9" in _preview_text(app), timeout_s=30)
            await pilot.press("q")

    asyncio.run(scenario())
    assert order == ["category:1", "category:10", "category:2", "category:0"]


def test_delete_several_keys_from_the_dialog(redis_server: RedisServer,
                                             audit_dir: Path) -> None:
    """Issue 20.16: keys added one by one to a multi-select; unticked ones are kept."""
    client = redis_server.client()
    client.mset({"a": "1", "b": "2", "c": "3", "keep": "4"})
    config = config_for(redis_server.url, names=["cache"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            await _open(pilot, app, "d")
            await _type(pilot, "nope")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "no such key 'nope'" in _preview_text(app), timeout_s=30)
            assert app.screen.query_one("#action-run", Button).disabled
            chosen = app.screen.query_one("#action-keys", SelectionList)
            chosen.deselect(b"nope".hex())
            for key in ("a", "b", "c"):
                await _type(pilot, key)
                await pilot.press("enter")
            await wait_for(pilot, lambda: "keys: 3" in _preview_text(app), timeout_s=30)
            chosen.deselect(b"b".hex())               # unticked: kept
            await wait_for(pilot, lambda: "keys: 2" in _preview_text(app), timeout_s=30)
            assert str(app.screen.query_one("#action-run", Button).label) == "Delete 2 keys"
            await pilot.click("#action-run")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen), timeout_s=30)
            await pilot.press("q")

    asyncio.run(scenario())
    assert client.exists("a", "c") == 0 and client.exists("b", "keep") == 2
    entry = json.loads((audit_dir / "cachetop" / "audit.log").read_text().splitlines()[-1])
    assert (entry["done"], entry["status"], entry["args"]["keys"]) == (2, "done", "a,c")


@pytest.mark.parametrize("size", [(80, 24), (140, 45)])
def test_the_buttons_stay_on_screen_with_the_tag_list_and_a_long_preview(
        redis_server: RedisServer, size: tuple[int, int]) -> None:
    """Found in the tmux pass: with the tag list open and a 20-key sample previewed, the run
    button was below the dialog's edge (cut off) at 140x45, and more so at 80x24."""
    from cachetop.actions.tagging import tag_cache

    cache = tag_cache(redis_server.client())
    for n in range(12):
        for i in range(30):
            cache.set(f"c{n}:{i}", b"v", ttl=600, tags=[f"category:{n}"])
    config = config_for(redis_server.url, names=["cache"])
    seen: dict[str, Region] = {}
    label: list[str] = []

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=size) as pilot:
            await _open(pilot, app, "t")
            options = app.screen.query_one("#action-tags", OptionList)
            await wait_for(pilot, lambda: options.option_count == 12, timeout_s=30)
            await pilot.press("enter")
            await wait_for(pilot, lambda: "keys: 30" in _preview_text(app), timeout_s=30)
            run = app.screen.query_one("#action-run", Button)
            box = app.screen.query_one("#action-box")
            # The label is set with the preview; the layout that widens the button follows.
            await wait_for(pilot, lambda: run.content_region.width >= len("Invalidate 30 keys"),
                           timeout_s=5)
            seen.update(run=run.region, box=box.region, label_room=run.content_region)
            label.append(str(run.label))
            await pilot.press("q")

    asyncio.run(scenario())
    run, box = seen["run"], seen["box"]
    assert run.height == 3 and run.bottom <= box.bottom - 1 <= size[1], seen  # inside the frame
    assert label == ["Invalidate 30 keys"]
    assert seen["label_room"].width >= len(label[0]), seen          # not cut to "Invalidate 30"
