"""The dashboard driven by a recording: the cursor moves the figures on screen, the events
screen lists the whole recording and enter jumps to an event, actions are refused."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from cachetop.config import load_config
from cachetop.events.model import Event
from cachetop.fleet import FleetSnapshot, TargetFigures
from cachetop.record.replay_source import ReplaySource
from cachetop.record.store import Recorder, Recording
from cachetop.snapshot_json import snapshot_document
from cachetop.tui.replay import ReplayApp
from cachetop.tui.screens.events import EventsScreen
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.tui.pilot import cell, wait_for

T0 = 1_796_000_000.0


def _record(path: Path) -> None:
    recorder = Recorder(path, keep_s=None, key_every=4)
    for i in range(10):
        t = TargetFigures(name="r", kind="redis", address="h:1", status="up", interval_s=1.0,
                          status_since=T0, last_success=T0 + i, ops_per_s=100.0 * (i + 1))
        events = [Event(T0 + i, "r", "status", f"moment {i}")] if i in (2, 7) else []
        recorder.write(T0 + i, snapshot_document(FleetSnapshot.build([t], 1.0, T0 + i),
                                                 None, events), events)
    recorder.close()


def test_the_cursor_moves_the_figures_and_an_event_is_a_place_to_jump_to(
        tmp_path: Path) -> None:
    _record(tmp_path / "r.db")
    source = ReplaySource(Recording(tmp_path / "r.db"))
    app = ReplayApp(dataclasses.replace(load_config(None, {}), targets=()), source)

    async def run() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: table.row_count == 1 and cell(table, "r", "ops")
                           == "1000")  # the end of the recording: frame 10
            await pilot.press("comma", "comma")
            await wait_for(pilot, lambda: cell(table, "r", "ops") == "800")
            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, EventsScreen))
            events = app.screen.query_one("#events-table")
            assert events.row_count == 2  # type: ignore[attr-defined]
            await pilot.press("down", "enter")  # the older one: moment 2, at T0 + 2
            await wait_for(pilot, lambda: not isinstance(app.screen, EventsScreen))
            await wait_for(pilot, lambda: cell(table, "r", "ops") == "300")
            assert [e.text for e in app.events] == ["moment 2"]  # nothing from its future
            await pilot.press("f")
            await pilot.pause(0.3)
            assert app.screen is app.fleet_screen  # no action dialog in a replay

    asyncio.run(run())
