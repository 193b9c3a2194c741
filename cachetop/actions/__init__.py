"""Provides cachetop's destructive actions, headless: plan -> confirm -> execute -> report.

Every `plan_*` function connects, looks, writes nothing, and returns a frozen ActionPlan (or
raises ActionError). `execute(plan, progress, cancel, confirmation=...)` runs any plan and
returns a frozen ActionResult; it never raises. Both block: call them from a worker thread.
The kind of target (redis, memcached) picks the implementation. A `guard` (the config's
protection.Guard) applies the protections of the instance the plan writes to, however the
target was named; without one, only the target's own flags count.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import replace

from cachetop.actions import memcached_flush as mc
from cachetop.actions import redis_flush, redis_keys, topology_flush
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
    TopologySpec,
)
from cachetop.actions.protection import Guard, Protection
from cachetop.actions.runner import ProgressFn, refuse
from cachetop.actions.tag_dialects import TagIndex
from cachetop.actions.tags import list_tags, run_invalidate
from cachetop.actions.tags import plan_invalidate as _plan_invalidate
from cachetop.collectors.base import TOPOLOGY_KINDS, Target
from cachetop.text_safety import exact

# A preview that need not count (count_all=False) still counts a db of at most
# SAMPLE_SCAN_KEYS keys (exact, a fraction of a second); a larger one gets SAMPLE_PAGES SCAN
# pages for its sample and estimate, and the run's own exact count.
SAMPLE_SCAN_KEYS = 100_000
SAMPLE_PAGES = 10

__all__ = [
    "STATUSES", "ActionArgumentError", "ActionError", "ActionPlan", "ActionResult", "Guard",
    "Progress", "Protection", "RefusedError", "SampleKey", "TagIndex", "execute", "list_tags",
    "plan_delete", "plan_flush", "plan_flushdb", "plan_invalidate", "refuse", "run_invalidate",
]


def _kind(target: Target) -> str:
    if target.kind in TOPOLOGY_KINDS:
        raise ActionArgumentError(f"{target.name} is a whole {target.kind.removeprefix('redis-')}"
                                  ": flush, flushdb and delete span its nodes; for tags, act "
                                  "on a node's own redis:// target")
    if target.kind not in ("redis", "memcached"):
        raise ActionArgumentError(f"{target.name} is a {target.kind} endpoint: actions need "
                                  "a Redis or memcached target")
    return target.kind


def check_rate(rate_keys_per_s: float | None) -> None:
    """A keys/s limit is a positive finite number (None: as fast as the probes allow)."""
    if rate_keys_per_s is not None and not (math.isfinite(rate_keys_per_s)
                                            and rate_keys_per_s > 0):
        raise ActionArgumentError("the rate must be a positive number of keys per second")


def protect(plan: ActionPlan, protection: Protection) -> ActionPlan:
    """The plan under the instance's protection: read-only refuses it, a prod target covering
    the instance makes its name the one to type."""
    refusal = protection.refusal(plan.target.name) or plan.refusal
    confirm, why = plan.confirm_name, plan.confirm_why
    if protection.confirm_name is not None:
        confirm = protection.confirm_name
        covering = "" if confirm == plan.target.name else " covering this instance"
        prod = f"{exact(confirm)} is a prod target{covering}"
        why = f"{prod}, and {plan.confirm_why}" if plan.wipes_all and plan.confirm_why else prod
    return replace(plan, refusal=refusal, confirm_name=confirm, confirm_why=why,
                   protection=protection.describe())


def _protection(target: Target, db: int | None, guard: Guard | None,
                read_only: bool) -> Protection:
    return (guard or Guard()).protection(target, db if target.kind == "redis" else 0,
                                         read_only=read_only)


def plan_flush(target: Target, pattern: bytes, *, db: int | None = None,
               type_name: str | None = None, read_only: bool = False,
               rate_keys_per_s: float | None = None, scan_count: int = 1000,
               count_budget_s: float = 2.0, guard: Guard | None = None,
               max_latency_s: float = 0.001, count_all: bool = True) -> ActionPlan:
    """Preview deleting the keys matching a Redis glob (Redis: SCAN MATCH; memcached:
    metadump filtered with the same glob rules). `db`/`type_name` are Redis only.
    `count_all=False` (the person has already said yes): past SAMPLE_SCAN_KEYS keys the Redis
    preview scans SAMPLE_PAGES pages for its sample and estimate, not the whole keyspace; the
    run counts exactly as it deletes. `max_latency_s`: Redis only, how long
    other clients may wait behind one command of the run (redis_flush_loop)."""
    check_rate(rate_keys_per_s)
    if not (math.isfinite(count_budget_s) and count_budget_s > 0):
        raise ActionArgumentError("the count budget must be a positive number of seconds")
    if target.kind in TOPOLOGY_KINDS:  # each write node previewed on its own, then joined
        return topology_flush.plan_topology_flush(target, pattern, lambda node: plan_flush(
            node, pattern, db=db, type_name=type_name, read_only=read_only,
            rate_keys_per_s=rate_keys_per_s, scan_count=scan_count,
            count_budget_s=count_budget_s, guard=guard))
    if _kind(target) == "memcached":
        if type_name is not None or db not in (None, 0):
            raise ActionArgumentError("memcached has no key types or databases")
        protection = _protection(target, db, guard, read_only)
        read_only = read_only or bool(protection.read_only_by)  # refused: no need to look
        return protect(mc.plan_memcached_flush(target, pattern, read_only=read_only,
                                               rate_keys_per_s=rate_keys_per_s), protection)
    protection = _protection(target, db, guard, read_only)
    pages = None if count_all else SAMPLE_PAGES
    read_only = read_only or bool(protection.read_only_by)
    return protect(redis_flush.plan_flush(
        target, pattern, db=db, type_name=type_name, read_only=read_only,
        rate_keys_per_s=rate_keys_per_s, scan_count=scan_count,
        count_budget_s=count_budget_s, max_latency_s=max_latency_s, count_pages=pages,
        exact_upto=SAMPLE_SCAN_KEYS),
        protection)


def plan_flushdb(target: Target, *, db: int | None = None, delay_s: int = 0,
                 read_only: bool = False, guard: Guard | None = None) -> ActionPlan:
    """Preview FLUSHDB ASYNC of one Redis db, or memcached `flush_all [delay_s]`."""
    if target.kind in TOPOLOGY_KINDS:  # every primary, one typed confirmation for all
        if delay_s:
            raise ActionArgumentError("a delayed flush is a memcached feature (flush_all N)")
        return topology_flush.plan_topology_flushdb(target, lambda node: plan_flushdb(
            node, db=db, read_only=read_only, guard=guard))
    protection = _protection(target, db, guard, read_only)
    read_only = read_only or bool(protection.read_only_by)
    if _kind(target) == "memcached":
        return protect(mc.plan_memcached_flush_all(target, delay_s=delay_s,
                                                   read_only=read_only), protection)
    if delay_s:
        raise ActionArgumentError("a delayed flush is a memcached feature (flush_all N)")
    return protect(redis_keys.plan_redis_flushdb(target, db=db, read_only=read_only),
                   protection)


def plan_delete(target: Target, keys: bytes | Sequence[bytes], *, db: int | None = None,
                read_only: bool = False, guard: Guard | None = None) -> ActionPlan:
    """Preview deleting exact keys (their bytes; no glob): one key, or several."""
    if target.kind in TOPOLOGY_KINDS:  # each key on the primary of its hash slot
        return topology_flush.plan_topology_delete(
            target, [keys] if isinstance(keys, bytes) else list(keys),
            lambda node, some: plan_delete(node, some, db=db, read_only=read_only, guard=guard))
    protection = _protection(target, db, guard, read_only)
    read_only = read_only or bool(protection.read_only_by)  # refused: no need to look
    wanted = [keys] if isinstance(keys, bytes) else list(keys)
    if _kind(target) == "memcached":
        return protect(mc.plan_memcached_delete(target, wanted, read_only=read_only),
                       protection)
    return protect(redis_keys.plan_redis_delete(target, wanted, db=db, read_only=read_only),
                   protection)


def plan_invalidate(target: Target, tags: Sequence[bytes], *, dialect: str | None = None,
                    prefix: bytes = b"", db: int | None = None, read_only: bool = False,
                    batch: int = 500, rate_keys_per_s: float | None = None,
                    guard: Guard | None = None) -> ActionPlan:
    """Preview invalidating `tags` (tags.plan_invalidate) under the instance's protection."""
    check_rate(rate_keys_per_s)
    protection = _protection(target, db, guard, read_only)
    read_only = read_only or bool(protection.read_only_by)
    return protect(_plan_invalidate(target, tags, dialect=dialect, prefix=prefix, db=db,
                                    read_only=read_only, batch=batch,
                                    rate_keys_per_s=rate_keys_per_s), protection)


def execute(plan: ActionPlan, progress: ProgressFn | None = None,
            cancel: threading.Event | None = None, *, confirmation: str | None = None,
            record: bool = True) -> ActionResult:
    """Run any plan. `progress` is called in the calling thread after batches; set `cancel`
    from any thread to stop after the current batch; `confirmation` is the typed target name
    that a prod plan (`plan.confirm_name`) requires. Appends one audit line."""
    memcached = plan.target.kind == "memcached"
    spec = plan.spec
    if isinstance(spec, TopologySpec):  # each node's own plan, run by its own kind
        return topology_flush.run_topology_flush(plan, execute, progress, cancel,
                                                 confirmation=confirmation, record=record)
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
