"""`cachetop --connect`: the fronts over a real agent's stream; tokens refused before any data;
actions refused; no credential in the stream."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import Static

from cachetop.agent.remote import RemoteClient
from cachetop.config import load_config
from cachetop.engine.protocol import FrameReader, frame
from cachetop.tui.app import REMOTE_READ_ONLY, CachetopApp
from cachetop.tui.screens.action import ActionScreen
from cachetop.tui.screens.instance import InstanceScreen
from cachetop.tui.widgets.fleet_table import FleetTable
from cachetop.tui.widgets.instance_keys import KeysPane
from tests.agent.helpers import (
    PASSWORD,
    ROOT,
    AgentProcess,
    agent_of_a_password_redis,
    by_target,
    credential_forms,
    redis_workload,
    write_config,
)
from tests.agent.test_metrics import metrics_after
from tests.servers import MemcachedServer, RedisServer
from tests.tui.pilot import cell, row_order, wait_for
from tests.wait import wait_until

TOKEN = "agent-token-0123456789abcdef"


def connect_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachetop", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def raw_stream(port: int, token: str | None, seconds: float,
               send: list[dict[str, object]] | None = None) -> bytes:
    """Everything the agent sends on /stream for `seconds` (or until it closes), read with a
    plain socket: the test's own reading of the upgrade."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    sock.sendall(f"GET /stream HTTP/1.1\r\nHost: x\r\nUpgrade: cachetop-stream\r\n"
                 f"Connection: Upgrade\r\n{auth}\r\n".encode())
    got = b""
    sent = False
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            chunk = None
        if chunk == b"":
            break
        got += chunk or b""
        if not sent and b"\r\n\r\n" in got and send:
            for message in send:
                sock.sendall(frame(message))
            sent = True
    sock.close()
    return got


def frames_of(raw: bytes) -> list[dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return list(FrameReader("json").feed(body))


def test_once_json_shows_the_agents_fleet_with_a_known_hit_ratio(
        redis_server: RedisServer, memcached_server: MemcachedServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", [("sessions", redis_server.url),
                                                ("pages", memcached_server.url)], 0.5)
    agent = AgentProcess("--config", str(config)).wait_ready()
    try:
        metrics_after(agent, "cachetop_keys", targets=2)
        redis_workload(redis_server, hits=800, misses=200)
        # The stream starts from the agent's latest figures: wait for a poll after the workload
        # (a poll just before it left 0 hits there, and the lifetime ratio None).
        wait_until(lambda: by_target(metrics_after(agent, "cachetop_keys", targets=2),
                                     "cachetop_hits_total").get("sessions") == 800.0,
                   "the workload's hits in the agent's figures")
        done = connect_cli("--connect", f"127.0.0.1:{agent.port}", "--once", "--json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        by_name = {t["name"]: t for t in doc["targets"]}
        assert set(by_name) == {"sessions", "pages"}
        assert by_name["sessions"]["status"] == "up"
        assert by_name["sessions"]["lifetime_hit_ratio"] == 0.8  # 800 / (800 + 200)
        assert by_name["pages"]["kind"] == "memcached"
        assert by_name["pages"]["memory_max_bytes"] == 64 * 1024 * 1024
    finally:
        agent.stop()


def test_a_wrong_or_missing_token_is_refused_before_any_data(redis_server: RedisServer,
                                                             tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    agent = AgentProcess("--config", str(write_config(
        tmp_path / "c.toml", [("sessions", redis_server.url)])), "--token-file",
        str(token_file)).wait_ready()
    try:
        for token in (None, "wrong-token-0123456789abcdef"):
            raw = raw_stream(agent.port, token, 2.0)
            assert raw.startswith(b"HTTP/1.1 401"), raw[:100]
            assert b"sessions" not in raw and str(redis_server.port).encode() not in raw
        wrong = tmp_path / "wrong"
        wrong.write_text("wrong-token-0123456789abcdef")
        done = connect_cli("--connect", f"127.0.0.1:{agent.port}", "--once",
                           "--bearer-token-file", str(wrong))
        assert (done.returncode, done.stdout) == (1, "")
        assert "refused the token" in done.stderr and "Traceback" not in done.stderr
        done = connect_cli("--connect", f"127.0.0.1:{agent.port}", "--once")
        assert (done.returncode, done.stdout) == (1, "")
        assert "needs a token" in done.stderr
        done = connect_cli("--connect", f"127.0.0.1:{agent.port}", "--once", "--json",
                           "--bearer-token-file", str(token_file))
        assert done.returncode == 0, done.stderr
        assert [t["name"] for t in json.loads(done.stdout)["targets"]] == ["sessions"]
    finally:
        agent.stop()


def test_no_credential_in_the_stream() -> None:
    with agent_of_a_password_redis() as (agent, server):
        metrics_after(agent, "cachetop_keys")
        name = f"127.0.0.1:{server.port}"
        raw = raw_stream(agent.port, None, 4.0, send=[{"t": "watch", "name": name, "on": True}])
        kinds = {m["t"] for m in frames_of(raw)}
        assert {"hello", "snap", "detail", "hist"} <= kinds  # it did send everything
        for form in credential_forms(PASSWORD):
            assert form.encode() not in raw


def test_actions_are_refused_by_an_agent_without_allow_actions(
        redis_server: RedisServer) -> None:
    agent = AgentProcess(redis_server.url, "--interval", "0.3").wait_ready()
    try:
        raw = raw_stream(agent.port, None, 2.0, send=[
            {"t": "action", "kind": "flushdb", "target": f"127.0.0.1:{redis_server.port}"}])
        refused = [m for m in frames_of(raw) if m["t"] == "refused"]
        assert refused and "without --allow-actions" in str(refused[0]["reason"])
    finally:
        agent.stop()


def test_the_tui_shows_the_agents_fleet_and_refuses_a_flush(redis_server: RedisServer,
                                                            tmp_path: Path) -> None:
    client = redis_server.client()
    client.mset({f"user:{i}": "v" for i in range(100)})
    config = write_config(tmp_path / "c.toml", [("sessions", redis_server.url)], 0.3)
    agent = AgentProcess("--config", str(config)).wait_ready()
    try:
        source = RemoteClient(f"127.0.0.1:{agent.port}")
        source.connect()

        async def scenario() -> None:
            import dataclasses

            app = CachetopApp(dataclasses.replace(load_config(None, {}), read_only=True),
                              source)
            async with app.run_test(size=(140, 45)) as pilot:
                table = app.fleet_screen.query_one(FleetTable)
                await wait_for(pilot, lambda: "sessions" in row_order(table), timeout_s=30)
                await wait_for(pilot, lambda: cell(table, "sessions", "status") == "● up",
                               timeout_s=30)
                await pilot.press("F")
                await wait_for(pilot, lambda: any(
                    n.message == REMOTE_READ_ONLY for n in app._notifications))
                assert not isinstance(app.screen, ActionScreen)
                await pilot.press("enter")                          # the instance screen
                await wait_for(pilot, lambda: isinstance(app.screen, InstanceScreen))
                await pilot.press("k")                              # its Keys tab
                await wait_for(pilot, lambda: "needs a direct connection" in str(
                    app.screen.query_one(KeysPane).query_one(".pane-note", Static).render()))
                await pilot.press("q")

        asyncio.run(scenario())
        assert client.dbsize() == 100
        target = source.target("sessions")
        assert target is not None and target.read_only
    finally:
        agent.stop()
