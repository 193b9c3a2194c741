"""Alert rules in the engine against a real redis-server frozen with SIGSTOP: a 1 s blip
does not fire a `for = 3s` rule, a 5 s hold fires it once and it clears once; its command and
its webhook (a local HTTP server) get exactly one call; a webhook that never answers delays
neither polls nor the other rule's notifications."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cachetop.collectors.secret import Secret
from cachetop.engine.client import EngineClient
from cachetop.events.rules import AlertRule, parse_condition
from tests.integration.helpers import memcached_target, redis_target
from tests.servers import MemcachedServer, RedisServer
from tests.wait import wait_until

APPEND = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None: ...


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/T000/secret-token"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent() -> Iterator[tuple[str, list[socket.socket]]]:
    """A server that accepts and never answers (the hung webhook)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hang", held
    listener.close()
    for conn in held:
        conn.close()


def test_for_3s_fires_once_per_hold_calls_once_and_a_hung_webhook_delays_nothing(
        redis_server: RedisServer, memcached_server: MemcachedServer, hook: str,
        silent: tuple[str, list[socket.socket]], tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    hung_url, held = silent
    frozen = AlertRule(name="frozen", when=parse_condition('status == "timeout"'), for_s=3.0,
                       targets=("r",), webhook=Secret(hook), timeout_s=10.0,
                       command=(sys.executable, "-c", APPEND, str(calls), "{target} {value}"))
    hung = AlertRule(name="hung-hook", when=parse_condition('status == "timeout"'),
                     targets=("kind:redis",), webhook=Secret(hung_url), timeout_s=120.0)
    client = EngineClient([redis_target(redis_server.port, "r", timeout_s=0.4),
                           memcached_target(memcached_server.port, "m", timeout_s=0.4)], 0.25,
                          alerts=[frozen, hung])
    client.start()
    try:
        def status(name: str) -> str:
            return next(t.status for t in client.snapshot().targets if t.name == name)

        def alerts(rule: str) -> list[str]:
            return [e.kind for e in client.events_since(0) if e.kind.startswith("alert")
                    and (e.text.startswith(rule + ":") or e.text.startswith(rule + " cleared"))]

        wait_until(lambda: status("r") == "up" and status("m") == "up", "both targets up")

        redis_server.freeze()  # the 1 s blip
        wait_until(lambda: status("r") == "timeout", "r timing out")
        time.sleep(max(0.0, 1.0 - 0.4))  # the blip lasts ~1 s in all (0.4 s to time out)
        redis_server.thaw()
        wait_until(lambda: status("r") == "up", "r back up after the blip")
        assert alerts("frozen") == [] and Hook.received == [] and not calls.exists()
        wait_until(lambda: len(held) >= 1, "the hung webhook called (it fires at once)")

        redis_server.freeze()  # the 5 s hold
        held_from = time.monotonic()
        m_updates = set()
        while time.monotonic() - held_from < 5.0:
            m_updates.add(next(t.updated_at for t in client.snapshot().targets
                               if t.name == "m"))
            time.sleep(0.1)
        redis_server.thaw()
        wait_until(lambda: alerts("frozen") == ["alert"], "the rule fired")
        wait_until(lambda: alerts("frozen") == ["alert", "alert-cleared"], "the rule cleared")
        wait_until(lambda: len(Hook.received) >= 1 and calls.exists(), "the notifications")
        # Polls went on while the hung webhook hung (its timeout is 120 s, far beyond the test).
        assert len(m_updates) >= 10
        assert len(Hook.received) == 1
        sent = Hook.received[0]
        assert (sent["rule"], sent["target"], sent["state"], sent["value"]) == (
            "frozen", "r", "firing", "timeout")
        assert calls.read_text() == "r timeout\n"
        texts = " ".join(e.text for e in client.events_since(0))
        assert "secret-token" not in texts and "/hang" not in texts
    finally:
        client.stop()
