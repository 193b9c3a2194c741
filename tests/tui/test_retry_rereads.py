"""Issue 20 item 6: `R` re-reads the config file and the password it names, the engine logs
in with the new password, and the screen says what changed. A real redis-server with
requirepass, driven with the pilot through the engine process."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from cachetop.config import load_config
from cachetop.tui.app import CachetopApp
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.servers import RedisServer
from tests.tui.pilot import cell, wait_for

PASSWORD = "s3cret-Right-pw"


def notices(app: CachetopApp) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


def test_retry_key_rereads_a_fixed_password_file_and_says_so(tmp_path: Path) -> None:
    server = RedisServer("--requirepass", PASSWORD)
    server.start()
    secret = tmp_path / "sessions.pw"
    secret.write_text("wrong-password\n")
    secret.chmod(0o600)
    path = tmp_path / "config.toml"
    path.write_text(f'interval = 0.3\n[[targets]]\nname = "sessions"\n'
                    f'url = "redis://127.0.0.1:{server.port}"\npassword_file = "{secret}"\n'
                    f'timeout = 1.0\n')
    path.chmod(0o600)
    config = load_config(path, {})

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: "sessions" in table.rows
                           and "auth-failed" in cell(table, "sessions", "status"), timeout_s=20)
            secret.write_text(PASSWORD + "\n")   # the operator fixes the file...
            await pilot.press("R")               # ...and presses R, as the README says
            await wait_for(pilot, lambda: cell(table, "sessions", "status") == "● up",
                           timeout_s=10)          # well before the 30 s auth-failed retry
            said = notices(app)
            assert "new credentials for sessions" in said
            assert PASSWORD not in said
            assert app.config.targets[0].password is not None
            assert app.config.targets[0].password.reveal() == PASSWORD  # actions use it too

            path.write_text(path.read_text().replace("timeout = 1.0", "timeout = [1]"))
            await pilot.press("R")               # a broken file: said, nothing changes
            await wait_for(pilot, lambda: "config not re-read" in notices(app))
            assert cell(table, "sessions", "status") == "● up"
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        server.close()


def test_retry_key_without_a_change_says_so(tmp_path: Path) -> None:
    server = RedisServer()
    server.start()
    path = tmp_path / "config.toml"
    path.write_text(f'[[targets]]\nname = "plain"\nurl = "redis://127.0.0.1:{server.port}"\n')
    config = dataclasses.replace(load_config(path, {}), interval_s=0.3)

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: "plain" in table.rows
                           and cell(table, "plain", "status") == "● up")
            await pilot.press("R")
            await wait_for(pilot, lambda: "re-read: no change" in notices(app))
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        server.close()
