"""Helpers for the actions tests: fill a Redis, build a Target for a test server, read audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cachetop.actions import ActionPlan, ActionResult, execute
from cachetop.target_url import parse_target_url
from collectors.base import Target


def audit_lines(state: Path) -> list[str]:
    path = state / "cachetop" / "audit.log"
    return path.read_text().splitlines() if path.exists() else []


def fill(client: Any, keys: list[bytes], ttl: int | None = None, value: bytes = b"v") -> None:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, value, ex=ttl)
    pipe.execute()


def target_of(server: Any, **fields: Any) -> Target:
    return parse_target_url(server.url, **fields)


def matching(client: Any, pattern: bytes) -> set[bytes]:
    return set(client.scan_iter(match=pattern, count=1000))


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
