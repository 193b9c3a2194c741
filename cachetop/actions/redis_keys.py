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
from collections.abc import Sequence

import redis

from cachetop.actions.audit import escaped
from cachetop.actions.connect import redis_client
from cachetop.actions.plan import (
    ActionArgumentError,
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
from cachetop.collectors.base import Target

FLUSHDB_SAMPLE = 20
SUBJECT_KEYS = 3  # keys named in a summary line; the audit's args have them all
DELETE_BATCH = 500


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
        refusal = policy_refusal(target, read_only) or state_refusal(target, state)
        count, memory = None, None
        sample: tuple[SampleKey, ...] = ()
        if refusal is None:  # refused: say so at once, without reading the keyspace
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
        count_note="not counted: refused" if refusal else
        "DBSIZE now; keys written before the flush runs are deleted too",
        sample=sample, memory_bytes=memory,
        memory_note="this db's share of used_memory_dataset (by key count)",
        warnings=("every key of the db goes, whatever its name; this cannot be undone",),
        refusal=refusal, instance_id=state.run_id, server_version=state.version,
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


def keys_subject(keys: Sequence[bytes]) -> str:
    """`key 'a'`, `keys 'a', 'b'`, or `3 keys 'a', 'b', …` for summary lines."""
    shown = ", ".join(f"'{escaped(k)}'" for k in keys[:SUBJECT_KEYS])
    more = ", …" if len(keys) > SUBJECT_KEYS else ""
    if len(keys) == 1:
        return f"key {shown}"
    return f"{len(keys)} keys {shown}{more}" if more else f"keys {shown}"


def missing_text(missing: Sequence[bytes], where: str) -> str:
    """`no such key 'k' in db 0`, or `no such keys 'a', 'b' in db 0`."""
    word = "key" if len(missing) == 1 else "keys"
    return f"no such {word} {', '.join(repr_key(k) for k in missing[:SUBJECT_KEYS])}" + (
        f" and {len(missing) - SUBJECT_KEYS} more" if len(missing) > SUBJECT_KEYS else "") + (
        f" {where}" if where else "")


def missing_warning(missing: Sequence[bytes], others_exist: bool) -> tuple[str, ...]:
    """The warning for named keys that do not exist while others do (when none exists, the
    plan's `nothing` says so instead)."""
    if not missing or not others_exist:
        return ()
    return (f"{missing_text(missing, '')} now: sent anyway, it counts as already gone",)


def repr_key(key: bytes) -> str:
    return f"'{escaped(key)}'"


def unique_keys(keys: Sequence[bytes]) -> tuple[bytes, ...]:
    """The keys once each, in the order given; an empty key or none at all is a usage error."""
    if not keys or any(not k for k in keys):
        raise ActionArgumentError("give at least one non-empty key")
    return tuple(dict.fromkeys(keys))


def plan_redis_delete(target: Target, keys: Sequence[bytes], *, db: int | None = None,
                      read_only: bool = False) -> ActionPlan:
    """Preview deleting exact keys: whether each exists, its TTL and size."""
    keys = unique_keys(keys)
    db = target.db if db is None else db
    client = redis_client(target, db)
    try:
        state = read_state(client)
        refusal = policy_refusal(target, read_only) or state_refusal(target, state)
        sample: tuple[SampleKey, ...] = ()
        if refusal is None:
            sample, _, _ = describe_keys(client, keys, with_memory=state.version >= (4,))
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None
    finally:
        client.close()
    there = [s for s in sample if s.exists is not False]
    missing = [s.key for s in sample if s.exists is False]
    sizes = [s.size_bytes for s in there if s.size_bytes is not None]
    noun = "the key" if len(keys) == 1 else f"{len(keys)} keys"
    note = (f"{len(there)} of {len(keys)} keys exist" if len(keys) > 1 else
            "the key exists" if there else "the key does not exist now")
    return ActionPlan(
        action="delete", target=target, spec=DeleteKeySpec(keys, db),
        subject=keys_subject(keys),
        description=f"UNLINK {noun} {', '.join(repr_key(k) for k in keys[:SUBJECT_KEYS])}"
                    f"{', …' if len(keys) > SUBJECT_KEYS else ''} (exact bytes, no glob) in db "
                    f"{db} of {target_label(target)}",
        args=(("keys" if len(keys) > 1 else "key", ",".join(escaped(k) for k in keys)),
              ("db", str(db))),
        count=None if refusal else len(there), count_exact=refusal is None,
        count_note="not counted: refused" if refusal else note,
        sample=sample, memory_bytes=sum(sizes) if sizes else None,
        memory_note="MEMORY USAGE" if len(sizes) > 1 else "",
        warnings=missing_warning(missing, bool(there)),
        nothing=missing_text(missing, f"in db {db}") if sample and not there else "",
        refusal=refusal, confirm_name=confirm_name_for(target), instance_id=state.run_id,
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
        command = "UNLINK" if state.version >= (4,) else "DEL"
        replid = check_master(client, plan.target)
        for start in range(0, len(spec.keys), DELETE_BATCH):
            chunk = spec.keys[start:start + DELETE_BATCH]
            if start:
                if tally.cancel.is_set():
                    return
                replid = check_master(client, plan.target, replid)
            tally.scanned += len(chunk)
            tally.sent(len(chunk))
            tally.deleted_batch(len(chunk), int(client.execute_command(command, *chunk)))
            tally.report()
        tally.complete = True
    finally:
        client.close()
