"""Provides load_config(): one TOML file plus CACHETOP_* variables -> a frozen Config.

Precedence is defaults < file < CACHETOP_* environment < CLI; the CLI applies its own overrides
with `dataclasses.replace` and `with_cli_targets`. Validation reads the file (and password files)
but opens no sockets. Every error is one ConfigError line naming the file and the key, and no
message or repr holds a password.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cachetop.collectors.base import TOPOLOGY_KINDS, Target, TlsOptions
from cachetop.collectors.secret import Secret
from cachetop.errors import ConfigError
from cachetop.target_url import parse_target_url

# The dashboard's first frame waits for this module (issue 11): the alert rules and the metrics
# conventions (the Prometheus parser with them) load only for a config that uses them.
if TYPE_CHECKING:
    from cachetop.events.rules import AlertRule

CONVENTIONS = ("cachetop", "micrometer", "redis_exporter", "memcached_exporter", "custom")
DIALECTS = ("cachetop", "laravel", "symfony")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SAFE_RE = re.compile(r"[A-Za-z0-9_.:/-]{1,60}")
PROD_ENVS = frozenset({"prod", "production"})  # a target's `env` that guards writes


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a metric turns a row amber; ratios are 0..1 like everywhere in the core."""

    hit_ratio_below: float = 0.80
    p99_ms_above: float = 5.0
    memory_ratio_above: float = 0.90
    evictions_per_s_above: float = 0.0


@dataclass(frozen=True, slots=True)
class TargetOptions:
    """Per-target settings that Target has no field for, keyed by target name in Config.options.

    `password_env`/`password_file` record where the password came from (a name or a path, never
    the value), so a retry after an auth failure can read it again.
    """

    prefix: str = ""
    password_env: str | None = None
    password_file: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """Everything cachetop runs with. Frozen: the CLI derives its version with `replace`.

    `read_only` applies to every target on top of each Target's own flag (see is_read_only);
    `read_only_by` names what turned it on (the file, CACHETOP_READ_ONLY). It is sticky: no
    later source turns it off. `timeout_s` is the default per-target timeout, for targets given
    on the command line. `warnings` are one-line, secret-free notes for stderr (insecure file
    modes, ...).
    """

    targets: tuple[Target, ...] = ()
    interval_s: float = 1.0
    history_s: float = 600.0
    read_only: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    path: str | None = None
    timeout_s: float = 1.0
    options: Mapping[str, TargetOptions] = field(default_factory=lambda: MappingProxyType({}))
    alerts: tuple[AlertRule, ...] = ()
    warnings: tuple[str, ...] = ()
    read_only_by: tuple[str, ...] = ()
    caches_limit: int | None = None  # JSON: at most this many caches per endpoint (--caches-limit)

    def options_for(self, name: str) -> TargetOptions:
        """The target's extra options; defaults for command-line and discovered targets."""
        return self.options.get(name, TargetOptions())

    def is_read_only(self, target: Target) -> bool:
        """True when this target's own flags refuse destructive actions. Actions go further
        (actions.protection.Guard): every config target covering the same instance counts."""
        return self.read_only or target.read_only

    def read_only_sources(self) -> tuple[str, ...]:
        """What makes every target read-only, for actions.protection.Guard."""
        if not self.read_only:
            return ()
        return self.read_only_by or ("read-only mode",)


class _BadValueError(Exception):
    """A value failed its check; the caller adds the file and key."""


# ---- value checks: each returns the converted value or raises _BadValueError; none echoes it.


def _type_name(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", dict: "table",
             list: "array"}
    return names.get(type(value), "date/time")


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadValueError(f"expected a number, got {_type_name(value)}")
    if not math.isfinite(value):
        raise _BadValueError("expected a finite number")
    return float(value)


def _positive(value: object) -> float:
    number = _number(value)
    if number <= 0:
        raise _BadValueError("must be greater than 0")
    return number


def _non_negative(value: object) -> float:
    number = _number(value)
    if number < 0:
        raise _BadValueError("must be 0 or more")
    return number


def _ratio(value: object) -> float:
    number = _number(value)
    if not 0 <= number <= 1:
        raise _BadValueError("must be a ratio from 0 to 1 (0.8, not 80)")
    return number


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadValueError(f"expected an integer, got {_type_name(value)}")
    if not 1 <= value <= 100:
        raise _BadValueError("must be from 1 to 100")
    return value


