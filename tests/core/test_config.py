"""Tests for the config loader: keys, precedence, one-line errors naming file and key, no leaks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cachetop.collectors.base import TlsOptions
from cachetop.collectors.secret import Secret
from cachetop.config import (
    Config,
    TargetOptions,
    Thresholds,
    load_config,
    resolve_config_path,
    targets_from_cli,
    with_cli_targets,
)
from cachetop.errors import ConfigError

SECRET = "s3cr3t-Pw"


def write(tmp_path: Path, text: str, mode: int = 0o600, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


FULL = """
interval = 2
history = 300
read_only = true
timeout = 0.5

[thresholds]
hit_ratio_below = 0.9
p99_ms_above = 2
memory_ratio_above = 0.75
evictions_per_s_above = 1.5

[[targets]]
name = "sessions-1"
url = "redis://10.0.0.5:6379/0"
password_env = "SESSIONS_PW"
username = "monitor"
group = "sessions"
env = "prod"
read_only = false
dialect = "laravel"
prefix = "laravel_cache:"
probes = 5
detail_every = 30
timeout = 0.25

[[targets]]
name = "api-cache"
url = "https://api:9100/metrics"
convention = "custom"
mapping = { hits = "app_cache_hits_total", misses = "app_cache_misses_total" }
tls_ca_file = "/etc/ca.pem"
tls_cert_file = "/etc/client.pem"
tls_key_file = "/etc/client.key"
tls_server_name = "api.internal"
tls_verify = false

[[targets]]
url = "memcached://127.0.0.1:11211"
dialect = "symfony"

