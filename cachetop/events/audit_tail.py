"""Provides AuditTail: the actions run on the fleet's targets, read from the audit log.

The TUI, `cachetop flush ...` in another terminal and any other cachetop of this user append
to the same log (cachetop.actions.audit); the engine reads what was appended since it started,
so an action shows as an event wherever it was run from. Only lines about a target of this
fleet (same name and address) count; the log is read, never written, and a missing or
unreadable log is no events, not an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cachetop.events.model import ACTION
from cachetop.state_paths import audit_path

MAX_READ_BYTES = 1 << 20  # per call: a huge backlog is read over several calls


def action_text(record: Mapping[str, Any], subject: str) -> str:
    """One line for a result or refusal record: what ran, on what, how it ended."""
    action = str(record.get("action", "action"))
    head = f"{action} {subject}".rstrip()
    status = str(record.get("status", ""))
    if record.get("event") == "refused":
        errors = record.get("errors") or []
        why = f": {errors[0]}" if errors and isinstance(errors, list) else ""
        return f"{head}: refused{why}"
    done = record.get("done")
    planned = record.get("planned")
    count = f" deleted {done}" if done is not None else ""
    if count and planned is not None:
        count += f" of {planned}"
    return f"{head}:{count} {status}".rstrip(" :")


class AuditTail:
    """Reads the audit log from where it ended at construction (or `offset`)."""

    def __init__(self, targets: Sequence[tuple[str, str]], path: Path | None = None,
                 offset: int | None = None) -> None:
        self.path = path if path is not None else audit_path()
        self._targets = set(targets)  # (name, address)
        self._subjects: dict[str, str] = {}  # run id -> its intent's subject
        self._partial = b""
        if offset is None:
            try:
                offset = self.path.stat().st_size
            except OSError:
                offset = 0
        self._offset = offset

    def read(self) -> list[tuple[float | None, str, str, str]]:
        """New (time, target, kind, text) since the last call; time None means "now"."""
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self._offset:  # rotated or truncated: start over
                    self._offset, self._partial = 0, b""
                f.seek(self._offset)
                data = f.read(MAX_READ_BYTES)
        except OSError:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        found = []
        for line in lines:
            event = self._event(line)
            if event is not None:
                found.append(event)
        return found

    def _event(self, line: bytes) -> tuple[float | None, str, str, str] | None:
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        target = (str(record.get("target", "")), str(record.get("address", "")))
        if target not in self._targets:
            return None
        kind = record.get("event")
        run = str(record.get("run", ""))
        if kind == "intent":
            self._subjects[run] = str(record.get("subject", ""))
            return None
        if kind not in ("result", "refused"):
            return None
        subject = self._subjects.pop(run, "") or _subject(record)
        return None, target[0], ACTION, action_text(record, subject)


def _subject(record: Mapping[str, Any]) -> str:
    args = record.get("args")
    if isinstance(args, dict) and args:
        return " ".join(f"{k}={v}" for k, v in args.items() if v is not None)
    return ""