def _sample_limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadValueError(f"expected an integer, got {_type_name(value)}")
    if value < 0:
        raise _BadValueError("must be 0 (no limit) or more")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _BadValueError(f"expected true or false, got {_type_name(value)}")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _BadValueError(f"expected a string, got {_type_name(value)}")
    if not value.isprintable():
        raise _BadValueError("must be a single line of printable text")
    return value


def _text(value: object) -> str:
    text = _string(value)
    if not text.strip():
        raise _BadValueError("must not be empty")
    return text


def _env_name(value: object) -> str:
    name = _text(value)
    if not _ENV_NAME_RE.fullmatch(name):  # do not echo: it may be the password itself
        raise _BadValueError("expected the name of an environment variable (letters, digits, _)")
    return name


def _choice(options: Sequence[str]) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _string(value)
        if text not in options:
            shown = repr(text) if _SAFE_RE.fullmatch(text) else "this value"
            raise _BadValueError(f"expected one of {', '.join(options)}, not {shown}")
        return text

    return check


def _string_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _BadValueError("expected an array of non-empty strings")
    return tuple(value)


def _string_table(value: object) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise _BadValueError(f"expected a table of strings, got {_type_name(value)}")
    for key, item in value.items():
        if not isinstance(item, str) or not item.strip():
            raise _BadValueError(f"{key!r}: expected a non-empty string")
    return MappingProxyType(dict(value))


_ADDRESS_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}")


def _remap(value: object) -> Mapping[str, str]:
    """`[targets.remap]`: announced `host:port` -> reachable `host:port` (NAT, tunnels)."""
    if not isinstance(value, dict):
        raise _BadValueError(f"expected a table of \"host:port\" = \"host:port\", got "
                             f"{_type_name(value)}")
    for key, item in value.items():
        shown = repr(key) if _SAFE_RE.fullmatch(key) else "a key"
        if not _ADDRESS_RE.fullmatch(key):
            raise _BadValueError(f"{shown}: expected host:port")
        if not isinstance(item, str) or not _ADDRESS_RE.fullmatch(item):
            raise _BadValueError(f"{shown}: expected a \"host:port\" string as its value")
    return MappingProxyType(dict(value))


_TOP_KEYS: dict[str, Callable[[object], Any]] = {
    "interval": _positive, "history": _positive, "read_only": _bool, "timeout": _positive,
    "thresholds": lambda value: value, "targets": lambda value: value,  # checked by structure
    "alerts": lambda value: value,
}
_THRESHOLD_KEYS: dict[str, Callable[[object], Any]] = {
    "hit_ratio_below": _ratio, "p99_ms_above": _non_negative,
    "memory_ratio_above": _ratio, "evictions_per_s_above": _non_negative,
}
# TOML key -> (check, destination): a Target field, a TlsOptions field ("tls."), or "" when
# the key is handled by hand (name, url, passwords, prefix).
_TARGET_SCHEMA: dict[str, tuple[Callable[[object], Any], str]] = {
    "name": (_text, ""), "url": (_text, ""), "password_env": (_env_name, ""),
    "password_file": (_text, ""), "prefix": (_string, ""),
    "group": (_string, "group"), "username": (_text, "username"),
    "timeout": (_positive, "timeout_s"), "convention": (_choice(CONVENTIONS), "convention"),
    "mapping": (_string_table, "mapping"), "read_only": (_bool, "read_only"),
    "env": (_string, "env"), "dialect": (_choice(DIALECTS), "dialect"),
    "probes": (_count, "probes_per_poll"), "detail_every": (_positive, "detail_every_s"),
    "sample_limit": (_sample_limit, "sample_limit"),
    "tls_ca_file": (_text, "tls.ca_file"), "tls_cert_file": (_text, "tls.cert_file"),
    "tls_key_file": (_text, "tls.key_file"), "tls_server_name": (_text, "tls.server_name"),
    "tls_verify": (_bool, "tls.verify"), "public_params": (_string_list, ""),
    "remap": (_remap, "remap"),
    "caches": (_string_table, "cache_servers"),
}
_TARGET_KEYS = {key: check for key, (check, _) in _TARGET_SCHEMA.items()}


