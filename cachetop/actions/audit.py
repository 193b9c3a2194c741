"""Provides the audit log: an intent line before an action writes, a result line after.

The log is `$XDG_STATE_HOME/cachetop/audit.log` (default `~/.local/state/cachetop/audit.log`).
An action that cannot write its intent line (fsynced) does not run, so a run killed at any
point, even by SIGKILL, is on record; an intent line without a result line is such a run.
Refusals are one line. A record holds who (the name the system gives the uid; `LOGNAME` only
as `claimed_user`, since anyone can set it), where (target name and its credential-free
address), what (action, arguments with keys escaped by text_safety.exact), how much (planned
and done counts), errors, duration and status; never a password.

The file is opened without following symlinks, under a directory opened the same way, and
both must belong to the user and be writable by nobody else: a shared or planted state
directory could otherwise redirect the log or let others rewrite it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import socket
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cachetop.state_paths import audit_path
from cachetop.text_safety import exact


class AuditError(Exception):
    """The audit log cannot be written; an action refuses to run rather than go unrecorded."""


def os_user() -> str:
    """The name the system's user database gives the effective uid (never $LOGNAME/$USER)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry (containers run with arbitrary uids)
        return f"uid:{uid}"


def who(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`user` and `uid` from the system; `claimed_user` is $LOGNAME (or $USER) when it says
    something else: kept, because it may name the person behind a shared account."""
    env = os.environ if env is None else env
    user = os_user()
    fields: dict[str, Any] = {"user": user, "uid": os.geteuid()}
    claimed = env.get("LOGNAME") or env.get("USER")
    if claimed and claimed != user:
        fields["claimed_user"] = exact(claimed, 256)
    return fields


def _problem(st: os.stat_result, what: str) -> str | None:
    if st.st_uid != os.geteuid():
        return f"{what} belongs to uid {st.st_uid}, not to this user"
    if st.st_mode & 0o022:
        return f"{what} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _open_dir(directory: Path) -> int:
    """The log's directory, created 0700 if missing, opened without following a symlink."""
    try:
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # a symlink there is refused just below
            directory.mkdir(mode=0o700)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symlink, or a file in its place
            raise AuditError(f"refusing the audit log directory {directory}: it is a symlink "
                             "or not a directory") from None
        raise AuditError(f"cannot write the audit log in {directory}: {exc.strerror}") from None
    problem = _problem(os.fstat(fd), "its directory")
    if problem:
        os.close(fd)
        raise AuditError(f"refusing the audit log directory {directory}: {problem}")
    return fd


def _open(path: Path) -> int:
    """The log, opened for appending: no symlink, a regular file with one link, owned by the
    user, writable by nobody else (a file readable by others is made 0600)."""
    dir_fd = _open_dir(path.parent)
    try:
        flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                 | os.O_NONBLOCK)  # a FIFO planted as the log must not block the open
        try:
            fd = os.open(path.name, flags, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise AuditError(f"refusing the audit log {path}: it is a symlink") from None
            raise AuditError(f"cannot write the audit log {path}: {exc.strerror}") from None
        st = os.fstat(fd)
        problem = _problem(st, "it")
        if not stat.S_ISREG(st.st_mode):
            problem = "it is not a regular file"
        elif st.st_nlink != 1:
            problem = f"it has {st.st_nlink} hard links"
        if problem:
            os.close(fd)
            raise AuditError(f"refusing the audit log {path}: {problem}")
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
        os.fsync(dir_fd)  # the file's directory entry survives a crash as well as its lines
        return fd
    finally:
        os.close(dir_fd)


def _line(record: Mapping[str, Any], env: Mapping[str, str] | None) -> bytes:
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **who(env),
            "host": socket.gethostname(), "pid": os.getpid(), **record}
    return (json.dumps(line, ensure_ascii=True, default=str) + "\n").encode("ascii")


class AuditLog:
    """The log, open for one action: its intent and result lines go through the same file
    descriptor, so the result lands in the file the intent went to."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = env
        self.path = audit_path(env)
        self._fd: int | None = _open(self.path)

    def write(self, record: Mapping[str, Any]) -> None:
        """Append `record` as one JSON line (O_APPEND: one write(2), so concurrent writers'
        lines do not interleave) and fsync it: on return it is on disk."""
        if self._fd is None:
            raise AuditError(f"the audit log {self.path} is closed")
        data = _line(record, self.env)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise AuditError(f"cannot write the audit log {self.path}: short write "
                                 f"({written} of {len(data)} bytes; disk full?)")
            os.fsync(self._fd)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append(record: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Path:
    """Append one record (a refusal) and close the log."""
    with AuditLog(env) as log:
        log.write(record)
        return log.path


def escaped(value: str | bytes) -> str:
    """A key, pattern or tag as it appears in the log and summaries: control bytes and invalid
    UTF-8 escaped, and the backslash too, so that every record reads back one way."""
    return exact(value, limit=1024)
