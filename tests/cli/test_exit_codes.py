"""Exit codes a script can check (issue 20.11) and a command line a person can find their way in
(issue 20.13): 0 every target up, 1 some target not up, 2 usage; --help names the commands, an
unknown command is named as such with the likely one, and --count refuses to go with --once."""

from __future__ import annotations

import json

import pytest

from cachetop import cli
from tests.cli.test_headless import cachetop
from tests.servers import RedisServer, free_port


def test_once_exits_0_when_every_target_is_up(redis_server: RedisServer) -> None:
    out = cachetop("--once", "--json", "--interval", "0.2", redis_server.url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["targets"][0]["status"] == "up"


def test_once_exits_1_when_a_target_is_down(redis_server: RedisServer) -> None:
    down = f"redis://127.0.0.1:{free_port()}"
    out = cachetop("--once", "--interval", "0.2", redis_server.url, down)
    assert out.returncode == 1, out.stderr
    assert "fleet: 1/2 up" in out.stdout                       # the table is still printed
    assert "1 of 2 targets not up" in out.stderr


def test_once_exits_1_when_every_target_is_down() -> None:
    out = cachetop("--once", "--json", "--interval", "0.2", f"redis://127.0.0.1:{free_port()}")
    assert out.returncode == 1
    assert json.loads(out.stdout)["targets"][0]["status"] == "down"


def test_once_exits_1_on_a_wrong_password() -> None:
    server = RedisServer("--requirepass", "S3cretPw")
    server.start()
    try:
        out = cachetop("--once", "--json", "--interval", "0.2",
                       f"redis://:Wr0ngPw@127.0.0.1:{server.port}")
    finally:
        server.close()
    assert out.returncode == 1
    assert json.loads(out.stdout)["targets"][0]["status"] == "auth-failed"
    assert "Wr0ngPw" not in out.stdout + out.stderr


def test_batch_exits_1_when_a_target_is_not_up(redis_server: RedisServer) -> None:
    up = cachetop("--batch", "--count", "2", "--json", "--interval", "0.2", redis_server.url)
    assert up.returncode == 0, up.stderr
    down = cachetop("--batch", "--count", "2", "--json", "--interval", "0.2", redis_server.url,
                    f"redis://127.0.0.1:{free_port()}")
    assert down.returncode == 1
    assert len(down.stdout.strip().splitlines()) == 2


def test_count_with_once_is_refused_as_usage() -> None:
    out = cachetop("--once", "--count", "3", "redis://127.0.0.1:1")
    assert out.returncode == 2
    assert "--count goes with --batch" in out.stderr.splitlines()[-1]


def test_help_lists_the_commands_and_the_exit_codes() -> None:
    out = cachetop("--help")
    assert out.returncode == 0
    for command in ("agent", "demo", "keys", "flush", "flushdb", "flushall", "delete", "tags",
                    "invalidate"):
        assert f"  {command} " in out.stdout, command
    assert "0 every target up" in out.stdout
    assert "1 some target not up" in out.stdout
    assert "2 usage" in out.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["frobnicate", "orders"],
     "cachetop: error: no such command 'frobnicate'; did you mean one of: agent, demo, record, "
     "replay, keys, flush, flushdb, flushall, delete, tags, invalidate?"),
    (["fluhs", "orders"], "cachetop: error: no such command 'fluhs'; did you mean 'flush'?"),
    (["invalidat", "redis://:S3cret@h"],
     "cachetop: error: no such command 'invalidat'; did you mean 'invalidate'?"),
])
def test_an_unknown_command_is_named_with_the_likely_one(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == message
    assert "S3cret" not in err
