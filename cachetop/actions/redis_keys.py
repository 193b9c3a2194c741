"""Provides FLUSHDB and single-key delete on Redis: plan_redis_flushdb/run_redis_flushdb and
plan_redis_delete/run_redis_delete.

FLUSHDB is sent as FLUSHDB ASYNC (Redis >= 4) so a big db does not block the server; a disabled
or renamed FLUSHDB is reported, never replaced by something broader. A single key is deleted by
its exact bytes (no glob) with UNLINK.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import threading

import redis

from cachetop.actions.connect import redis_client
from cachetop.actions.plan import (
    ActionError,
    ActionPlan,
    ActionResult,
    DeleteKeySpec,
    FlushDbSpec,
    SampleKey,
    target_label,
)
from cachetop.actions.redis_preview import describe_keys
from cachetop.actions.runner import ProgressFn, Tally, run_action
from cachetop.actions.safety import (
    check_master,
    checked_state,
    confirm_name_for,
    describe_error,
    policy_refusal,
    read_state,
    state_refusal,
    wipe_confirmation,
)
from cachetop.audit import escaped
from collectors.base import Target

FLUSHDB_SAMPLE = 20


def plan_redis_flushdb(target: Target, *, db: int | None = None,
                       read_only: bool = False) -> ActionPlan:
    """Preview FLUSHDB of `db` (default the target's): DBSIZE, a sample of keys, memory share.

    Raises:
        ActionError: the server could not be asked.
    """
    db = target.db if db is None else db
    client = redis_client(target, db)
    try:
        state = read_state(client)
        count, memory = None, None
        sample: tuple[SampleKey, ...] = ()
        if not state.loading:
            count = int(client.execute_command("DBSIZE"))
            _, keys = client.execute_command("SCAN", 0, "COUNT", 100)
            sample, _, _ = describe_keys(client, list(keys)[:FLUSHDB_SAMPLE], with_memory=False)
            memory = _memory_share(client, count)
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None
    finally:
        client.close()
    command = "FLUSHDB ASYNC" if state.version >= (4,) else "FLUSHDB"
    return ActionPlan(
        action="flushdb", target=target, spec=FlushDbSpec(db=db), subject=f"db {db}",
        description=f"{command}: delete every key of db {db} of {target_label(target)}",
        args=(("db", str(db)),), count=count, count_exact=False,
        count_note="DBSIZE now; keys written before the flush runs are deleted too",
        sample=sample, memory_bytes=memory,
        memory_note="this db's share of used_memory_dataset (by key count)",
        warnings=("every key of the db goes, whatever its name; this cannot be undone",),
        refusal=policy_refusal(target, read_only) or state_refusal(target, state),
        instance_id=state.run_id, server_version=state.version,
        **wipe_confirmation(target, True, f"FLUSHDB deletes every key of db {db}"))


def _memory_share(client: redis.Redis, dbsize: int) -> int | None:
    info = client.info("memory")
    keyspace = client.info("keyspace")
    total = sum(int(v.get("keys", 0)) for v in keyspace.values() if isinstance(v, dict))
    used = info.get("used_memory_dataset", info.get("used_memory"))
    if not total or not isinstance(used, int):
        return None
    return round(used * dbsize / total)


def run_redis_flushdb(plan: ActionPlan, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None, *, confirmation: str | None = None,
                      record: bool = True) -> ActionResult:
    """FLUSHDB [ASYNC] after the role check; `deleted` is DBSIZE just before (FLUSHDB itself
    returns no count)."""
    return run_action(plan, _flushdb_body, progress, cancel, confirmation, record)


def _flushdb_body(plan: ActionPlan, tally: Tally) -> None:
    spec = plan.spec
    assert isinstance(spec, FlushDbSpec)
    client = redis_client(plan.target, spec.db)
    try:
        state = checked_state(client, plan.target, plan.instance_id)
        check_master(client, plan.target)
        if tally.cancel.is_set():
            return
        before = int(client.execute_command("DBSIZE"))
        tally.sent(before)
        client.execute_command("FLUSHDB", *(["ASYNC"] if state.version >= (4,) else []))
        tally.deleted_batch(before, before)
        tally.scanned = before
        tally.notes.append("deleted is DBSIZE just before FLUSHDB (which reports no count)")
        tally.complete = True
    finally:
        client.close()


def plan_redis_delete(target: Target, key: bytes, *, db: int | None = None,
                      read_only: bool = False) -> ActionPlan:
    """Preview deleting one exact key: whether it exists, its TTL and size."""
    db = target.db if db is None else db
    client = redis_client(target, db)
    try:
        state = read_state(client)
        sample: tuple[SampleKey, ...] = ()
        if not state.loading:
            sample, _, _ = describe_keys(client, [key], with_memory=state.version >= (4,))
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None
    finally:
        client.close()
    exists = bool(sample) and sample[0].exists is not False
    return ActionPlan(
        action="delete", target=target, spec=DeleteKeySpec(key, db),
        subject=f"key '{escaped(key)}'",
        description=f"UNLINK the key '{escaped(key)}' (exact bytes, no glob) in db {db} of "
                    f"{target_label(target)}", args=(("key", escaped(key)), ("db", str(db))),
        count=1 if exists else 0, count_exact=True,
        count_note="the key exists" if exists else "the key does not exist now",
        sample=sample, memory_bytes=sample[0].size_bytes if sample else None,
        refusal=policy_refusal(target, read_only) or state_refusal(target, state),
        confirm_name=confirm_name_for(target), instance_id=state.run_id,
        server_version=state.version)


def run_redis_delete(plan: ActionPlan, progress: ProgressFn | None = None,
                     cancel: threading.Event | None = None, *, confirmation: str | None = None,
                     record: bool = True) -> ActionResult:
    return run_action(plan, _delete_body, progress, cancel, confirmation, record)


def _delete_body(plan: ActionPlan, tally: Tally) -> None:
    spec = plan.spec
    assert isinstance(spec, DeleteKeySpec)
    client = redis_client(plan.target, spec.db)
    try:
        state = checked_state(client, plan.target, plan.instance_id)
        check_master(client, plan.target)
        tally.sent(1)
        deleted = int(client.execute_command("UNLINK" if state.version >= (4,) else "DEL",
                                             spec.key))
        tally.deleted_batch(1, deleted)
        tally.scanned = 1
        tally.complete = True
    finally:
        client.close()
