"""Bad config rows of reliability.md section 5 not covered by test_config.py / test_target_url.py:
custom mappings checked at load time, cloud metadata hosts in every spelling the resolver
accepts, unsupported schemes, and the CLI's exit 2 with one line that never echoes a secret."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cachetop.config import load_config, targets_from_cli, with_cli_targets
from cachetop.errors import ConfigError
from cachetop.target_url import parse_target_url

SECRET = "s3cr3t-Pw"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def cachetop(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": "/nonexistent-cachetop-test"}
    return subprocess.run([sys.executable, "-m", "cachetop", *args], capture_output=True,
                          text=True, timeout=30, env=env, stdin=subprocess.DEVNULL,
                          cwd=Path(__file__).parent.parent.parent)


@pytest.mark.parametrize(("mapping", "problem"), [
    ("{ bogus = 'x' }", "unknown mapping key 'bogus'"),
    ("{ hits = 'x{' }", "not a metric selector: 'x{'"),
    ("{ hits = 'x{1st=\"a\"}' }", "not a label matcher"),
    ("{ hits = 'x', latency = 'h', latency_unit = 'hours' }", "latency_unit must be one of"),
])
def test_a_bad_custom_mapping_is_a_config_error_at_load(
    tmp_path: Path, mapping: str, problem: str
) -> None:
    """It used to pass validation and raise ValueError (a traceback, exit 1) on the first poll."""
    path = write(tmp_path, "[[targets]]\nurl = 'http://h:9100/metrics'\n"
                           f"convention = 'custom'\nmapping = {mapping}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value).startswith(f"{path}: targets[0].mapping: {problem}")


@pytest.mark.parametrize("host", [
    "169.254.169.254", "169.254.169.254.", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376",
    "169.254.43518", "[::ffff:169.254.169.254]", "[fe80::1]", "[fd00:ec2::254]",
    "metadata.google.internal", "METADATA.google.internal.",
])
def test_cloud_metadata_hosts_warn_in_every_spelling(tmp_path: Path, host: str) -> None:
    """Each of these reaches a metadata service (the resolver's inet_aton accepts the decimal,
    hex, octal and short forms), so each gets the warning, naming the field."""
    config = load_config(write(tmp_path, f"[[targets]]\nurl = 'http://{host}/latest'\n"), {})
    (warning,) = config.warnings
    assert warning.startswith(f"{tmp_path / 'config.toml'}: targets[0].url: ")
    cli = with_cli_targets(load_config(None, {}), targets_from_cli([f"http://{host}/latest"]))
    (warning,) = cli.warnings
    assert warning.startswith("target 1.url: ")


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.5", "cache-1.internal", "[::1]",
                                  "[fd00::1]", "169.255.0.1", "metadata"])
def test_ordinary_hosts_do_not_warn(tmp_path: Path, host: str) -> None:
    assert load_config(write(tmp_path, f"[[targets]]\nurl = 'redis://{host}'\n"), {}).warnings == ()


@pytest.mark.parametrize(("url", "problem"), [
    ("http+unix://%2Fvar%2Frun%2Fdocker.sock/metrics", "unsupported scheme 'http+unix'"),
    ("gopher://h:70/", "unsupported scheme 'gopher'"),
    ("redis+proxy://h:26379/mymaster", "unsupported scheme 'redis+proxy'"),
    ("FILE:///etc/passwd", "unsupported scheme 'file'"),
    (f"ftp://u:{SECRET}@h/", "unsupported scheme 'ftp'"),
])
def test_unsupported_schemes(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)) as caught:
        parse_target_url(url)
    assert SECRET not in str(caught.value)


def test_a_unix_socket_cannot_be_a_metrics_endpoint(tmp_path: Path) -> None:
    path = write(tmp_path, "[[targets]]\nurl = 'unix:///var/run/docker.sock'\n"
                           "convention = 'cachetop'\n")
    with pytest.raises(ConfigError, match=r"targets\[0\]\.convention: applies only to http"):
        load_config(path, {})


def test_a_colon_in_the_password_needs_no_encoding() -> None:
    target = parse_target_url(f"redis://u:{SECRET}:x@h:6379")
    assert target.password is not None and target.password.reveal() == f"{SECRET}:x"
    assert (target.host, target.port) == ("h", 6379)


@pytest.mark.parametrize(("args", "field"), [
    ((f"redis://u:{SECRET}@ss@127.0.0.1:1",), "unencoded '@'"),
    ((f"redis://u:{SECRET}/x@127.0.0.1:1",), "unencoded '/'"),
    ((f"redis://u:{SECRET}#x@127.0.0.1:1",), "unencoded '#'"),
    ((f"redis://u:{SECRET}%zz@127.0.0.1:1",), "'%'"),
    ((f"file://u:{SECRET}@/etc/passwd",), "unsupported scheme 'file'"),
    (("--config", "{config}"), "targets[0].mapping: unknown mapping key"),
    (("--config", "{typed}"), "targets[0].timeout: expected a number, got string"),
])
def test_cli_exits_2_with_one_line_and_no_secret(
    tmp_path: Path, args: tuple[str, ...], field: str
) -> None:
    config = write(tmp_path, f"[[targets]]\nurl = 'http://u:{SECRET}@127.0.0.1:1/m'\n"
                             "convention = 'custom'\nmapping = { bogus = 'x' }\n")
    typed = tmp_path / "typed.toml"
    typed.write_text(f"[[targets]]\nurl = 'redis://u:{SECRET}@127.0.0.1:1'\ntimeout = '1s'\n")
    typed.chmod(0o600)
    argv = [a.format(config=config, typed=typed) for a in args]
    out = cachetop("--once", "--json", *argv)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert out.stderr.startswith("cachetop: ") and out.stderr.count("\n") == 1, out.stderr
    assert field in out.stderr
    assert "Traceback" not in out.stderr
    for fragment in (SECRET, SECRET[:4], "ss@127"):
        assert fragment not in out.stderr
