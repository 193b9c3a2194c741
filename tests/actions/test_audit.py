"""The audit log: an intent line on disk before the first write, a result line after, refusals
as one line; who is the system's name for the uid; the file cannot be redirected or shared."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cachetop.actions import Progress, execute, plan_delete, plan_flush
from cachetop.state_paths import audit_path
from tests.actions.helpers import audit_lines, cli_env, fill, target_of, unescape_exact
from tests.servers import RedisServer

PASSWORD = "S3cret-pw!"


def _log(state: Path) -> Path:
    return state / "cachetop" / "audit.log"


def _records(state: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in audit_lines(state)]


def test_intent_then_result_with_the_facts_and_no_password(state_home: Path) -> None:
    server = RedisServer("--requirepass", PASSWORD)
    server.start()
    seen_at_first_batch: list[list[str]] = []
    try:
        client = server.client(password=PASSWORD)
        fill(client, [b"k:\x1b[2J%d" % i for i in range(30)] + [b"other:%d" % i for i in range(5)])
        target = target_of(server, password=PASSWORD, name="sessions-1")

        def progress(p: Progress) -> None:
            if p.deleted and not seen_at_first_batch:
                seen_at_first_batch.append(audit_lines(state_home))

        result = execute(plan_flush(target, b"k:\x1b*"), progress)
        assert result.deleted == 30
    finally:
        server.close()
    # While the run was deleting, the intent was on disk and the result was not.
    assert [json.loads(line)["event"] for line in seen_at_first_batch[0]] == ["intent"]
    raw = _log(state_home).read_bytes()
    assert PASSWORD.encode() not in raw and b"\x1b" not in raw
    intent, done = _records(state_home)
    assert intent["event"] == "intent" and done["event"] == "result"
    assert intent["run"] == done["run"] == result.run_id and len(result.run_id) == 16
    for record in (intent, done):
        assert record["target"] == "sessions-1"
        assert record["address"] == f"127.0.0.1:{server.port}" and record["db"] == 0
        assert record["action"] == "flush" and record["args"]["pattern"] == "k:\\x1b*"
        assert record["planned"] == 30 and record["planned_exact"] is True
        assert record["uid"] == os.geteuid() and str(record["time"]).endswith("Z")
    assert (done["done"], done["status"], done["errors"]) == (30, "done", [])
    assert float(done["duration_s"]) >= 0  # type: ignore[arg-type]
    assert stat.S_IMODE(_log(state_home).stat().st_mode) == 0o600
    assert stat.S_IMODE(_log(state_home).parent.stat().st_mode) == 0o700


def test_refusal_is_one_line(redis_server: RedisServer, state_home: Path) -> None:
    fill(redis_server.client(), [b"k:1", b"other"])
    result = execute(plan_flush(target_of(redis_server), b"k:*", read_only=True))
    assert result.status == "refused"
    (record,) = _records(state_home)
    assert record["event"] == "refused" and record["status"] == "refused"
    assert "read-only" in record["errors"][0] and record["done"] == 0  # type: ignore[index]


def test_user_is_the_systems_name_for_the_uid_logname_only_claimed(
        redis_server: RedisServer, state_home: Path) -> None:
    fill(redis_server.client(), [b"k:1", b"other"])
    env = cli_env(state_home, LOGNAME="alice", USER="alice")
    out = subprocess.run([sys.executable, "-m", "cachetop", "delete", redis_server.url, "k:1",
                          "--yes"], capture_output=True, text=True, env=env, timeout=30,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    system_name = subprocess.run(["id", "-un"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    assert system_name != "alice"
    for record in _records(state_home):
        assert record["user"] == system_name and record["claimed_user"] == "alice"


def test_intent_that_cannot_be_written_runs_nothing(redis_server: RedisServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    fill(redis_server.client(), [b"k:1", b"other"])
    result = execute(plan_flush(target_of(redis_server), b"k:*"))
    assert result.status == "refused" and "audit log" in result.errors[0]
    assert redis_server.client().exists(b"k:1") == 1


def test_full_disk_at_the_result_line_is_said_and_not_ok(redis_server: RedisServer,
                                                         state_home: Path) -> None:
    """The kernel refuses the result line (RLIMIT_FSIZE at the log's size: EFBIG, as a full
    disk gives ENOSPC): the keys are gone, the intent line says so was planned, and the
    result says its line is missing."""
    client = redis_server.client()
    fill(client, [b"k:%d" % i for i in range(3000)] + [b"other:%d" % i for i in range(100)])
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def squeeze(p: Progress) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (_log(state_home).stat().st_size, hard))

    try:
        result = execute(plan_flush(target_of(redis_server), b"k:*"), squeeze)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert result.status == "done" and not result.ok and result.deleted == 3000
    assert result.audit_error and "audit result line was not written" in result.summary
    assert [r["event"] for r in _records(state_home)] == ["intent"]
    assert client.dbsize() == 100


_SQUEEZE = """
import resource, sys, threading, time
log = sys.argv[1]
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

def squeeze():  # once the intent line is there, no byte more fits in any file
    while True:
        try:
            data = open(log, "rb").read()
        except OSError:
            data = b""
        if b'"event": "intent"' in data:
            resource.setrlimit(resource.RLIMIT_FSIZE, (len(data), hard))
            return
        time.sleep(0.001)