def _checked(
    table: Mapping[str, object], schema: Mapping[str, Callable[[object], Any]], where: str,
    key_prefix: str,
) -> dict[str, Any]:
    """Run each key's check; unknown keys and bad values become one-line ConfigErrors."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        at = f"{where}: {key_prefix}{key if key.isprintable() else repr(key)}"
        check = schema.get(key)
        if check is None:
            raise ConfigError(_unknown_key(key, schema), where=at)
        try:
            values[key] = check(value)
        except _BadValueError as exc:
            raise ConfigError(str(exc), where=at) from None
    return values


def _unknown_key(key: str, schema: Mapping[str, object]) -> str:
    if key in ("password", "pass", "auth", "secret", "token"):
        return "unknown key: give passwords through password_env or password_file"
    from difflib import get_close_matches

    close = get_close_matches(key, list(schema), n=1)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


# ---- public API


def resolve_config_path(cli_path: str | None, env: Mapping[str, str]) -> Path | None:
    """Which config file to read: --config, else $CACHETOP_CONFIG, else the XDG default.

    The first two are returned even if missing, so load_config reports them; the XDG default
    ($XDG_CONFIG_HOME or ~/.config, then cachetop/config.toml) only if it is a file.
    """
    if cli_path:
        return Path(cli_path).expanduser()
    if env.get("CACHETOP_CONFIG"):
        return Path(env["CACHETOP_CONFIG"]).expanduser()
    xdg = env.get("XDG_CONFIG_HOME", "")
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    # The XDG spec says to ignore a relative XDG_CONFIG_HOME.
    root = Path(xdg) if os.path.isabs(xdg) else home / ".config"
    candidate = root / "cachetop" / "config.toml"
    return candidate if candidate.is_file() else None


def load_config(path: Path | None, env: Mapping[str, str]) -> Config:
    """Read and validate the config file (if any), then apply CACHETOP_* overrides.

    Args:
        path: From resolve_config_path; None means defaults only.
        env: The environment, for CACHETOP_* overrides and password_env lookups.

    Returns:
        The frozen Config, with warnings for group/world-readable files holding secrets.

    Raises:
        ConfigError: one line, `<file>: <key>: <problem>`.
    """
    config = Config() if path is None else _from_document(_read_toml(path), path, env)
    return _apply_env(config, env)


def targets_from_cli(
    urls: Sequence[str], *, timeout_s: float | None = None, **fields: Any
) -> list[Target]:
    """Targets for positional URLs, in order.

    Args:
        urls: The positional arguments.
        timeout_s: Per-target timeout; None keeps Target's default.
        **fields: Further Target defaults (group, read_only, ...).

    Raises:
        ConfigError: a bad URL (named by position, redacted) or a repeated name.
    """
    if timeout_s is not None:
        fields["timeout_s"] = timeout_s
    targets: list[Target] = []
    for number, url in enumerate(urls, 1):
        try:
            target = parse_target_url(url, **fields)
        except ConfigError as exc:
            raise ConfigError(exc.problem, where=f"target {number} ({exc.where})") from None
        if any(t.name == target.name for t in targets):
            raise ConfigError(f"{target.name!r} is given twice", where=f"target {number}")
        targets.append(target)
    return targets


def with_cli_targets(config: Config, targets: Sequence[Target]) -> Config:
    """The config with command-line targets first, then the file's, names still unique.

    A password typed on the command line is visible to other users through `ps`; it works, but
    earns a warning, as redis-cli gives for `-a`.
    """
    known = {t.name: "the command line" for t in targets}
    for index, target in enumerate(config.targets):
        if target.name in known:
            raise ConfigError(f"name {target.name!r} is also used by a target on the command line",
                              where=f"{config.path}: targets[{index}].name")
    warnings = tuple(w for t in targets if (w := command_line_password_warning(t)))
    warnings += tuple(warning for number, t in enumerate(targets, 1)
                      for warning in _link_local_warning(t, f"target {number}"))
    return replace(config, targets=(*targets, *config.targets),
                   warnings=config.warnings + warnings)


def command_line_password_warning(target: Target) -> str | None:
    """The warning for a password typed in a URL on the command line (None without one)."""
    if target.password is None:
        return None
    return (f"target {target.name}: a password on the command line is visible to other users "
            "(ps); use password_env in the config file")


# ---- the file


MAX_CONFIG_BYTES = 1024 * 1024
MAX_PASSWORD_FILE_BYTES = 4096


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of `path`, which must be a regular file of at most `limit` bytes.

    A FIFO would block the open or the read forever and a device (/dev/zero) never end: the
    file is opened without blocking and refused by its type before anything is read.

    Raises:
        OSError: it cannot be opened or read.
        ValueError: not a regular file, or larger than `limit` (a one-line reason).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
                    or stat.S_ISBLK(mode) else "a directory" if stat.S_ISDIR(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a file")
            raise ValueError(f"not a regular file ({kind})")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, limit + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ValueError(f"larger than {_size_text(limit)}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _size_text(limit: int) -> str:
    return f"{limit // 1024 // 1024} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(path)) from None
    except ValueError as exc:
        raise ConfigError(f"cannot read: {exc}", where=str(path)) from None
    import tomllib  # only a config file needs it (the dashboard reads one after its frame)

    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:  # the message gives line and column, not content
        raise ConfigError(f"invalid TOML: {exc}", where=str(path)) from None


def _from_document(doc: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> Config:
    file, defaults = str(path), Config()
    top = _checked(doc, _TOP_KEYS, file, "")
    thresholds = _thresholds(top.get("thresholds", {}), file)
    timeout_s: float = top.get("timeout", defaults.timeout_s)
    raw_targets = top.get("targets", [])
    if not isinstance(raw_targets, list):
        raise ConfigError("expected [[targets]] tables", where=f"{file}: targets")
    targets: list[Target] = []
    options: dict[str, TargetOptions] = {}
    warnings: list[str] = []
    for index, raw in enumerate(raw_targets):
        target, extra, notes = _target(raw, index, path, env, timeout_s)
        if target.name in options:
            other = next(i for i, t in enumerate(targets) if t.name == target.name)
            raise ConfigError(f"name {target.name!r} is already used by targets[{other}]",
                              where=f"{file}: targets[{index}].name")
        targets.append(target)
        options[target.name] = extra
        warnings += notes
    _check_cache_servers(targets, file)
    warnings += _file_mode_warning(path, raw_targets)
    read_only = top.get("read_only", defaults.read_only)
    return Config(
        targets=tuple(targets), interval_s=top.get("interval", defaults.interval_s),
        history_s=top.get("history", defaults.history_s),
        read_only=read_only, thresholds=thresholds, path=file,
        timeout_s=timeout_s, options=MappingProxyType(options), warnings=tuple(warnings),
        read_only_by=(f"read_only = true in {file}",) if read_only else (),
        alerts=_alerts(top.get("alerts", []), file, env),
    )


def _alerts(raw: object, file: str, env: Mapping[str, str]) -> tuple[AlertRule, ...]:
    if raw == []:
        return ()
    from cachetop.events.rules import parse_rules

    return parse_rules(raw, file, env)


def _check_cache_servers(targets: Sequence[Target], file: str) -> None:
    """`[targets.caches]` links a cache to a Redis or memcached target of this file."""
    kinds = {t.name: t.kind for t in targets}
    for index, target in enumerate(targets):
        for cache, server in target.cache_servers.items():
            where = f"{file}: targets[{index}].caches.{cache if cache.isprintable() else '?'}"
            if server not in kinds:
                from difflib import get_close_matches

                close = get_close_matches(server, list(kinds), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                shown = repr(server) if _SAFE_RE.fullmatch(server) else "this name"
                raise ConfigError(f"no target named {shown} in this file{hint}", where=where)
            if kinds[server] not in ("redis", "memcached"):
                raise ConfigError(f"{server!r} is a {kinds[server]} target; a cache lives on a "
                                  "redis or memcached target", where=where)


def _thresholds(raw: object, file: str) -> Thresholds:
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a table, got {_type_name(raw)}", where=f"{file}: thresholds")
    return Thresholds(**_checked(raw, _THRESHOLD_KEYS, file, "thresholds."))


def _target(
    raw: object, index: int, path: Path, env: Mapping[str, str], timeout_s: float
) -> tuple[Target, TargetOptions, list[str]]:
    """One [[targets]] table -> (Target, TargetOptions, warnings)."""
    where = f"{path}: targets[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a table, got {_type_name(raw)}", where=where)
    keys = _checked(raw, _TARGET_KEYS, str(path), f"targets[{index}].")
    if "url" not in keys:
        raise ConfigError("missing key 'url'", where=where)
    fields: dict[str, Any] = {"timeout_s": timeout_s}
    tls: dict[str, Any] = {}
    for key, value in keys.items():
        destination = _TARGET_SCHEMA[key][1]
        if destination.startswith("tls."):
            tls[destination.removeprefix("tls.")] = value
        elif destination:
            fields[destination] = value
    try:
        target = parse_target_url(keys["url"], name=keys.get("name"),
                                  public_params=keys.get("public_params", ()),
                                  tls=TlsOptions(**tls) if tls else None, **fields)
    except ConfigError as exc:
        raise ConfigError(exc.problem, where=f"{where}.url") from None
    _check_combinations(target, keys, where)
    warnings = _link_local_warning(target, where)
    password = _password(keys, where, path.parent, env, warnings)
    if password is not None:
        source = "password_env" if "password_env" in keys else "password_file"
        if target.password is not None:
            raise ConfigError("the url already holds a password", where=f"{where}.{source}")
        target = replace(target, password=password)
    options = TargetOptions(prefix=keys.get("prefix", ""), password_env=keys.get("password_env"),
                            password_file=keys.get("password_file"))
    return target, options, warnings


def _check_combinations(target: Target, keys: Mapping[str, Any], where: str) -> None:
    """Reject keys that would be silently ignored for this kind of target."""
    metrics = target.kind == "metrics"
    for key in ("convention", "sample_limit", "caches"):
        if key in keys and not metrics:
            raise ConfigError("applies only to http(s) metrics targets", where=f"{where}.{key}")
    if keys.get("convention") == "custom" and "mapping" not in keys:
        raise ConfigError('convention = "custom" needs a mapping table',
                          where=f"{where}.convention")
    if "mapping" in keys and keys.get("convention") != "custom":
        raise ConfigError('needs convention = "custom"', where=f"{where}.mapping")
    if "mapping" in keys:
        from cachetop.collectors.prom_conventions import convention_for

        try:  # checked now, not when the first poll builds the collector
            convention_for("custom", keys["mapping"])
        except ValueError as exc:
            raise ConfigError(str(exc), where=f"{where}.mapping") from None
    if "remap" in keys and target.kind not in TOPOLOGY_KINDS:
        raise ConfigError("applies only to redis+cluster:// and redis+sentinel:// targets",
                          where=f"{where}.remap")
    if "dialect" in keys and metrics:
        raise ConfigError("applies only to redis and memcached targets", where=f"{where}.dialect")
    if "prefix" in keys and keys.get("dialect") != "laravel":
        raise ConfigError('needs dialect = "laravel"', where=f"{where}.prefix")
    if "password_env" in keys and "password_file" in keys:
        raise ConfigError("use either password_env or password_file, not both",
                          where=f"{where}.password_file")


def _password(
    keys: Mapping[str, Any], where: str, base: Path, env: Mapping[str, str], warnings: list[str]
) -> Secret | None:
    """The password named by password_env or password_file, if either is set."""
    if "password_env" in keys:
        name = keys["password_env"]
        if not env.get(name):
            state = "is empty" if name in env else "is not set"
            raise ConfigError(f"environment variable {name} {state}", where=f"{where}.password_env")
        return Secret(env[name])
    if "password_file" not in keys:
        return None
    at = f"{where}.password_file"
    file = base / Path(keys["password_file"]).expanduser()  # relative to the config file
    try:
        text = read_regular_file(file, MAX_PASSWORD_FILE_BYTES).decode("utf-8")
        mode = file.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}", where=at) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file} is not UTF-8 text", where=at) from None
    except ValueError as exc:
        raise ConfigError(f"cannot read {file}: {exc}", where=at) from None
    # Strip one trailing newline, as `echo pw > file` adds one.
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ConfigError(f"{file} is empty", where=at)
    if mode & 0o077:
        warnings.append(f"{at}: {file} is accessible by group or others "
                        f"(mode {mode & 0o777:o}); chmod 600 it")
    return Secret(secret)


# Cloud metadata services that are not link-local addresses: AWS's IPv6 endpoint, and the
# names GCP and AWS resolve to 169.254.169.254 (no DNS is done here).
_METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "instance-data",
                             "instance-data.ec2.internal"})


def _link_local_warning(target: Target, where: str) -> list[str]:
    """Link-local hosts are cloud metadata services: almost never a cache (reliability 4.5)."""
    host = (target.host or "").rstrip(".").lower()
    address = _host_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address is not None and address.is_link_local:
        return [f"{where}.url: {target.host} is link-local (a cloud metadata service?)"]
    if address in _METADATA_ADDRESSES or host in _METADATA_NAMES:
        return [f"{where}.url: {target.host} is a cloud metadata service"]
    return []


def _host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names without DNS, including the legacy IPv4 forms the resolver
    accepts (`2852039166`, `0xa9fea9fe`, `169.254.43518` all reach 169.254.169.254)."""
    if ":" in host:  # only an IPv6 address has one
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    try:  # every IPv4 form ip_address() reads, and the legacy ones; C, fast for names too
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:  # a host name (inet_aton parses; it opens no socket)
        return None


