"""Input and secret rails (issue 19, items 6-8): a rate is a positive finite number; config files
and password files are regular files of bounded size (a FIFO or /dev/zero is refused at once);
every query value of a metrics URL is masked unless the config marks it public; a password on
the command line and a config others can edit earn warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cachetop.config import load_config
from cachetop.errors import ConfigError
from tests.actions.helpers import fill
from tests.servers import RedisServer, free_port

SECRET = "Tok3n-s3cr3t"


def cachetop(*args: str, env: dict[str, str] | None = None,
             timeout: float = 20) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    full.update(XDG_CONFIG_HOME="/nonexistent-cachetop-test", **(env or {}))
    return subprocess.run([sys.executable, "-m", "cachetop", *args], capture_output=True,
                          text=True, timeout=timeout, env=full, stdin=subprocess.DEVNULL)


def _one_line_exit_2(out: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    for fragment in fragments:
        assert fragment in out.stderr, out.stderr


@pytest.mark.parametrize("rate", ["0", "-1", "nan", "inf", "-inf", "1e999", "fast"])
def test_rate_must_be_a_positive_finite_number(redis_server: RedisServer, rate: str,
                                               state_home: Path) -> None:
    fill(redis_server.client(), [b"k:1", b"other"])
    out = cachetop("flush", redis_server.url, "--pattern", "k:*", "--yes", f"--rate={rate}",
                   env={"XDG_STATE_HOME": str(state_home)})
    _one_line_exit_2(out, "cachetop flush: argument --rate:", "number of keys/s")
    assert redis_server.client().dbsize() == 2


def test_count_budget_must_be_positive(redis_server: RedisServer, state_home: Path) -> None:
    out = cachetop("flush", redis_server.url, "--pattern", "k:*", "--count-budget", "nan",
                   env={"XDG_STATE_HOME": str(state_home)})
    _one_line_exit_2(out, "--count-budget")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path, 0o600)
    return path


def _config_with_password_file(tmp_path: Path, password_file: str) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f"[[targets]]\nurl = 'redis://127.0.0.1:{free_port()}'\n"
                      f"password_file = '{password_file}'\n")
    config.chmod(0o600)
    return config


@pytest.mark.parametrize(("source", "problem"), [
    ("fifo", "not a regular file (a FIFO)"), ("/dev/zero", "not a regular file (a device)"),
    ("big", "larger than 4 KiB"), ("dir", "not a regular file (a directory)"),
])
def test_password_file_is_a_small_regular_file(tmp_path: Path, fifo: Path, source: str,
                                               problem: str) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"p" * 4097)
    big.chmod(0o600)
    path = {"fifo": str(fifo), "big": str(big), "dir": str(tmp_path)}.get(source, source)
    config = _config_with_password_file(tmp_path, path)
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_config(config, {})
    for argv in (["--once", "--config", str(config)],
                 ["flush", "x", "--pattern", "a*", "--config", str(config)]):
        _one_line_exit_2(cachetop(*argv), "password_file", problem)


def test_password_file_of_exactly_4_kib_is_read(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"p" * 4095 + b"\n")
    pw.chmod(0o600)
    (target,) = load_config(_config_with_password_file(tmp_path, str(pw)), {}).targets
    assert target.password is not None and target.password.reveal() == "p" * 4095


@pytest.mark.parametrize("source", ["fifo", "/dev/zero"])
def test_config_that_is_not_a_regular_file_is_refused_at_once(fifo: Path, source: str) -> None:
    path = str(fifo) if source == "fifo" else source
    kind = "a FIFO" if source == "fifo" else "a device"
    for argv, env in ((["--once", "--config", path], {}),
                      (["flush", "x", "--pattern", "a*", "--config", path], {}),
                      (["--once"], {"CACHETOP_CONFIG": path})):
        _one_line_exit_2(cachetop(*argv, env=env), f"cannot read: not a regular file ({kind})")


# -- secrets -------------------------------------------------------------------------------------


def test_every_query_value_of_a_metrics_url_is_masked_unless_public(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f"[[targets]]\nurl = 'http://127.0.0.1:{port}/metrics?access-token={SECRET}&module=app'\n"
        "public_params = ['module']\n"
        f"[[targets]]\nurl = 'http://127.0.0.1:{port}/m?X-Api-Key={SECRET}&{SECRET}'\n")
    config.chmod(0o600)
    first, second = load_config(config, {}).targets
    assert first.address == first.name == (f"http://127.0.0.1:{port}/metrics"
                                           "?access-token=***&module=app")
    assert second.address == f"http://127.0.0.1:{port}/m?X-Api-Key=***&***"
    assert first.http_url is not None and SECRET in first.http_url  # the request still has it
    out = cachetop("--once", "--json", "--interval", "0.2", "--config", str(config))
    assert out.returncode == 1, out.stderr  # nothing listens on the port: not up
    assert SECRET not in out.stdout + out.stderr
    names = [t["name"] for t in json.loads(out.stdout)["targets"]]
    assert names == [first.name, second.name]
    url = f"http://127.0.0.1:{port}/metrics?token-ish={SECRET}"
    cli = cachetop("--once", "--json", "--interval", "0.2", url)
    assert SECRET not in cli.stdout + cli.stderr and "token-ish=***" in cli.stdout


def test_public_params_only_for_metrics_urls(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[[targets]]\nurl = 'redis://h'\npublic_params = ['db']\n")
    with pytest.raises(ConfigError, match="public_params applies only to http"):
        load_config(config, {})


def test_actions_warn_about_a_password_on_the_command_line(redis_server: RedisServer,
                                                         state_home: Path) -> None:
    fill(redis_server.client(), [b"k:1"])
    out = cachetop("delete", f"redis://:{SECRET}@127.0.0.1:{redis_server.port}", "k:1", "--yes",
                   env={"XDG_STATE_HOME": str(state_home)})
    assert out.returncode == 0, out.stderr
    assert "a password on the command line is visible to other users (ps)" in out.stderr
    assert SECRET not in out.stdout + out.stderr


@pytest.mark.parametrize(("extra", "mode", "warned"), [
    ("password_env = 'PW'\n", 0o666, True), ("password_env = 'PW'\n", 0o620, True),
    ("password_file = 'pw'\n", 0o602, True), ("tls_key_file = '/k.pem'\n", 0o660, True),
    ("password_env = 'PW'\n", 0o644, False), ("password_env = 'PW'\n", 0o600, False),
    ("", 0o666, False),
])
def test_a_config_others_can_edit_warns_when_it_names_any_credential(
        tmp_path: Path, extra: str, mode: int, warned: bool) -> None:
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    pw.chmod(0o600)
    scheme = "rediss" if "tls_" in extra else "redis"
    config = tmp_path / "c.toml"
    config.write_text(f"[[targets]]\nurl = '{scheme}://h'\n{extra}")
    config.chmod(mode)
    warnings = load_config(config, {"PW": "x"}).warnings
    editable = [w for w in warnings if "writable by group or others" in w]
    assert bool(editable) == warned, warnings
    if warned:
        assert "whoever edits its url receives the password" in editable[0]
