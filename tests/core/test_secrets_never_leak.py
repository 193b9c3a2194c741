"""Passwords, from every source cachetop reads them, never leave the process except to their own
server: not in the JSON, the table, the batch lines, error lines, logs at DEBUG, the audit log,
the TUI screen, any repr; and they are never sent to an address nobody configured.

One redis-server holds an ACL user per password source, so each secret is really used (the
targets come up) and each wrong one really fails (WRONGPASS), and then no output holds either.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import html
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from cachetop.actions import ActionError, execute, plan_flush
from cachetop.actions.connect import redis_client
from cachetop.collectors.base import CollectError, Deadline, Target
from cachetop.collectors.poller import poll_all
from cachetop.collectors.registry import make_collector, make_collectors
from cachetop.collectors.secret import Secret
from cachetop.config import load_config
from cachetop.discovery import process_listeners, targets_from_listeners
from cachetop.monitor import Monitor
from cachetop.report import render_table
from cachetop.snapshot_json import snapshot_document
from cachetop.target_url import parse_target_url
from tests.servers import RedisServer

# One secret per source; "/" and "@" make the URL one percent-encoded, so both forms are checked.
URL_PW = "Url/Pw@7f3a-q"
CFG_PW = "Cfg-Pw-5e0b-q"
ENV_PW = "Env-Pw-19c2-q"
FILE_PW = "File-Pw-88d1-q"
WRONG_URL_PW = "Wrong-Url-3c4d"
WRONG_ENV_PW = "Wrong-Env-6a0e"
SECRETS = (URL_PW, CFG_PW, ENV_PW, FILE_PW, WRONG_URL_PW, WRONG_ENV_PW)
ENV = {"CT_LEAK_PW": ENV_PW, "CT_LEAK_WRONG_PW": WRONG_ENV_PW}


def leaks(text: str) -> list[str]:
    """The secrets found in `text`, raw, percent-encoded, or inside a basic-auth token."""
    found = []
    for secret in SECRETS:
        forms = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
        if any(form in text for form in forms):
            found.append(secret)
    return found


@dataclass
class Fleet:
    """A redis-server with one ACL user per password source, and a 0600 config file."""

    server: RedisServer
    config: Path
    good_url: str
    wrong_url: str

    @property
    def port(self) -> int:
        return int(self.server.port)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    server = RedisServer(acl=[
        "user default on nopass ~* &* +@all",
        f"user u_url on >{URL_PW} ~* &* +@all",
        f"user u_cfg on >{CFG_PW} ~* &* +@all",
        f"user u_env on >{ENV_PW} ~* &* +@all",
        f"user u_file on >{FILE_PW} ~* &* +@all",
    ])
    server.start()
    host = f"127.0.0.1:{server.port}"
    (tmp_path / "pw.txt").write_text(FILE_PW + "\n")
    (tmp_path / "pw.txt").chmod(0o600)
    config = tmp_path / "cachetop.toml"
    config.write_text(
        "interval = 0.3\n"
        f'[[targets]]\nname = "cfg"\nurl = "redis://u_cfg:{CFG_PW}@{host}"\n'
        f'[[targets]]\nname = "env"\nurl = "redis://u_env@{host}"\npassword_env = "CT_LEAK_PW"\n'
        f'[[targets]]\nname = "file"\nurl = "redis://u_file@{host}"\npassword_file = "pw.txt"\n'
        f'[[targets]]\nname = "env-wrong"\nurl = "redis://u_env@{host}"\n'
        'password_env = "CT_LEAK_WRONG_PW"\n')
    config.chmod(0o600)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    server.client().mset({f"k:{i}": "v" for i in range(20)})
    yield Fleet(server, config, f"redis://u_url:{quote(URL_PW, safe='')}@{host}",
                f"redis://u_url:{WRONG_URL_PW}@{host}/1")
    server.close()


def run_cachetop(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    env.update(ENV, XDG_CONFIG_HOME="/nonexistent-cachetop-test", XDG_STATE_HOME=str(tmp))
    return subprocess.run([sys.executable, "-m", "cachetop", *args], capture_output=True,
                          text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


EXPECTED_STATUS = {"cfg": "up", "env": "up", "file": "up", "env-wrong": "auth-failed"}


def statuses(doc: dict[str, object]) -> dict[str, str]:
    targets = doc["targets"]
    assert isinstance(targets, list)
    return {t["name"]: t["status"] for t in targets}


# -- the headless CLI ---------------------------------------------------------------------------


def test_once_json_debug_log_and_stderr_hold_no_secret(fleet: Fleet, tmp_path: Path) -> None:
    log = tmp_path / "debug.log"
    out = run_cachetop("--once", "--json", "-v", "--log", str(log), "--config",
                       str(fleet.config), fleet.good_url, fleet.wrong_url, tmp=tmp_path)
    assert out.returncode == 1, out.stderr  # two targets are auth-failed: 1, some not up
    doc = json.loads(out.stdout)
    got = statuses(doc)
    # The secrets were really used: each good one logged in, each wrong one was refused.
    assert [got[n] for n in EXPECTED_STATUS] == list(EXPECTED_STATUS.values())
    assert sorted(got.values()).count("auth-failed") == 2
    wrong = [t for t in doc["targets"] if t["status"] == "auth-failed"]
    assert all("invalid username-password" in t["error"] for t in wrong)  # Redis's WRONGPASS
    assert leaks(out.stdout) == [] and leaks(out.stderr) == []
    assert leaks(log.read_text()) == []


def test_batch_json_and_table_hold_no_secret(fleet: Fleet, tmp_path: Path) -> None:
    batch = run_cachetop("--batch", "--count", "2", "--json", "-v", "--config",
                         str(fleet.config), fleet.good_url, fleet.wrong_url, tmp=tmp_path)
    assert batch.returncode == 1, batch.stderr  # auth-failed targets: some not up
    lines = batch.stdout.strip().splitlines()
    assert len(lines) == 2 and statuses(json.loads(lines[-1]))["env"] == "up"
    table = run_cachetop("--once", "--config", str(fleet.config), fleet.good_url,
                         fleet.wrong_url, tmp=tmp_path)
    assert table.returncode == 1 and "auth-failed" in table.stdout
    for text in (batch.stdout, batch.stderr, table.stdout, table.stderr):
        assert leaks(text) == []


def test_actions_cli_output_and_audit_log_hold_no_secret(fleet: Fleet, tmp_path: Path) -> None:
    state = tmp_path / "state"
    runs = [
        run_cachetop("flush", "env", "--pattern", "k:1*", "--yes", "--config",
                     str(fleet.config), tmp=state),
        run_cachetop("flush", "file", "--pattern", "k:2*", "--yes", "--config",
                     str(fleet.config), tmp=state),
        run_cachetop("flush", fleet.good_url, "--pattern", "k:3*", "--yes", tmp=state),
        run_cachetop("flush", "env-wrong", "--pattern", "k:*", "--yes", "--config",
                     str(fleet.config), tmp=state),
        run_cachetop("flush", fleet.wrong_url, "--pattern", "k:*", "--yes", tmp=state),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, 1, 1], [r.stderr for r in runs]
    assert all("invalid username-password" in r.stderr + r.stdout for r in runs[3:])
    assert fleet.server.client().dbsize() == 20 - 11 - 1 - 1  # k:1, k:1x; k:2; k:3
    audit = (state / "cachetop" / "audit.log").read_text()
    assert len(audit.splitlines()) >= 3
    for r in runs:
        assert leaks(r.stdout) == [] and leaks(r.stderr) == []
    assert leaks(audit) == []


# -- in process: logs at DEBUG, reprs, errors ---------------------------------------------------


def test_logs_reprs_and_errors_hold_no_secret(fleet: Fleet,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = load_config(fleet.config, dict(os.environ))
    url_targets = [parse_target_url(fleet.good_url, name="url"),
                   parse_target_url(fleet.wrong_url, name="url-wrong")]
    targets = [*config.targets, *url_targets]
    texts = [repr(config), str(config), repr(config.options), *map(repr, targets),
             *(str(t.password) for t in targets), *(f"{t.password}" for t in targets)]
    collectors = make_collectors(targets)
    monitor = Monitor(collectors, 0.3)
    for _ in range(2):
        for result in poll_all(collectors, 0.3):
            monitor.apply(result)
    for collector in collectors:
        collector.close()
    snap = monitor.snapshot()
    assert [t.status for t in snap.targets] == [*EXPECTED_STATUS.values(), "up", "auth-failed"]
    texts += [repr(snap), json.dumps(snapshot_document(snap)), render_table(snap)]
    env_target = next(t for t in targets if t.name == "env")
    plan = plan_flush(env_target, b"k:1*")
    result = execute(plan)
    assert result.deleted == 11
    texts += [repr(plan), repr(result), result.summary]
    # A bug inside a run, with the password in the frames' locals: logged with its traceback.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cachetop.actions.redis_flush.Pacer", _broken_pacer)
        every = plan_flush(env_target, b"k:*")  # the whole db: its name is typed
        crashed = execute(every, confirmation=every.confirm_name)
    assert crashed.status == "failed" and "internal error" in crashed.errors[0]
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.ERROR)
    texts += [repr(crashed)]
    for wrong in (next(t for t in targets if t.name == "env-wrong"), url_targets[1]):
        with pytest.raises(ActionError) as refused:
            plan_flush(wrong, b"k:*")
        assert "invalid username-password" in str(refused.value)
        texts.append(str(refused.value))
        with pytest.raises(CollectError) as failed:
            make_collector(wrong).collect(Deadline(1.0))
        texts += [str(failed.value), repr(failed.value)]
    texts += [caplog.text, *(r.getMessage() for r in caplog.records)]
    texts.append(Path(os.environ["XDG_STATE_HOME"], "cachetop", "audit.log").read_text())
    for text in texts:
        assert leaks(text) == [], text[:300]


def _broken_pacer(*args: object) -> None:
    raise RuntimeError("a bug in the pacer")


# -- the TUI ------------------------------------------------------------------------------------


def screen_text(svg: str) -> str:
    """The characters an SVG screenshot shows, in order (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def test_tui_screens_hold_no_secret(fleet: Fleet) -> None:
    from cachetop.tui.app import CachetopApp
    from cachetop.tui.screens.action import ActionScreen
    from cachetop.tui.screens.instance import InstanceScreen
    from cachetop.tui.widgets.fleet_table import FleetTable
    from tests.tui.pilot import cell, wait_for

    config = load_config(fleet.config, dict(os.environ))
    config = dataclasses.replace(config, targets=(
        *config.targets, parse_target_url(fleet.good_url, name="url", timeout_s=0.3)))
    shots: list[str] = []

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(160, 40)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: all(
                n in table.rows and cell(table, n, "status") != "" for n in
                ("env", "env-wrong", "url")) and "auth" in cell(table, "env-wrong", "status")
                and "up" in cell(table, "env", "status"))
            shots.append(app.export_screenshot())
            for name in ("env-wrong", "env"):
                table.move_cursor(row=table.get_row_index(name))
                await pilot.press("enter")
                await wait_for(pilot, lambda: isinstance(app.screen, InstanceScreen))
                await pilot.pause(0.3)
                shots.append(app.export_screenshot())
                await pilot.press("escape")
                await wait_for(pilot, lambda: not isinstance(app.screen, InstanceScreen))
            for name, expected in (("env-wrong", "invalid username-password"),
                                   ("url", "keys: 20")):  # the flush modal's preview
                table.move_cursor(row=table.get_row_index(name))
                await pilot.press("f")
                await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen))
                for ch in "k:*":
                    await pilot.press(ch if ch != "*" else "asterisk")
                await pilot.press("enter")
                await wait_for(pilot, lambda e=expected: any(  # type: ignore[misc]
                    e in str(app.screen.query_one(w).render())
                    for w in ("#action-preview", "#action-status")))
                shots.append(app.export_screenshot())
                await pilot.press("escape")
                await wait_for(pilot, lambda: not isinstance(app.screen, ActionScreen))

    asyncio.run(scenario())
    texts = [screen_text(s) for s in shots]
    assert "env-wrong" in texts[0] and "auth-failed" in texts[0]  # the text extraction works
    assert "invalid username-password" in texts[1]  # the wrong one's instance screen, its error
    for text in texts:
        assert leaks(text) == []


