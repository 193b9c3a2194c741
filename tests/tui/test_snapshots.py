"""SVG snapshots of the main screens, from scripted figures (fixed size, fixed clock).

`UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py` rewrites them after a deliberate change;
a snapshot taken with another Textual version is not compared (rendering differs by version).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest
import textual

from cachetop.config import load_config
from cachetop.demo.scripted import ScriptedMonitor
from cachetop.tui.app import CachetopApp

SNAPSHOTS = Path(__file__).parent / "snapshots"
VERSION_FILE = SNAPSHOTS / "TEXTUAL_VERSION"


async def _render(keys: list[str], size: tuple[int, int], instance: str | None = None) -> str:
    config = dataclasses.replace(load_config(None, {}), targets=())
    app = CachetopApp(config, source=ScriptedMonitor())  # type: ignore[arg-type]
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.3)
        if instance is not None:
            app.open_instance(instance)
            await pilot.pause(1.2)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        return app.export_screenshot()


@pytest.mark.parametrize(
    ("name", "keys", "size", "instance"),
    [
        ("fleet", [], (140, 40), None),
        ("fleet_80x24", [], (80, 24), None),
        ("fleet_grouped", ["g"], (140, 40), None),
        ("help", ["question_mark"], (120, 40), None),
    ],
)
def test_snapshot(name: str, keys: list[str], size: tuple[int, int],
                  instance: str | None) -> None:
    svg = asyncio.run(_render(keys, size, instance))
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg)
        VERSION_FILE.write_text(textual.__version__ + "\n")
    if VERSION_FILE.read_text().strip() != textual.__version__:
        pytest.skip(f"snapshots were taken with Textual {VERSION_FILE.read_text().strip()}")
    assert svg == path.read_text(), f"{name} changed; look at it, then UPDATE_SNAPSHOTS=1"