_CREDENTIAL_KEYS = ("password_env", "password_file", "tls_key_file")


def _file_mode_warning(path: Path, raw_targets: list[Any]) -> list[str]:
    """libpq's .pgpass rule, as warnings: a file readable by others should hold no password,
    and one writable by others should name no credential at all: whoever edits a target's
    url there receives the password (from password_env, password_file or the url)."""
    tables = [(i, raw) for i, raw in enumerate(raw_targets) if isinstance(raw, dict)]
    with_password = [i for i, raw in tables if _url_has_password(raw.get("url"))]
    with_credential = [i for i, raw in tables if i in with_password
                       or any(key in raw for key in _CREDENTIAL_KEYS)]
    if not with_credential:
        return []
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    warnings = []
    if mode & 0o022:
        warnings.append(f"{path}: writable by group or others (mode {mode & 0o777:o}) and "
                        f"names a credential in targets[{with_credential[0]}]: whoever edits "
                        "its url receives the password; chmod 600 it")
    if with_password and mode & 0o044:
        warnings.append(f"{path}: accessible by group or others (mode {mode & 0o777:o}) and "
                        f"holds a password in targets[{with_password[0]}].url; chmod 600 it "
                        "or use password_env")
    return warnings


def _url_has_password(url: object) -> bool:
    if not isinstance(url, str):
        return False
    authority = url.partition("://")[2].split("/", 1)[0]
    return "@" in authority and ":" in authority.rpartition("@")[0]


