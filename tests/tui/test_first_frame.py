"""The dashboard's first frame waits for no config (issue 11): it is drawn, saying it reads
the config, before the loader is called; the rows come in the next frame; a bad config read
after it still ends the command with one line and exit status 2."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import sys
import threading
from pathlib import Path

from textual.widgets import Footer, Static

from cachetop.config import Config
from cachetop.errors import ConfigError
from cachetop.tui.app import CachetopApp
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.demo.terminal import PtyProgram
from tests.servers import free_port
from tests.tui.pilot import cell, config_for, row_order, wait_for

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")


def _line(table: FleetTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


def test_the_first_frame_is_drawn_before_the_config_is_read() -> None:
    """The loader is held until the test has read the screen: the frame is up, says it is
    reading the config, no source exists yet, and the app answers meanwhile (the loader
    runs off the UI thread: discovery connects to loopback ports)."""
    config = config_for(*(f"redis://127.0.0.1:{free_port()}" for _ in range(2)),
                        names=["x", "y"])
    called, release = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def loader() -> Config:
        called.set()
        assert release.wait(10), "the test never let the config be read"
        return config

    app = CachetopApp(loader)

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = app.fleet_screen
            table = screen.query_one(FleetTable)
            await wait_for(pilot, called.is_set)
            await pilot.pause(0.2)  # the UI loop turns while the loader waits
            seen["header"] = _line(table, 0)
            seen["first line"] = _line(table, 1)
            seen["figures"] = str(screen.query_one("#fleet-figures", Static).render())
            seen["source made"] = hasattr(app, "source")
            release.set()
            await wait_for(pilot, lambda: row_order(table) == ["x", "y"])
            await wait_for(pilot, lambda: cell(table, "x", "status") == "✖ down")
            # The keys' footer comes after the rows, with its keys.
            await wait_for(pilot, lambda: any(f.children for f in app.screen.query(Footer)))
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        release.set()
    assert str(seen["header"]).startswith("NAME")
    assert "reading the config…" in str(seen["first line"])
    assert "reading the config…" in str(seen["figures"])
    assert seen["source made"] is False
    assert app.config_error is None


def test_a_config_error_after_the_first_frame_ends_the_app_and_is_kept() -> None:
    def loader() -> Config:
        raise ConfigError("targets[0].url: unsupported scheme 'gopher'", where="fleet.toml")

    app = CachetopApp(loader)

    async def scenario() -> None:
        async with app.run_test(size=(100, 24)) as pilot:
            await pilot.pause(2.0)  # the app exits by itself; this only bounds the wait

    asyncio.run(scenario())
    assert isinstance(app.config_error, ConfigError)
    assert app.return_code == 2


def test_the_config_warnings_are_shown_in_the_app() -> None:
    config = config_for(f"redis://127.0.0.1:{free_port()}", names=["x"])
    config = dataclasses.replace(config, warnings=("fleet.toml: readable by other users",))
    app = CachetopApp(lambda: config)

    async def scenario() -> None:
        async with app.run_test(size=(120, 30), notifications=True) as pilot:
            await wait_for(pilot, lambda: any(
                "readable by other users" in str(toast.render())
                for toast in app.screen.query("Toast")))
            await pilot.press("q")

    asyncio.run(scenario())


def test_a_bad_config_file_gives_one_line_and_exit_2_from_the_dashboard(tmp_path: Path) -> None:
    secret = "Sw0rdfish-9x"
    config = tmp_path / "fleet.toml"
    config.write_text(f"[[targets]]\nurl = 'redis://u:{secret}@127.0.0.1:1'\ntimeout = '1s'\n")
    config.chmod(0o600)
    program = PtyProgram([sys.executable, "-m", "cachetop", "--config", str(config)],
                         {**os.environ, "TERM": "xterm-256color"}, rows=30, cols=100)
    try:
        code = program.proc.wait(timeout=30)
    finally:
        program.close()
    screen = _ESCAPES.sub("", program.written())
    assert code == 2, screen
    lines = [line.strip() for line in screen.splitlines() if line.strip()]
    assert lines[-1].startswith("cachetop: ") and "targets[0].timeout" in lines[-1], lines[-3:]
    assert "Traceback" not in screen
    assert secret not in screen and secret[:5] not in screen
