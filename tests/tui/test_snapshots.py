"""SVG snapshots of the main screens, from scripted figures (fixed size, fixed clock).

`UPDATE_SNAPSHOTS=1 pytest tests/tui/test_snapshots.py` rewrites them after a deliberate change
(and skips: a rewritten snapshot checks nothing); CI refuses to. Rendering differs by Textual
version, so the dev extra pins Textual to the version the snapshots were taken with; another
version skips on a developer's machine and fails under CI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import tomllib
from pathlib import Path

import pytest
import textual

from cachetop.config import load_config
from cachetop.demo.scripted import ScriptedMonitor
from cachetop.tui.app import CachetopApp
from tests.ci import missing, on_ci

SNAPSHOTS = Path(__file__).parent / "snapshots"
VERSION_FILE = SNAPSHOTS / "TEXTUAL_VERSION"
PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def _updating() -> bool:
    return os.environ.get("UPDATE_SNAPSHOTS", "").strip().lower() in ("1", "true")


async def _render(keys: list[str], size: tuple[int, int], instance: str | None = None) -> str:
    config = dataclasses.replace(load_config(None, {}), targets=())
    app = CachetopApp(config, source=ScriptedMonitor())  # type: ignore[arg-type]
    async with app.run_test(size=size) as pilot:
        # The header grows to a line per layer after the first snapshot: give the layout
        # and the footer's redraw time to settle (0.3 s sometimes caught it half way).
        await pilot.pause(1.0)
        if instance is not None:
            app.open_instance(instance)
            await pilot.pause(1.2)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        await _footer_drawn(app, pilot)
        return app.export_screenshot()


async def _footer_drawn(app: CachetopApp, pilot: object) -> None:
    """The footer composes its keys asynchronously: on a loaded machine a fixed pause may
    take the picture before they are drawn (a flaky snapshot), so wait for them."""
    from textual.widgets import Footer

    for _ in range(50):
        footers = list(app.screen.query(Footer))
        if not footers or list(footers[0].children):
            break
        await pilot.pause(0.1)  # type: ignore[attr-defined]
    await pilot.pause(0.1)  # type: ignore[attr-defined]


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
    if _updating() and on_ci():
        pytest.fail("UPDATE_SNAPSHOTS under CI: snapshots are updated by hand, then committed")
    svg = asyncio.run(_render(keys, size, instance))
    path = SNAPSHOTS / f"{name}.svg"
    if _updating():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg)
        VERSION_FILE.write_text(textual.__version__ + "\n")
        pytest.skip(f"{name} rewritten: look at it before committing")
    taken_with = VERSION_FILE.read_text().strip()
    if taken_with != textual.__version__:
        missing(f"snapshots were taken with Textual {taken_with}, this is "
                f"{textual.__version__}: `make setup` installs the pinned one")
    assert svg == path.read_text(), f"{name} changed; look at it, then UPDATE_SNAPSHOTS=1"


def test_dev_extra_pins_the_textual_the_snapshots_were_taken_with() -> None:
    dev = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["dev"]
    pins = [m.group(1) for d in dev if (m := re.fullmatch(r"textual==(\S+)", d))]
    assert pins == [VERSION_FILE.read_text().strip()]