[[targets]]
url = "http://exporter:9121/metrics"
convention = "redis_exporter"
sample_limit = 200000
"""


def test_full_file_maps_every_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), {"SESSIONS_PW": SECRET})
    assert (config.interval_s, config.history_s, config.read_only, config.timeout_s) == (
        2.0, 300.0, True, 0.5)
    assert config.thresholds == Thresholds(0.9, 2.0, 0.75, 1.5)
    sessions, api, memcached, exporter = config.targets
    assert (sessions.name, sessions.kind, sessions.host, sessions.port, sessions.db) == (
        "sessions-1", "redis", "10.0.0.5", 6379, 0)
    assert sessions.password == Secret(SECRET)
    assert (sessions.username, sessions.group, sessions.env, sessions.read_only) == (
        "monitor", "sessions", "prod", False)
    assert (sessions.dialect, sessions.probes_per_poll, sessions.detail_every_s) == (
        "laravel", 5, 30.0)
    assert sessions.timeout_s == 0.25
    assert config.options["sessions-1"] == TargetOptions(prefix="laravel_cache:",
                                                         password_env="SESSIONS_PW")
    assert api.kind == "metrics"
    assert api.convention == "custom"
    assert dict(api.mapping) == {"hits": "app_cache_hits_total",
                                 "misses": "app_cache_misses_total"}
    assert api.tls == TlsOptions("/etc/ca.pem", "/etc/client.pem", "/etc/client.key",
                                 "api.internal", verify=False)
    assert api.timeout_s == 0.5  # the file's default timeout
    assert (memcached.name, memcached.kind, memcached.dialect) == (
        "127.0.0.1:11211", "memcached", "symfony")
    assert exporter.convention == "redis_exporter"
    assert (exporter.sample_limit, api.sample_limit) == (200_000, 50_000)  # set, default
    assert config.options_for("127.0.0.1:11211") == TargetOptions()
    assert config.options_for("not-configured") == TargetOptions()
    assert config.path == str(tmp_path / "config.toml")
    assert config.warnings == ()
    assert config.is_read_only(sessions)  # the file's read_only covers every target


def test_defaults_without_a_file() -> None:
    config = load_config(None, {})
    assert config == Config()
    assert (config.interval_s, config.history_s, config.read_only, config.path) == (
        1.0, 600.0, False, None)
    assert config.thresholds == Thresholds(0.80, 5.0, 0.90, 0.0)
    assert config.targets == ()
    assert config.warnings == ()


def test_config_is_frozen_and_replace_friendly(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "interval = 2\n"), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.interval_s = 5  # type: ignore[misc]
    assert dataclasses.replace(config, interval_s=0.5).interval_s == 0.5


@pytest.mark.parametrize(("file_text", "env", "expected"), [
    ("", {}, (1.0, 600.0, False)),
    ("interval = 2\nhistory = 60\nread_only = true\n", {}, (2.0, 60.0, True)),
    ("interval = 2\n", {"CACHETOP_INTERVAL": "0.25"}, (0.25, 600.0, False)),
    ("history = 60\n", {"CACHETOP_HISTORY": "120"}, (1.0, 120.0, False)),
    ("read_only = true\n", {"CACHETOP_READ_ONLY": "no"}, (1.0, 600.0, True)),  # sticky
    ("", {"CACHETOP_READ_ONLY": "1"}, (1.0, 600.0, True)),
    ("interval = 2\n", {"CACHETOP_INTERVAL": ""}, (2.0, 600.0, False)),  # empty = unset
])
def test_precedence_defaults_file_env(
    tmp_path: Path, file_text: str, env: dict[str, str], expected: tuple[float, float, bool]
) -> None:
    config = load_config(write(tmp_path, file_text), env)
    assert (config.interval_s, config.history_s, config.read_only) == expected


def test_cli_overrides_apply_last_with_replace(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "interval = 2\n"), {"CACHETOP_INTERVAL": "3"})
    assert dataclasses.replace(config, interval_s=0.5).interval_s == 0.5


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("CACHETOP_INTERVAL", "fast", "CACHETOP_INTERVAL: expected a number of seconds"),
    ("CACHETOP_INTERVAL", "0", "CACHETOP_INTERVAL: must be greater than 0"),
    ("CACHETOP_INTERVAL", "nan", "CACHETOP_INTERVAL: expected a finite number"),
    ("CACHETOP_HISTORY", "-1", "CACHETOP_HISTORY: must be greater than 0"),
    ("CACHETOP_READ_ONLY", "maybe", "CACHETOP_READ_ONLY: expected 1/0"),
])
def test_bad_environment_overrides(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {variable: value})
    assert str(caught.value).startswith(problem)


# (file text, env, expected message after "<file>: ").
ERRORS: list[tuple[str, dict[str, str], str]] = [
    ("colour = 'red'\n", {}, "colour: unknown key"),
    ("intervall = 2\n", {}, "intervall: unknown key (did you mean 'interval'?)"),
    ("[thresholds]\nhit_ratio = 0.5\n", {}, "thresholds.hit_ratio: unknown key"),
    ("[[targets]]\nurl = 'redis://a'\n[[targets]]\nurl = 'redis://b'\n"
     "[[targets]]\nurl = 'redis://c'\ncolour = 'red'\n", {}, "targets[2].colour: unknown key"),
    ("[[targets]]\nurl = 'redis://a'\npassword = 'x'\n", {},
     "targets[0].password: unknown key: give passwords through password_env or password_file"),
    ("interval = '2'\n", {}, "interval: expected a number, got string"),
    ("interval = true\n", {}, "interval: expected a number, got boolean"),
    ("interval = 0\n", {}, "interval: must be greater than 0"),
    ("interval = inf\n", {}, "interval: expected a finite number"),
    ("history = -5\n", {}, "history: must be greater than 0"),
    ("read_only = 'yes'\n", {}, "read_only: expected true or false, got string"),
    ("timeout = 0\n", {}, "timeout: must be greater than 0"),
    ("thresholds = 3\n", {}, "thresholds: expected a table, got integer"),
    ("[thresholds]\nhit_ratio_below = 80\n", {},
     "thresholds.hit_ratio_below: must be a ratio from 0 to 1"),
    ("[thresholds]\np99_ms_above = -1\n", {}, "thresholds.p99_ms_above: must be 0 or more"),
    ("targets = 'redis://h'\n", {}, "targets: expected [[targets]] tables"),
    ("targets = ['redis://h']\n", {}, "targets[0]: expected a table, got string"),
    ("[[targets]]\nname = 'x'\n", {}, "targets[0]: missing key 'url'"),
    ("[[targets]]\nurl = 'redis://h'\n[[targets]]\nurl = 'ftp://h'\n", {},
     "targets[1].url: unsupported scheme 'ftp'"),
    ("[[targets]]\nurl = 'redis://h:99999'\n", {}, "targets[0].url: bad port"),
    ("[[targets]]\nurl = 42\n", {}, "targets[0].url: expected a string, got integer"),
    ("[[targets]]\nurl = ''\n", {}, "targets[0].url: must not be empty"),
    ("[[targets]]\nurl = 'redis://h'\npassword_env = 'SESSIONS_PW'\n", {},
     "targets[0].password_env: environment variable SESSIONS_PW is not set"),
    ("[[targets]]\nurl = 'redis://h'\npassword_env = 'SESSIONS_PW'\n", {"SESSIONS_PW": ""},
     "targets[0].password_env: environment variable SESSIONS_PW is empty"),
    ("[[targets]]\nurl = 'redis://h'\npassword_env = 'not a name!'\n", {},
     "targets[0].password_env: expected the name of an environment variable"),
    ("[[targets]]\nurl = 'redis://h'\npassword_file = 'missing.txt'\n", {},
     "targets[0].password_file: cannot read"),
    ("[[targets]]\nurl = 'redis://h'\npassword_env = 'A'\npassword_file = 'p'\n", {"A": "x"},
     "targets[0].password_file: use either password_env or password_file"),
    ("[[targets]]\nurl = 'redis://u:pw@h'\npassword_env = 'A'\n", {"A": "x"},
     "targets[0].password_env: the url already holds a password"),
    ("[[targets]]\nurl = 'redis://h'\n[[targets]]\nurl = 'redis://h:6379'\n", {},
     "targets[1].name: name 'h:6379' is already used by targets[0]"),
    ("[[targets]]\nname = 'a'\nurl = 'redis://h'\n[[targets]]\nname = 'a'\nurl = 'redis://g'\n",
     {}, "targets[1].name: name 'a' is already used by targets[0]"),
    ("[[targets]]\nurl = 'redis://h'\ntimeout = 'fast'\n", {},
     "targets[0].timeout: expected a number, got string"),
    ("[[targets]]\nurl = 'redis://h'\nprobes = 0\n", {}, "targets[0].probes: must be from 1"),
    ("[[targets]]\nurl = 'redis://h'\nprobes = 1.5\n", {},
     "targets[0].probes: expected an integer, got float"),
    ("[[targets]]\nurl = 'http://h'\nsample_limit = -1\n", {},
     "targets[0].sample_limit: must be 0 (no limit) or more"),
    ("[[targets]]\nurl = 'http://h'\nsample_limit = 5e4\n", {},
     "targets[0].sample_limit: expected an integer, got float"),
    ("[[targets]]\nurl = 'redis://h'\nsample_limit = 10\n", {},
     "targets[0].sample_limit: applies only to http(s) metrics targets"),
    ("[[targets]]\nurl = 'redis://h'\ntls_verify = 'no'\n", {},
     "targets[0].tls_verify: expected true or false"),
    ("[[targets]]\nurl = 'redis://h'\ntls_ca_file = '/ca.pem'\n", {},
     "targets[0].url: TLS options need a rediss:// URL"),
    ("[[targets]]\nurl = 'http://h'\nconvention = 'prometheus'\n", {},
     "targets[0].convention: expected one of cachetop, micrometer, redis_exporter, "
     "memcached_exporter, custom, not 'prometheus'"),
    ("[[targets]]\nurl = 'redis://h'\nconvention = 'micrometer'\n", {},
     "targets[0].convention: applies only to http(s) metrics targets"),
    ("[[targets]]\nurl = 'http://h'\nconvention = 'custom'\n", {},
     "targets[0].convention: convention = \"custom\" needs a mapping table"),
    ("[[targets]]\nurl = 'http://h'\nmapping = { hits = 'x' }\n", {},
     "targets[0].mapping: needs convention = \"custom\""),
    ("[[targets]]\nurl = 'http://h'\nconvention = 'custom'\nmapping = { hits = 1 }\n", {},
     "targets[0].mapping: 'hits': expected a non-empty string"),
    ("\"a\\nb\" = 1\n", {}, "'a\\nb': unknown key"),
    ("[[targets]]\nurl = 'http://h'\ndialect = 'laravel'\n", {},
     "targets[0].dialect: applies only to redis and memcached targets"),
    ("[[targets]]\nurl = 'redis://h'\ndialect = 'rails'\n", {},
     "targets[0].dialect: expected one of cachetop, laravel, symfony"),
    ("[[targets]]\nurl = 'redis://h'\nprefix = 'app:'\n", {},
     "targets[0].prefix: needs dialect = \"laravel\""),
    ("[[targets]]\nurl = 'redis://h'\nname = \"a\\nb\"\n", {},
     "targets[0].name: must be a single line"),
    ("interval = \n", {}, "invalid TOML: Invalid value (at line 1, column 12)"),
    ("a = 1\n[[targets]\nurl = 'redis://h'\n", {}, "invalid TOML"),
]


@pytest.mark.parametrize(("text", "env", "expected"), ERRORS)
def test_errors_are_one_line_naming_file_and_key(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env)
    message = str(caught.value)
    assert message.startswith(f"{path}: {expected}")
    assert "\n" not in message


def test_toml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "interval = 1\n\n[[targets]\nurl = 'redis://h'\n")
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 3"):
        load_config(path, {})


@pytest.mark.parametrize("problem", ["missing", "directory", "not utf-8"])
def test_unreadable_config_file(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "config.toml"
    if problem == "directory":
        path.mkdir()
    elif problem == "not utf-8":
        path.write_bytes(b"interval = 1\n# \xff\n")
    with pytest.raises(ConfigError, match=f"^{path}: (cannot read|not UTF-8)"):
        load_config(path, {})


# Secrets reach a Config three ways; none may show in its repr or in any error text.
@pytest.mark.parametrize(("text", "env"), [
    ("[[targets]]\nurl = 'redis://h'\npassword_env = 'PW'\n", {"PW": SECRET}),
    (f"[[targets]]\nurl = 'redis://app:{SECRET}@h'\n", {}),
    (f"[[targets]]\nurl = 'http://app:{SECRET}@h:9100/metrics'\n", {}),
    ("[[targets]]\nurl = 'redis://h'\npassword_file = 'pw.txt'\n", {}),
])
def test_secrets_never_in_repr(tmp_path: Path, text: str, env: dict[str, str]) -> None:
    write(tmp_path, SECRET + "\n", name="pw.txt")
    config = load_config(write(tmp_path, text), env)
    assert config.targets[0].password == Secret(SECRET)
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert all(SECRET not in warning for warning in config.warnings)


@pytest.mark.parametrize("text", [
    f"[[targets]]\nurl = 'redis://app:{SECRET}@h:port'\n",
    f"[[targets]]\nurl = 'redis://app:{SECRET}@x@h'\n",
    f"[[targets]]\nurl = 'redis://app:{SECRET[:3]}/{SECRET[3:]}@h'\n",
    f"[[targets]]\nurl = 'redis://app:{SECRET}'\n",
    f"[[targets]]\nurl = 'redis://app:{SECRET}@h'\npassword_env = 'PW'\n",
    f"[[targets]]\nurl = 'redis://app:{SECRET}@h'\ncolour = 1\n",
    f"[[targets]]\nurl = 'ftp://app:{SECRET}@h'\n",
    f"[[targets]]\nurl = 'redis://h'\npassword_env = '{SECRET}!'\n",
])
def test_secrets_never_in_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), {"PW": "x"})
    for fragment in (SECRET, SECRET[:3] + "/", SECRET[3:]):
        assert fragment not in str(caught.value)


def test_password_file_is_read_relative_to_the_config_and_stripped(tmp_path: Path) -> None:
    write(tmp_path, "pw with spaces \r\n", name="pw.txt")
    text = "[[targets]]\nurl = 'redis://h'\npassword_file = 'pw.txt'\n"
    config = load_config(write(tmp_path, text), {})
    assert config.targets[0].password == Secret("pw with spaces ")
    assert config.options_for("h:6379").password_file == "pw.txt"
    assert config.warnings == ()


@pytest.mark.parametrize(("text", "mode", "warned"), [
    (f"[[targets]]\nurl = 'redis://app:{SECRET}@h'\n", 0o644, "holds a password in targets[0]"),
    (f"[[targets]]\nurl = 'redis://app:{SECRET}@h'\n", 0o640, "mode 640"),
    (f"[[targets]]\nurl = 'redis://app:{SECRET}@h'\n", 0o600, None),
    ("[[targets]]\nurl = 'redis://app@h'\n", 0o644, None),
    ("[[targets]]\nurl = 'redis://h'\npassword_env = 'PW'\n", 0o644, None),
])
def test_shared_readable_file_with_a_password_warns(
    tmp_path: Path, text: str, mode: int, warned: str | None
) -> None:
    config = load_config(write(tmp_path, text, mode=mode), {"PW": "x"})
    if warned is None:
        assert config.warnings == ()
    else:
        assert len(config.warnings) == 1
        assert warned in config.warnings[0]
        assert config.warnings[0].startswith(str(tmp_path / "config.toml"))


def test_shared_readable_password_file_warns(tmp_path: Path) -> None:
    write(tmp_path, SECRET, mode=0o644, name="pw.txt")
    text = "[[targets]]\nurl = 'redis://h'\npassword_file = 'pw.txt'\n"
    (warning,) = load_config(write(tmp_path, text), {}).warnings
    assert "targets[0].password_file" in warning
    assert "chmod 600" in warning


def test_link_local_target_warns(tmp_path: Path) -> None:
    text = "[[targets]]\nurl = 'http://169.254.169.254/latest/meta-data'\n"
    (warning,) = load_config(write(tmp_path, text), {}).warnings
    assert "targets[0].url: 169.254.169.254 is link-local" in warning


@pytest.mark.parametrize(("cli", "env", "existing", "expected"), [
    ("my.toml", {"CACHETOP_CONFIG": "env.toml"}, [], "my.toml"),
    (None, {"CACHETOP_CONFIG": "env.toml"}, ["xdg/cachetop/config.toml"], "env.toml"),
    (None, {"XDG_CONFIG_HOME": "{tmp}/xdg"}, ["xdg/cachetop/config.toml"],
     "{tmp}/xdg/cachetop/config.toml"),
    (None, {"XDG_CONFIG_HOME": "{tmp}/xdg"}, [], None),
    (None, {"HOME": "{tmp}"}, [".config/cachetop/config.toml"],
     "{tmp}/.config/cachetop/config.toml"),
    (None, {"HOME": "{tmp}", "XDG_CONFIG_HOME": "relative"}, [".config/cachetop/config.toml"],
     "{tmp}/.config/cachetop/config.toml"),
    (None, {"HOME": "{tmp}", "CACHETOP_CONFIG": ""}, [], None),
])
def test_resolve_config_path(
    tmp_path: Path, cli: str | None, env: dict[str, str], existing: list[str],
    expected: str | None,
) -> None:
    for relative in existing:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")
    env = {key: value.format(tmp=tmp_path) for key, value in env.items()}
    env.setdefault("HOME", str(tmp_path / "nohome"))
    found = resolve_config_path(cli, env)
    assert found == (None if expected is None else Path(expected.format(tmp=tmp_path)))


def test_targets_from_cli_keep_order_and_defaults() -> None:
    targets = targets_from_cli(["memcached://h", "redis://h/2", "unix:///tmp/r.sock"],
                               timeout_s=0.5)
    assert [t.address for t in targets] == ["h:11211", "h:6379/2", "unix:/tmp/r.sock"]
    assert all(t.timeout_s == 0.5 for t in targets)
    assert targets_from_cli(["redis://h"], timeout_s=None)[0].timeout_s == 1.0


@pytest.mark.parametrize(("urls", "expected"), [
    (["redis://h", f"redis://u:{SECRET}@h:99999"],
     "target 2 (redis://u:***@h:99999): bad port"),
    (["redis://h", "redis://h:6379"], "target 2: 'h:6379' is given twice"),
    (["gopher://h"], "target 1 (gopher://h): unsupported scheme 'gopher'"),
])
def test_targets_from_cli_errors(urls: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        targets_from_cli(urls)
    assert str(caught.value).startswith(expected)
    assert SECRET not in str(caught.value)


def test_cli_targets_come_first_and_warn_about_passwords(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[[targets]]\nurl = 'redis://file'\n"), {})
    cli = targets_from_cli([f"redis://:{SECRET}@cli", "memcached://cli"])
    merged = with_cli_targets(config, cli)
    assert [t.name for t in merged.targets] == ["cli:6379", "cli:11211", "file:6379"]
    (warning,) = merged.warnings
    assert "cli:6379" in warning
    assert "password_env" in warning
    assert SECRET not in warning
    assert SECRET not in repr(merged)


def test_cli_target_with_a_file_targets_name_is_an_error(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[[targets]]\nurl = 'redis://h'\n"), {})
    with pytest.raises(ConfigError, match=r"config\.toml: targets\[0\]\.name: name 'h:6379'"):
        with_cli_targets(config, targets_from_cli(["redis://h"]))


def test_validation_opens_no_sockets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("config validation opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    config = load_config(write(tmp_path, FULL), {"SESSIONS_PW": "x"})
    assert len(config.targets) == 4


def test_topology_targets_take_credentials_and_an_address_map(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[targets]]\nname = "prod"\n'
                    'url = "redis+cluster://10.0.0.5:6379,10.0.0.6:6379"\n'
                    'password_env = "CLUSTER_PW"\n'
                    '[targets.remap]\n"10.0.0.5:6379" = "127.0.0.1:7005"\n'
                    '[[targets]]\nurl = "redis://127.0.0.1:7000"\n')
    path.chmod(0o600)
    config = load_config(path, {"CLUSTER_PW": "s3cret"})
    cluster, plain = config.targets
    assert cluster.kind == "redis-cluster" and dict(cluster.remap) == {
        "10.0.0.5:6379": "127.0.0.1:7005"}
    assert cluster.password is not None and cluster.password.reveal() == "s3cret"
    assert plain.password is None and dict(plain.remap) == {}


@pytest.mark.parametrize(("table", "problem"), [
    ('url = "redis://h:1"\n[targets.remap]\n"a:1" = "b:2"\n', r"applies only to redis\+cluster"),
    ('url = "redis+cluster://h:1"\n[targets.remap]\n"a" = "b:2"\n', "expected host:port"),
    ('url = "redis+cluster://h:1"\n[targets.remap]\n"a:1" = 5\n', "as its value"),
])
def test_bad_address_maps(tmp_path: Path, table: str, problem: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[[targets]]\n" + table)
    with pytest.raises(ConfigError, match=problem):
        load_config(path, {})
