"""Text from the wire (cache labels) is shown literally in the fleet table, never interpreted."""

from __future__ import annotations

import asyncio

from cachetop.tui.app import CachetopApp
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.integration.test_endpoint_figures import Endpoint
from tests.tui.pilot import config_for, row_order, wait_for

HOSTILE = "[@click=app.quit]x[/] \x1b[31mred\u202e"


def test_markup_and_escapes_in_a_cache_label_are_shown_literally() -> None:
    endpoint = Endpoint()
    label = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')
    endpoint.text = ("# TYPE cache_hits_total counter\n"
                     f'cache_hits_total{{cache="{label}"}} 5\n'
                     "# TYPE cache_misses_total counter\n"
                     f'cache_misses_total{{cache="{label}"}} 5\n')
    config = config_for(f"http://127.0.0.1:{endpoint.port}/metrics", names=["app"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: len(row_order(table)) == 2)
            child = row_order(table)[1]
            shown = table.get_cell(child, "name").plain
            assert "[@click=app.quit]x[/]" in shown         # markup shown, not parsed
            assert "\x1b" not in shown                       # ESC never reaches the terminal
            assert "\\x1b[31mred" in shown                   # ...it is shown escaped
            assert "\u202e" not in shown and "\\u202e" in shown
            table.move_cursor(row=1)
            await pilot.click(FleetTable, offset=(3, 2))     # clicking it runs nothing
            await pilot.pause(0.2)
            assert app.is_running
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        endpoint.close()