# -- credentials go only where they were configured ---------------------------------------------


def test_discovered_targets_carry_no_credentials(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "redis.sock"
    server = RedisServer("--unixsocket", str(sock), "--requirepass", ENV_PW)
    server.start()
    monkeypatch.setenv("REDISCLI_AUTH", ENV_PW)
    monkeypatch.setenv("CACHETOP_PASSWORD", ENV_PW)
    try:
        ours = [li for li in process_listeners() if li.pid == server.pid]
        targets = targets_from_listeners(ours)
    finally:
        server.close()
    assert {t.address for t in targets} >= {f"127.0.0.1:{server.port}", f"unix:{sock}"}
    assert all(t.username is None and t.password is None for t in targets)
    assert leaks(repr(targets)) == []


class _Recorder(BaseHTTPRequestHandler):
    """Serves routes given by the server; records every request's path and Authorization."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        srv.seen.append((self.path, self.headers.get("Authorization")))  # type: ignore[attr-defined]
        status, headers, body = srv.reply  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _http_server(status: int, headers: dict[str, str], body: bytes) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    server.reply = (status, headers, body)  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_metrics_redirect_to_another_host_is_not_followed(
        status: int, monkeypatch: pytest.MonkeyPatch) -> None:
    other = _http_server(200, {"Content-Type": "text/plain"},
                         b"# TYPE cache_hits_total counter\ncache_hits_total{cache=\"a\"} 1\n")
    other_url = f"http://localhost:{other.server_address[1]}/metrics"
    # A proxy from the environment is an address nobody configured for this target either.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{other.server_address[1]}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    first = _http_server(status, {"Location": other_url}, b"")
    try:
        target = parse_target_url(f"http://mon:{quote(URL_PW, safe='')}@127.0.0.1:"
                                  f"{first.server_address[1]}/metrics", name="app")
        error = _collect_error(target)
    finally:
        first.shutdown()
        other.shutdown()
    assert first.seen[0][1] == "Basic " + base64.b64encode(f"mon:{URL_PW}".encode()).decode()
    assert other.seen == []  # the other host (or proxy) got no request, so no Authorization
    assert error is not None and error.status == "down"
    assert "redirects are not followed" in error.message
    assert leaks(str(error)) == []


def _collect_error(target: Target) -> CollectError | None:
    try:
        make_collector(target).collect(Deadline(2.0))
    except CollectError as exc:
        return exc
    return None


def test_unix_socket_that_is_not_redis_gets_no_auth(tmp_path: Path) -> None:
    path = tmp_path / "not-redis.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)
    received = bytearray()

    def serve() -> None:  # an HTTP-ish daemon like docker.sock: answers garbage, records all
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(1.0)
            try:
                while chunk := conn.recv(4096):
                    received.extend(chunk)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    target = parse_target_url(f"unix://{path}", name="sock", username="app",
                              password=Secret(ENV_PW), timeout_s=0.5)
    try:
        with pytest.raises(CollectError):
            make_collector(target).collect(Deadline(0.5))
    finally:
        listener.close()
        thread.join(2)
    assert ENV_PW.encode() not in bytes(received)


def test_unix_socket_redis_with_a_password_still_polls(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    server = RedisServer("--unixsocket", str(path), "--requirepass", ENV_PW)
    server.start()
    try:
        target = parse_target_url(f"unix://{path}", name="sock", password=Secret(ENV_PW))
        collector = make_collector(target)
        sample = collector.collect(Deadline(2.0))
        collector.close()
        assert sample.gauges["keys"] == 0.0
        with redis_client(target) as client:  # the actions' connection passes the check too
            assert client.ping() is True
    finally:
        server.close()
