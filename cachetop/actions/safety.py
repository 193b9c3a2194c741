"""Provides the safety checks every destructive action runs: policy, server state, role, errors.

Policy (read-only, prod confirmation) needs no socket. Server state (role, LOADING, cluster,
version, run_id) comes from one INFO at plan time; the role is read again before *every* write
batch, because a failover can demote the master mid-run and a replica configured with
`replica-read-only no` accepts writes (reliability.md section 2, row 7).
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from cachetop.actions.plan import ActionPlan, RefusedError
from cachetop.collectors.base import Target
from cachetop.collectors.redis_info import version_tuple
from cachetop.collectors.redis_parse import info_all
from cachetop.collectors.tls import tls_error
from cachetop.config import PROD_ENVS as PROD_ENVS  # defined where the TUI's badge reads it
from cachetop.text_safety import exact, plain


def policy_refusal(target: Target, read_only: bool) -> str | None:
    """Why policy forbids writes to `target` (None when it allows them)."""
    if read_only or target.read_only:
        where = "this target is configured read_only" if target.read_only else "read-only mode"
        return f"refused: {where}; {target.name} accepts no write actions"
    return None


def confirm_name_for(target: Target) -> str | None:
    """The text to type to confirm a write on `target`: its name on prod targets."""
    return target.name if target.env.strip().lower() in PROD_ENVS else None


def wipe_confirmation(target: Target, wipes_all: bool, why: str) -> dict[str, Any]:
    """ActionPlan fields for the confirmation: a plan that empties a whole db (FLUSHDB,
    flush_all, or a pattern whose preview covers the keyspace) needs the target's name typed,
    like a prod target, whatever its env: `--yes` alone is not enough for it."""
    prod = confirm_name_for(target)
    if not wipes_all:
        return {"confirm_name": prod, "wipes_all": False}
    return {"confirm_name": prod or target.name, "wipes_all": True, "confirm_why": why}


def confirmation_refusal(plan: ActionPlan, confirmation: str | None) -> str | None:
    """Why the run must not start: the name a prod target or a whole-db wipe needs was not
    typed exactly."""
    if plan.confirm_name is None or confirmation == plan.confirm_name:
        return None
    why = plan.confirm_why or f"{exact(plan.confirm_name)} is a prod target"
    return f"refused: {why}; confirm by typing {exact(plan.confirm_name)} exactly"


@dataclass(frozen=True, slots=True)
class RedisState:
    """What a Redis said about itself before an action."""

    role: str
    version: tuple[int, ...]
    loading: bool
    cluster: bool
    run_id: str


def _info_fields(raw: bytes | dict[str, object]) -> dict[str, str]:
    """The fields of an INFO reply: raw bytes (cachetop's own wire) through the collectors'
    parser, the one every poll uses; redis-py's client hands INFO over already parsed."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return info_all(raw)


def _info(client: redis.Redis, section: str | None = None) -> dict[str, str]:
    args = ("INFO", section) if section else ("INFO",)
    return _info_fields(client.execute_command(*args, NEVER_DECODE=True))


def read_state(client: redis.Redis) -> RedisState:
    """One INFO (all default sections), parsed for the checks."""
    fields = _info(client)
    return RedisState(role=fields.get("role", "?"),
                      version=version_tuple(fields.get("redis_version", "")),
                      loading=fields.get("loading") == "1",
                      cluster=fields.get("cluster_enabled") == "1",
                      run_id=fields.get("run_id", ""))


def state_refusal(target: Target, state: RedisState) -> str | None:
    """Why the server's state forbids writing to it now (None when it allows)."""
    if state.loading:
        return f"refused: {target.name} is LOADING its dataset; try again when it has loaded"
    if state.role != "master":
        return (f"refused: {target.name} is a replica (role:{plain(state.role)}); "
                "write actions go to its master")
    if state.cluster and not target.cluster_node:
        return (f"refused: {target.name} runs in cluster mode: act on the whole cluster with "
                "a redis+cluster:// target (each primary, keys routed by slot)")
    return None


def check_master(client: redis.Redis, target: Target, replid: str | None = None) -> str:
    """Before a write batch: is the server still the master we started on? One INFO
    replication round trip. Returns its `master_replid` (a master gets a new one when it
    restarts or is promoted), to pass back on the next call; raises RefusedError if not."""
    return verify_master(client.execute_command("INFO", "replication", NEVER_DECODE=True),
                         target, replid)


def verify_master(info: bytes | dict[str, object], target: Target, replid: str | None) -> str:
    """check_master on an INFO replication reply already read (e.g. pipelined)."""
    fields = _info_fields(info)
    role = fields.get("role", "?")
    if role != "master":
        raise RefusedError(f"{target.name} became a replica (role:{plain(role)}) during the run")
    current = fields.get("master_replid", "")
    if replid and current and current != replid:
        raise RefusedError(f"{target.name} changed identity during the run (master_replid)")
    return current


def checked_state(client: redis.Redis, target: Target, planned_run_id: str) -> RedisState:
    """The state at the start of a run: the server that was previewed (same run_id), and one
    that accepts writes now. Raises RefusedError otherwise."""
    state = read_state(client)
    if planned_run_id and state.run_id and planned_run_id != state.run_id:
        raise RefusedError(f"refused: {target.name} is not the server that was previewed "
                           "(its run_id changed: restarted or failed over); preview again")
    refusal = state_refusal(target, state)
    if refusal:
        raise RefusedError(refusal)
    return state


def describe_error(exc: BaseException) -> str:
    """One line for a failed Redis/memcached call, with a hint for the common cases."""
    if (tls := tls_error(exc)) is not None:
        return f"TLS: {tls.message}"
    lines = str(exc).strip().splitlines()
    message = plain(lines[0][:300]) if lines else type(exc).__name__
    if isinstance(exc, redis.AuthenticationError) or message.startswith(("WRONGPASS", "NOAUTH")):
        return f"authentication failed: {message}"
    if isinstance(exc, redis.exceptions.NoPermissionError) or message.startswith("NOPERM"):
        return f"not permitted by the server's ACL (NOPERM): {message.removeprefix('NOPERM ')}"
    if isinstance(exc, redis.exceptions.ReadOnlyError) or message.startswith("READONLY"):
        return f"the server is a read-only replica: {message}"
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return f"the server is loading its dataset: {message}"
    if message.lower().startswith("unknown command") or "unknown command" in message.lower():
        return f"the command is disabled or renamed on this server: {message}"
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return f"timeout: {message}"
    if isinstance(exc, redis.ConnectionError | OSError):
        return f"connection failed: {message}"
    return message
