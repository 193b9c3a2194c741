"""A redis killed and restarted, a threshold crossed by a workload change, and a flush run
from another process: the events, in order, in `--batch --json` and on the TUI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachetop.config import Thresholds
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.events import EventsScreen
from cachetop.tui.widgets.events_strip import EventsStrip
from tests.events import scenario
from tests.servers import RedisServer
from tests.tui.pilot import config_for, wait_for
from tests.wait import wait_until


class BatchReader:
    """`cachetop --batch --json` in its own process; documents collected as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "cachetop", "--batch", "--json",
                                      "--interval", "0.3", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True,
                                     env=dict(os.environ), stdin=subprocess.DEVNULL)
        self.docs: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[tuple[str, str]] = []
        self.status = ""
        self.hit_ratio: float | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.docs.put(json.loads(line))

    def drain(self) -> None:
        while True:
            try:
                doc = self.docs.get_nowait()
            except queue.Empty:
                return
            self.events += [(e["kind"], e["text"]) for e in doc["events"]]
            assert all(set(e) == {"time", "target", "kind", "text"} for e in doc["events"])
            self.status = doc["targets"][0]["status"]
            self.hit_ratio = doc["targets"][0]["hit_ratio"]

    def has(self, kind: str) -> bool:
        self.drain()
        return any(k == kind for k, _ in self.events)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_json_carries_the_incidents_events_in_order(redis_server: RedisServer,
                                                    tmp_path: Path) -> None:
    reader = BatchReader("--config", str(scenario.thresholds_file(tmp_path)), redis_server.url)
    try:
        def up() -> bool:
            reader.drain()
            return reader.status == "up"

        wait_until(up, "the target up")
        scenario.kill(redis_server)
        wait_until(lambda: reader.has("status"), "a status event")
        scenario.restart(redis_server)
        wait_until(lambda: reader.has("restart"), "a restart event")
        scenario.hits(redis_server)

        def all_hits() -> bool:
            reader.drain()
            return reader.hit_ratio == 1.0

        wait_until(all_hits, "an interval of 100% hits")
        assert not reader.has("threshold")  # 100 % hits crosses nothing
        scenario.misses(redis_server)
        wait_until(lambda: reader.has("threshold"), "a threshold event")
        scenario.flush(redis_server)
        wait_until(lambda: reader.has("action"), "an action event")
        assert scenario.in_order(reader.events), reader.events
    finally:
        reader.stop()


def test_the_tui_shows_the_incidents_events_in_order(redis_server: RedisServer) -> None:
    config = dataclasses.replace(
        config_for(redis_server.url),
        thresholds=Thresholds(p99_ms_above=1e5, evictions_per_s_above=1e6))

    async def run() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            def kinds() -> list[str]:
                return [e.kind for e in app.events]

            async def step(action: Callable[[RedisServer], None], kind: str) -> None:
                await asyncio.to_thread(action, redis_server)
                await wait_for(pilot, lambda: kind in kinds(), timeout_s=30)

            await wait_for(pilot, lambda: app.snapshot is not None and
                           app.snapshot.targets[0].status == "up", timeout_s=30)
            await step(scenario.kill, "status")
            await step(scenario.restart, "restart")
            await asyncio.to_thread(scenario.hits, redis_server)
            await wait_for(pilot, lambda: app.snapshot is not None
                           and app.snapshot.targets[0].hit_ratio == 1.0, timeout_s=30)
            await step(scenario.misses, "threshold")
            await step(scenario.flush, "action")
            await pilot.pause(0.5)
            strip = str(app.fleet_screen.query_one(EventsStrip).render())
            assert "flush pattern 'k*'" in strip and "hit ratio 0.0% below 80%" in strip
            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, EventsScreen))
            table = app.screen.query_one("#events-table")
            rows = [(str(table.get_row_at(i)[2]), str(table.get_row_at(i)[3]))  # type: ignore[attr-defined]
                    for i in range(table.row_count)]  # type: ignore[attr-defined]
            assert scenario.in_order(rows[::-1]), rows  # newest first on screen
            await pilot.press("slash")
            for key in "nobody":
                await pilot.press(key)
            await wait_for(pilot, lambda: table.row_count == 0)  # type: ignore[attr-defined]

    asyncio.run(run())