# ---- CACHETOP_* environment overrides


def _env_bool(value: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}
    if value.strip().lower() not in words:
        raise _BadValueError("expected 1/0, true/false, yes/no or on/off")
    return words[value.strip().lower()]


def _env_positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _BadValueError("expected a number of seconds") from None
    return _positive(number)


_ENV_OVERRIDES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "CACHETOP_INTERVAL": ("interval_s", _env_positive),
    "CACHETOP_HISTORY": ("history_s", _env_positive),
    "CACHETOP_READ_ONLY": ("read_only", _env_bool),
}


def _apply_env(config: Config, env: Mapping[str, str]) -> Config:
    changes: dict[str, Any] = {}
    for variable, (attribute, parse) in _ENV_OVERRIDES.items():
        if env.get(variable, "") == "":
            continue
        try:
            changes[attribute] = parse(env[variable])
        except _BadValueError as exc:
            raise ConfigError(str(exc), where=variable) from None
    if "read_only" in changes:  # sticky: read-only can be added here, never taken away
        if changes["read_only"]:
            changes["read_only_by"] = (*config.read_only_by, "CACHETOP_READ_ONLY")
        elif config.read_only:
            del changes["read_only"]
            changes["warnings"] = (*config.warnings, "CACHETOP_READ_ONLY does not turn off "
                                   f"{', '.join(config.read_only_by)}: remove it there")
    return replace(config, **changes) if changes else config
