"""Helpers for the actions tests: fill a Redis, build a Target for a test server, read audit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cachetop.actions import ActionPlan, ActionResult, execute
from cachetop.collectors.base import Target
from cachetop.target_url import parse_target_url


def audit_lines(state: Path) -> list[str]:
    path = state / "cachetop" / "audit.log"
    return path.read_text().splitlines() if path.exists() else []


def cli_env(state: Path, **extra: str) -> dict[str, str]:
    """The environment of a `cachetop` subprocess: no CACHETOP_* of the caller, no user
    config, the audit log under `state`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    env.update(XDG_CONFIG_HOME="/nonexistent-cachetop-test", XDG_STATE_HOME=str(state), **extra)
    return env


def fill(client: Any, keys: list[bytes], ttl: int | None = None, value: bytes = b"v") -> None:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, value, ex=ttl)
    pipe.execute()


def target_of(server: Any, **fields: Any) -> Target:
    return parse_target_url(server.url, **fields)


def matching(client: Any, pattern: bytes) -> set[bytes]:
    return set(client.scan_iter(match=pattern, count=1000))


def restart_at_once(server: Any) -> None:
    """SIGKILL a server and start it again on the same port: a new instance (new pid), as
    after a crash and a supervisor's restart."""
    if server.proc is not None:
        server.proc.kill()
        server.proc.wait(5)
        server.proc = None
    server.start()


def kill(server: Any) -> None:
    """Stop a memcached at once (SIGKILL): it keeps nothing worth a clean shutdown, and a
    SIGTERMed one that has served a connection takes a second to exit."""
    if server.proc is not None:
        server.proc.kill()
        server.proc.wait(5)
    server.close()


def confirmed(plan: ActionPlan, *args: Any) -> ActionResult:
    """execute() with the name the plan asks for typed (a whole-db flush or a prod target):
    for tests whose subject is not the confirmation itself."""
    return execute(plan, *args, confirmation=plan.confirm_name)


def unescape_exact(text: str) -> bytes:
    """An independent reader of text_safety.exact's escapes (the oracle of the test)."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in "\\nrt":
            out += {"\\": b"\\", "n": b"\n", "r": b"\r", "t": b"\t"}[nxt]
            i += 2
        elif nxt == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif nxt in "uU":
            width = 4 if nxt == "u" else 8
            out += chr(int(text[i + 2:i + 2 + width], 16)).encode("utf-8", "surrogatepass")
            i += 2 + width
        else:
            raise AssertionError(f"a lone backslash in {text!r}")
    return bytes(out)
