"""Provides the audit log: one JSON line per destructive action or refusal, file mode 0600.

The log is `$XDG_STATE_HOME/cachetop/audit.log` (default `~/.local/state/cachetop/audit.log`).
A record holds who (OS user), where (target name and its credential-free address), what
(action, arguments with keys escaped), how much (planned and done counts), errors, duration
and status; never a password: Target.address carries none, and strings are escaped.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cachetop.text_safety import plain


class AuditError(Exception):
    """The audit log cannot be written; an action refuses to run rather than go unrecorded."""


def audit_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the log lives: $XDG_STATE_HOME (if absolute, as the XDG spec says) or the default."""
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
        state = str(home / ".local" / "state")
    return Path(state) / "cachetop" / "audit.log"


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        return f"uid:{os.getuid()}"


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise AuditError(f"cannot write the audit log {path}: {exc.strerror}") from None
    return fd


def ensure_writable(env: Mapping[str, str] | None = None) -> Path:
    """Open (creating, 0600) the log to prove it can be written; before any write action."""
    path = audit_path(env)
    os.close(_open(path))
    return path


def append(record: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Path:
    """Append `record` as one JSON line, in one write(2) (O_APPEND: concurrent writers' lines
    do not interleave). Adds `time` (UTC, ISO 8601), `user` and `host`."""
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "user": os_user(),
            "host": socket.gethostname(), **record}
    data = (json.dumps(line, ensure_ascii=True, default=str) + "\n").encode("ascii")
    path = audit_path(env)
    fd = _open(path)
    try:
        os.write(fd, data)
    except OSError as exc:
        raise AuditError(f"cannot write the audit log {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return path


def escaped(value: str | bytes) -> str:
    """A key, pattern or tag as it appears in the log: control bytes and invalid UTF-8 escaped."""
    return plain(value, limit=1024)
