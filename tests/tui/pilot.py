"""Helpers for pilot tests: build an app on real targets, wait for what the screen shows."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from textual.pilot import Pilot

from cachetop.config import Config, load_config, targets_from_cli
from cachetop.tui.widgets.fleet_table import FleetTable


def config_for(*urls: str, interval_s: float = 0.3, names: list[str] | None = None) -> Config:
    targets = targets_from_cli(list(urls), timeout_s=interval_s)
    if names:
        targets = [dataclasses.replace(t, name=n) for t, n in zip(targets, names, strict=True)]
    return dataclasses.replace(load_config(None, {}), targets=tuple(targets),
                               interval_s=interval_s)


def cell(table: FleetTable, row: str, column: str) -> str:
    return table.get_cell(row, column).plain.strip()


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool],
                   timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met on screen in time")
        await pilot.pause(0.1)


def row_order(table: FleetTable) -> list[str]:
    """The keys of the rows the table shows, top to bottom (scrolled into view or not)."""
    return table.row_keys()


def screen_line(table: FleetTable, row: str) -> str:
    """The line the table paints for `row` (which must be scrolled into view), as text."""
    y = table.get_row_index(row) - round(table.scroll_y) + 1  # the header is line 0
    assert 0 < y < table.size.height, f"{row!r} is not on screen"
    return "".join(segment.text for segment in table.render_line(y))
