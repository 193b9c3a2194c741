"""Provides reread(): `R` in the dashboard reads the config file (and each target's
password_file / password_env) again, so a fixed password takes effect without a restart.

Only credentials are applied to a running fleet: the engine's collectors log in with them at
their next connection. Any other change to a target (URL, TLS, ...), and targets added or
removed, are said and wait for a restart. Reading a few small local files is all this does;
it opens no socket. password_env is read again too, but a running process's environment does
not change from outside: rotating a password without a restart takes a password_file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cachetop.collectors.base import Target
from cachetop.config import Config, load_config


@dataclass(frozen=True, slots=True)
class Reread:
    """The running config with the new credentials in, whose credentials changed, and one
    short line per kind of change (never a secret)."""

    config: Config
    changed: tuple[Target, ...]
    lines: tuple[str, ...]


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def reread(config: Config, env: Mapping[str, str]) -> Reread:
    """Read `config.path` again and compare it with the running config.

    Raises:
        ConfigError: the file is now invalid (the running config stays as it was).
    """
    if config.path is None:
        return Reread(config, (), ("no config file to re-read",))
    fresh = load_config(Path(config.path), env)
    by_name = {t.name: t for t in fresh.targets}
    targets: list[Target] = []
    changed: list[Target] = []
    other: list[str] = []
    for target in config.targets:
        new = by_name.get(target.name)
        if new is not None and (new.password != target.password
                                or new.username != target.username):
            target = replace(target, username=new.username, password=new.password)
            changed.append(target)
        if new is not None and new != target:
            other.append(target.name)
        targets.append(target)
    running = {t.name for t in config.targets}
    added = [name for name in by_name if name not in running]
    removed = [name for name in config.options if name not in by_name]
    lines = []
    if changed:
        lines.append(f"new credentials for {_names([t.name for t in changed])}")
    if other:
        lines.append(f"{_names(other)} changed otherwise: restart cachetop to apply")
    if added or removed:
        lines.append(f"{len(added)} target(s) added, {len(removed)} removed: restart cachetop "
                     "to apply")
    if not lines:
        lines.append(f"{config.path} re-read: no change")
    return Reread(replace(config, targets=tuple(targets)), tuple(changed), tuple(lines))
