"""The audit log: one JSON line per action and per refusal, 0600, and no secret in it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cachetop.actions import execute, plan_flush
from cachetop.audit import audit_path
from tests.actions.helpers import audit_lines, fill, target_of
from tests.servers import RedisServer

PASSWORD = "S3cret-pw!"


def test_action_line_has_the_facts_and_no_password(state_home: Path) -> None:
    server = RedisServer("--requirepass", PASSWORD)
    server.start()
    try:
        client = server.client(password=PASSWORD)
        fill(client, [b"k:\x1b[2J%d" % i for i in range(30)] + [b"other"])
        target = target_of(server, password=PASSWORD, name="sessions-1")
        result = execute(plan_flush(target, b"k:\x1b*"))
        assert result.deleted == 30
    finally:
        server.close()
    lines = audit_lines(state_home)
    assert len(lines) == 1
    raw = (state_home / "cachetop" / "audit.log").read_bytes()
    assert PASSWORD.encode() not in raw and b"\x1b" not in raw
    record = json.loads(lines[0])
    assert record["target"] == "sessions-1" and record["address"] == f"127.0.0.1:{server.port}"
    assert record["action"] == "flush" and record["args"]["pattern"] == "k:\\x1b*"
    assert (record["planned"], record["done"], record["status"]) == (30, 30, "done")
    assert record["user"] and record["time"].endswith("Z") and record["errors"] == []
    assert record["duration_s"] >= 0
    mode = stat.S_IMODE((state_home / "cachetop" / "audit.log").stat().st_mode)
    assert mode == 0o600


def test_refusal_is_audited(redis_server: RedisServer, state_home: Path) -> None:
    fill(redis_server.client(), [b"k:1"])
    result = execute(plan_flush(target_of(redis_server), b"k:*", read_only=True))
    assert result.status == "refused"
    record = json.loads(audit_lines(state_home)[-1])
    assert record["status"] == "refused" and "read-only" in record["errors"][0]
    assert record["done"] == 0


def test_unwritable_audit_log_refuses_the_action(redis_server: RedisServer, tmp_path: Path,
                                                 monkeypatch) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    fill(redis_server.client(), [b"k:1"])
    result = execute(plan_flush(target_of(redis_server), b"k:*"))
    assert result.status == "refused" and "audit log" in result.errors[0]
    assert redis_server.client().exists(b"k:1") == 1


def test_default_path_follows_xdg() -> None:
    assert audit_path({"HOME": "/home/u"}) == Path("/home/u/.local/state/cachetop/audit.log")
    assert audit_path({"HOME": "/home/u", "XDG_STATE_HOME": "relative"}) == Path(
        "/home/u/.local/state/cachetop/audit.log")
    assert audit_path({"XDG_STATE_HOME": "/s"}) == Path("/s/cachetop/audit.log")
