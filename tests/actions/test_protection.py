"""Protections belong to the instance: `env = "prod"` and `read_only` of every config target
covering a host, port and db apply however an action names it (its name, a URL in any
spelling, another target's name with --db); read-only is sticky."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cachetop.actions import Guard, execute, plan_flush
from cachetop.actions.protection import LOCAL, resolve_host
from cachetop.target_url import parse_target_url
from tests.actions.helpers import cli_env, fill
from tests.servers import RedisServer


def cachetop(*args: str, state: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachetop", *args], capture_output=True,
                          text=True, timeout=60, env=cli_env(state, **(env or {})),
                          stdin=subprocess.DEVNULL)


def _config(tmp_path: Path, port: int, *, top: str = "") -> str:
    path = tmp_path / "c.toml"
    path.write_text(f"""{top}
[[targets]]
name = "scratch"
url = "redis://127.0.0.1:{port}/0"

[[targets]]
name = "sessions"
url = "redis://127.0.0.1:{port}/5"
env = "prod"

[[targets]]
name = "locked"
url = "redis://127.0.0.1:{port}/6"
read_only = true
""")
    return str(path)


@pytest.fixture
def dbs(redis_server: RedisServer) -> dict[int, Any]:
    clients = {db: redis_server.client(db=db) for db in (0, 5, 6)}
    for client in clients.values():
        fill(client, [b"tmp:%d" % i for i in range(10)] + [b"keep:%d" % i for i in range(10)])
    return clients


def _intact(dbs: dict[int, Any]) -> bool:
    return all(client.dbsize() == 20 for client in dbs.values())


def test_prod_db_by_url_in_any_spelling_needs_the_prod_name(
        redis_server: RedisServer, dbs: dict[int, Any], tmp_path: Path,
        state_home: Path) -> None:
    config = _config(tmp_path, redis_server.port)
    for url in (f"redis://127.0.0.1:{redis_server.port}/5",
                f"redis://localhost:{redis_server.port}/5",
                f"redis://127.0.0.1:{redis_server.port}?db=5",
                f"redis://127.0.0.1:{redis_server.port}/0"):  # --db 5 below
        extra = ["--db", "5"] if url.endswith("/0") else []
        out = cachetop("flush", url, "--config", config, "--pattern", "tmp:*", "--yes", *extra,
                       state=state_home)
        assert out.returncode == 2, (url, out.stdout, out.stderr)
        assert "sessions is a prod target covering this instance" in out.stdout
        assert "--confirm sessions" in out.stdout
        assert _intact(dbs)
    wrong = cachetop("flush", f"redis://127.0.0.1:{redis_server.port}/5", "--config", config,
                     "--pattern", "tmp:*", "--confirm", f"127.0.0.1:{redis_server.port}/5",
                     state=state_home)
    assert wrong.returncode == 2 and _intact(dbs)
    ok = cachetop("flush", f"redis://127.0.0.1:{redis_server.port}/5", "--config", config,
                  "--pattern", "tmp:*", "--confirm", "sessions", state=state_home)
    assert ok.returncode == 0, ok.stderr
    assert dbs[5].dbsize() == 10 and dbs[0].dbsize() == dbs[6].dbsize() == 20
    record = json.loads((state_home / "cachetop" / "audit.log").read_text().splitlines()[-1])
    assert record["db"] == 5 and record["protection"] == ["prod: sessions"]


def test_flushdb_of_a_dev_name_with_db_of_the_prod_db_is_refused(
        redis_server: RedisServer, dbs: dict[int, Any], tmp_path: Path,
        state_home: Path) -> None:
    config = _config(tmp_path, redis_server.port)
    out = cachetop("flushdb", "scratch", "--db", "5", "--yes", "--config", config,
                   state=state_home)
    assert out.returncode == 2 and "sessions is a prod target" in out.stdout
    scratch_name = cachetop("flushdb", "scratch", "--db", "5", "--confirm", "scratch",
                            "--config", config, state=state_home)
    assert scratch_name.returncode == 2 and _intact(dbs)
    ok = cachetop("flushdb", "scratch", "--db", "5", "--confirm", "sessions", "--config", config,
                  state=state_home)
    assert ok.returncode == 0, ok.stderr
    assert dbs[5].dbsize() == 0 and dbs[0].dbsize() == dbs[6].dbsize() == 20


def test_read_only_db_is_refused_by_url_and_by_another_name(
        redis_server: RedisServer, dbs: dict[int, Any], tmp_path: Path,
        state_home: Path) -> None:
    config = _config(tmp_path, redis_server.port)
    runs = [("flush", f"redis://127.0.0.1:{redis_server.port}/6", "--pattern", "tmp:*"),
            ("delete", "scratch", "tmp:1", "--db", "6"),
            ("flushdb", f"redis://localhost:{redis_server.port}/6")]
    for run in runs:
        out = cachetop(*run, "--config", config, "--yes", "--confirm", "locked",
                       state=state_home)
        assert out.returncode == 2, (run, out.stdout, out.stderr)
        assert "config target locked" in out.stdout and "is read_only" in out.stdout
    assert _intact(dbs)


def test_a_dev_db_of_the_same_server_stays_writable(
        redis_server: RedisServer, dbs: dict[int, Any], tmp_path: Path,
        state_home: Path) -> None:
    config = _config(tmp_path, redis_server.port)
    out = cachetop("flush", f"redis://localhost:{redis_server.port}", "--config", config,
                   "--pattern", "tmp:*", "--yes", state=state_home)
    assert out.returncode == 0, out.stdout + out.stderr
    assert dbs[0].dbsize() == 10 and dbs[5].dbsize() == dbs[6].dbsize() == 20


@pytest.mark.parametrize("value", ["0", "false", "no", "off"])
def test_read_only_is_sticky_an_environment_variable_cannot_turn_it_off(
        redis_server: RedisServer, dbs: dict[int, Any], tmp_path: Path, state_home: Path,
        value: str) -> None:
    config = _config(tmp_path, redis_server.port, top="read_only = true")
    out = cachetop("delete", f"redis://127.0.0.1:{redis_server.port}", "tmp:1", "--yes",
                   "--config", config, env={"CACHETOP_READ_ONLY": value}, state=state_home)
    assert out.returncode == 2 and "read_only = true in" in out.stdout
    assert "CACHETOP_READ_ONLY does not turn off" in out.stderr
    assert _intact(dbs)


def test_environment_can_add_read_only(redis_server: RedisServer, dbs: dict[int, Any],
                                       state_home: Path) -> None:
    out = cachetop("delete", redis_server.url, "tmp:1", "--yes",
                   env={"CACHETOP_READ_ONLY": "1"}, state=state_home)
    assert out.returncode == 2 and "CACHETOP_READ_ONLY" in out.stdout
    assert _intact(dbs)


def test_guard_in_process_covers_memcached_and_unix_sockets(tmp_path: Path) -> None:
    """The same rules without the CLI: a unix socket by another path to the same file, and
    a read-only memcached named by another spelling of its address."""
    sock = tmp_path / "redis.sock"
    server = RedisServer("--unixsocket", str(sock), "--unixsocketperm", "700")
    server.start()
    try:
        (tmp_path / "link").symlink_to(tmp_path)
        configured = parse_target_url(f"unix://{sock}", name="prod-sock", env="prod")
        other_path = parse_target_url(f"unix://{tmp_path / 'link' / 'redis.sock'}")
        fill(server.client(), [b"tmp:1", b"keep"])
        plan = plan_flush(other_path, b"tmp:*", guard=Guard((configured,)))
        assert plan.confirm_name == "prod-sock"
        assert execute(plan, confirmation="yes").status == "refused"
        assert server.client().dbsize() == 2
    finally:
        server.close()
    mc_config = parse_target_url("memcached://localhost:11999", name="mc", read_only=True)
    by_ip = parse_target_url("memcached://127.0.0.1:11999")
    protection = Guard((mc_config,)).protection(by_ip)
    assert protection.refusal(by_ip.name) and "config target mc" in protection.read_only_by[0]
    assert not Guard((mc_config,)).protection(
        parse_target_url("memcached://127.0.0.1:11998")).read_only_by


def test_every_address_of_this_machine_is_one_host() -> None:
    assert resolve_host("127.0.0.1", 1) == resolve_host("localhost", 1) == frozenset({LOCAL})
    assert resolve_host("127.0.0.2", 1) == frozenset({LOCAL})
    assert resolve_host("no-such-host.invalid", 1) == frozenset({"no-such-host.invalid"})