threading.Thread(target=squeeze, daemon=True).start()
from cachetop.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def test_cli_says_the_result_line_failed_and_exits_non_zero(redis_server: RedisServer,
                                                             state_home: Path) -> None:
    client = redis_server.client()
    fill(client, [b"k:%d" % i for i in range(2000)] + [b"other:%d" % i for i in range(100)])
    env = cli_env(state_home)
    out = subprocess.run([sys.executable, "-c", _SQUEEZE, str(_log(state_home)), "flush",
                          redis_server.url, "--pattern", "k:*", "--yes", "--rate", "4000"],
                         capture_output=True, text=True, env=env, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 1, out.stderr
    summary = out.stdout.splitlines()[-1]
    assert "deleted 2000 of 2000 planned" in summary and ": done;" in summary
    assert "audit result line was not written" in summary
    assert "audit result line was not written" in out.stderr and "Traceback" not in out.stderr
    assert [r["event"] for r in _records(state_home)] == ["intent"]
    assert client.dbsize() == 100


# -- the file: no symlink, ours, 0600 in 0700 ---------------------------------------------------


def _refused_and_kept(server: RedisServer, why: str) -> None:
    result = execute(plan_delete(target_of(server), b"k:1"))
    assert result.status == "refused" and "audit log" in result.errors[0], result.errors
    assert why in result.errors[0], result.errors[0]
    assert server.client().exists(b"k:1") == 1


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text("precious\n")
    return path


def test_symlinked_log_is_refused(redis_server: RedisServer, state_home: Path,
                                  victim: Path) -> None:
    fill(redis_server.client(), [b"k:1"])
    (state_home / "cachetop").mkdir(parents=True, mode=0o700)
    _log(state_home).symlink_to(victim)
    _refused_and_kept(redis_server, "symlink")
    assert victim.read_text() == "precious\n"


def test_symlinked_directory_is_refused(redis_server: RedisServer, state_home: Path,
                                        tmp_path: Path) -> None:
    fill(redis_server.client(), [b"k:1"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    state_home.mkdir()
    (state_home / "cachetop").symlink_to(elsewhere)
    _refused_and_kept(redis_server, "symlink")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(("what", "mode"), [("file", 0o666), ("file", 0o620),
                                            ("dir", 0o777), ("dir", 0o730)])
def test_log_or_directory_writable_by_others_is_refused(
        redis_server: RedisServer, state_home: Path, what: str, mode: int) -> None:
    fill(redis_server.client(), [b"k:1"])
    (state_home / "cachetop").mkdir(parents=True, mode=0o700)
    _log(state_home).write_text("")
    os.chmod(_log(state_home) if what == "file" else _log(state_home).parent, mode)
    _refused_and_kept(redis_server, "writable by group or others")
    assert _log(state_home).read_text() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another uid needs root")
@pytest.mark.parametrize("what", ["file", "dir"])
def test_log_or_directory_of_another_user_is_refused(
        redis_server: RedisServer, state_home: Path, what: str) -> None:
    fill(redis_server.client(), [b"k:1"])
    (state_home / "cachetop").mkdir(parents=True, mode=0o700)
    _log(state_home).write_text("")
    os.chmod(_log(state_home), 0o600)
    os.chown(_log(state_home) if what == "file" else _log(state_home).parent, 65534, -1)
    _refused_and_kept(redis_server, "belongs to uid 65534")


def test_fifo_or_hard_link_as_the_log_is_refused_without_blocking(
        redis_server: RedisServer, state_home: Path, victim: Path) -> None:
    fill(redis_server.client(), [b"k:1"])
    (state_home / "cachetop").mkdir(parents=True, mode=0o700)
    os.mkfifo(_log(state_home), 0o600)
    result = execute(plan_delete(target_of(redis_server), b"k:1"))
    assert result.status == "refused" and "audit log" in result.errors[0]
    _log(state_home).unlink()
    os.link(victim, _log(state_home))
    _refused_and_kept(redis_server, "hard links")
    assert victim.read_text() == "precious\n"


def test_own_log_readable_by_others_is_made_private(redis_server: RedisServer,
                                                    state_home: Path) -> None:
    fill(redis_server.client(), [b"k:1"])
    (state_home / "cachetop").mkdir(parents=True, mode=0o700)
    _log(state_home).write_text("")
    os.chmod(_log(state_home), 0o644)
    assert execute(plan_delete(target_of(redis_server), b"k:1")).status == "done"
    assert stat.S_IMODE(_log(state_home).stat().st_mode) == 0o600


# -- escaping: one record, one reading ----------------------------------------------------------


def test_a_newline_and_a_backslash_n_are_recorded_apart(redis_server: RedisServer,
                                                        state_home: Path) -> None:
    keys = [b"k\n1", b"k\\n1", b"k\\\\n1", b"k\\x0a1", b"k\xc2\x85", b"k\x85"]
    fill(redis_server.client(), keys)
    summaries = []
    for key in keys:
        result = execute(plan_delete(target_of(redis_server), key))
        assert result.deleted == 1
        summaries.append(result.summary)
    recorded = [r["args"]["key"] for r in _records(state_home) if r["event"] == "result"]  # type: ignore[index]
    assert len(set(recorded)) == len(keys) and len(set(summaries)) == len(keys)
    assert [unescape_exact(shown) for shown in recorded] == keys
    assert recorded[:2] == ["k\\n1", "k\\\\n1"]


def test_default_path_follows_xdg() -> None:
    assert audit_path({"HOME": "/home/u"}) == Path("/home/u/.local/state/cachetop/audit.log")
    assert audit_path({"HOME": "/home/u", "XDG_STATE_HOME": "relative"}) == Path(
        "/home/u/.local/state/cachetop/audit.log")
    assert audit_path({"XDG_STATE_HOME": "/s"}) == Path("/s/cachetop/audit.log")
