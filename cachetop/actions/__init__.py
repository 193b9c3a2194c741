"""Provides cachetop's destructive actions, headless: plan -> confirm -> execute -> report.

Every `plan_*` function connects, looks, writes nothing, and returns a frozen ActionPlan (or
raises ActionError). `execute(plan, progress, cancel, confirmation=...)` runs any plan and
returns a frozen ActionResult; it never raises. Both block: call them from a worker thread.
The kind of target (redis, memcached) picks the implementation.
"""

from __future__ import annotations

import threading

from cachetop.actions import memcached_flush as mc
from cachetop.actions import redis_flush, redis_keys
from cachetop.actions.plan import (
    STATUSES,
    ActionArgumentError,
    ActionError,
    ActionPlan,
    ActionResult,
    DeleteKeySpec,
    FlushDbSpec,
    FlushPatternSpec,
    InvalidateSpec,
    Progress,
    RefusedError,
    SampleKey,
)
from cachetop.actions.runner import ProgressFn, refuse
from cachetop.actions.tag_dialects import TagIndex
from cachetop.actions.tags import list_tags, plan_invalidate, run_invalidate
from collectors.base import Target

__all__ = [
    "STATUSES", "ActionArgumentError", "ActionError", "ActionPlan", "ActionResult", "Progress",
    "RefusedError", "SampleKey", "TagIndex", "execute", "list_tags", "plan_delete", "plan_flush",
    "plan_flushdb", "plan_invalidate", "refuse", "run_invalidate",
]


def _kind(target: Target) -> str:
    if target.kind not in ("redis", "memcached"):
        raise ActionArgumentError(f"{target.name} is a {target.kind} endpoint: actions need "
                                  "a Redis or memcached target")
    return target.kind


def plan_flush(target: Target, pattern: bytes, *, db: int | None = None,
               type_name: str | None = None, read_only: bool = False,
               rate_keys_per_s: float | None = None, scan_count: int = 1000,
               count_budget_s: float = 2.0) -> ActionPlan:
    """Preview deleting the keys matching a Redis glob (Redis: SCAN MATCH; memcached:
    metadump filtered with the same glob rules). `db`/`type_name` are Redis only."""
    if _kind(target) == "memcached":
        if type_name is not None or db not in (None, 0):
            raise ActionArgumentError("memcached has no key types or databases")
        return mc.plan_memcached_flush(target, pattern, read_only=read_only,
                                       rate_keys_per_s=rate_keys_per_s)
    return redis_flush.plan_flush(target, pattern, db=db, type_name=type_name,
                                  read_only=read_only, rate_keys_per_s=rate_keys_per_s,
                                  scan_count=scan_count, count_budget_s=count_budget_s)


def plan_flushdb(target: Target, *, db: int | None = None, delay_s: int = 0,
                 read_only: bool = False) -> ActionPlan:
    """Preview FLUSHDB ASYNC of one Redis db, or memcached `flush_all [delay_s]`."""
    if _kind(target) == "memcached":
        return mc.plan_memcached_flush_all(target, delay_s=delay_s, read_only=read_only)
    if delay_s:
        raise ActionArgumentError("a delayed flush is a memcached feature (flush_all N)")
    return redis_keys.plan_redis_flushdb(target, db=db, read_only=read_only)


def plan_delete(target: Target, key: bytes, *, db: int | None = None,
                read_only: bool = False) -> ActionPlan:
    """Preview deleting one exact key (its bytes; no glob)."""
    if _kind(target) == "memcached":
        return mc.plan_memcached_delete(target, key, read_only=read_only)
    return redis_keys.plan_redis_delete(target, key, db=db, read_only=read_only)


def execute(plan: ActionPlan, progress: ProgressFn | None = None,
            cancel: threading.Event | None = None, *, confirmation: str | None = None,
            record: bool = True) -> ActionResult:
    """Run any plan. `progress` is called in the calling thread after batches; set `cancel`
    from any thread to stop after the current batch; `confirmation` is the typed target name
    that a prod plan (`plan.confirm_name`) requires. Appends one audit line."""
    memcached = plan.target.kind == "memcached"
    spec = plan.spec
    if isinstance(spec, InvalidateSpec):
        run = run_invalidate
    elif isinstance(spec, FlushPatternSpec):
        run = mc.run_memcached_flush if memcached else redis_flush.run_flush
    elif isinstance(spec, FlushDbSpec):
        run = mc.run_memcached_flush_all if memcached else redis_keys.run_redis_flushdb
    elif isinstance(spec, DeleteKeySpec):
        run = mc.run_memcached_delete if memcached else redis_keys.run_redis_delete
    else:
        raise TypeError(f"not an action plan: {type(spec).__name__}")
    return run(plan, progress, cancel, confirmation=confirmation, record=record)
