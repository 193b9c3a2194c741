"""Provides plan_flush() and run_flush(): delete the Redis keys matching a glob, exactly.

The server matches (SCAN MATCH, so the semantics are Redis's own), cachetop deletes what it is
given with UNLINK (DEL before Redis 4) in batches, and counts what the server says it deleted.
The run itself is redis_flush_loop.flush_node (one node, SCAN and UNLINK overlapped, a role
check before every batch, command sizes held to what other clients may wait). The preview
counts with a time-bounded SCAN; when the person has already said yes it only samples
(`count_pages`), and the run counts while it deletes.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import threading

import redis

from cachetop.actions.audit import escaped
from cachetop.actions.connect import redis_client
from cachetop.actions.glob import check_pattern, covers_keyspace
from cachetop.actions.hints import HINT_KEYS, no_match_hint
from cachetop.actions.pacing import Pacer
from cachetop.actions.plan import (
    ActionArgumentError,
    ActionError,
    ActionPlan,
    ActionResult,
    FlushPatternSpec,
    SampleKey,
    target_label,
)
from cachetop.actions.redis_flush_loop import flush_node
from cachetop.actions.redis_preview import (
    count_matches,
    describe_keys,
    random_keys_all_match,
)
from cachetop.actions.runner import ProgressFn, Tally, run_action
from cachetop.actions.safety import (
    describe_error,
    policy_refusal,
    read_state,
    state_refusal,
    wipe_confirmation,
)
from cachetop.collectors.base import Target

SMALL_COUNT_BUDGET_S = 30.0  # a sampling preview's count of a db within exact_upto keys
REDIS_TYPES = ("string", "list", "set", "zset", "hash", "stream")
# Failures that are the server's own answer (it did nothing), or a timeout (the write may still
# run after we look): after these, asking which keys are gone proves nothing.
_NOT_LOST = (redis.exceptions.BusyLoadingError, redis.AuthenticationError, redis.TimeoutError,
             TimeoutError)


def settle_lost_write(tally: Tally, target: Target, db: int, keys: list[bytes],
                      exc: BaseException) -> None:
    """After the connection died during the write of `keys`: count those the server deleted
    although its reply was lost (gone when asked on a new connection to the same server, by
    run_id), so `deleted` stays the true count. A cut before the write reached the server
    finds them all still there."""
    if isinstance(exc, _NOT_LOST):
        return
    try:
        client = redis_client(target, db)
    except ActionError:
        return
    try:
        if read_state(client).run_id != tally.plan.instance_id:
            return  # restarted or failed over: its keys say nothing about our write
        tally.reply_lost(int(client.execute_command("EXISTS", *keys)))
    except (redis.RedisError, OSError):
        return
    finally:
        client.close()


def _check_args(pattern: bytes, type_name: str | None, scan_count: int,
                max_latency_s: float) -> None:
    check_pattern(pattern)
    if type_name is not None and type_name not in REDIS_TYPES:
        raise ActionArgumentError(f"unknown key type {escaped(type_name)!r}: use one of "
                                  f"{', '.join(REDIS_TYPES)}")
    if not 1 <= scan_count <= 100_000:
        raise ActionArgumentError("scan count must be from 1 to 100000")
    if not 0 < max_latency_s <= 10:  # NaN fails too
        raise ActionArgumentError("the latency target must be from 0 to 10 seconds")


def plan_flush(target: Target, pattern: bytes, *, db: int | None = None,
               type_name: str | None = None, read_only: bool = False,
               rate_keys_per_s: float | None = None, scan_count: int = 1000,
               count_budget_s: float = 2.0, sample_size: int = 20,
               max_latency_s: float = 0.001, count_pages: int | None = None,
               exact_upto: int = 0) -> ActionPlan:
    """Preview deleting the keys of `target` (db `db`, default the target's) matching
    `pattern` (a Redis glob, bytes), optionally only keys of TYPE `type_name`. The run keeps
    other clients' wait behind each of its commands near `max_latency_s`; `count_pages`
    bounds the counting SCAN to that many pages (an estimate past them) when the db holds
    more than `exact_upto` keys (a smaller one is counted, exactly and cheaply).

    Returns:
        The plan: the count (exact, or an estimate after `count_budget_s`), up to
        `sample_size` sample keys with TTLs and sizes, estimated memory, and `refusal` if
        policy or the server's state forbids running it.

    Raises:
        ActionError: bad arguments, or the server could not be asked (one line).
    """
    _check_args(pattern, type_name, scan_count, max_latency_s)
    db = target.db if db is None else db
    args = (("pattern", escaped(pattern)), ("db", str(db)), ("type", type_name or ""),
            ("rate", f"{rate_keys_per_s:g}" if rate_keys_per_s else "auto"))
    spec = FlushPatternSpec(pattern, db, type_name, scan_count, rate_keys_per_s, max_latency_s)
    client = redis_client(target, db)
    try:
        state = read_state(client)
        refusal = policy_refusal(target, read_only) or state_refusal(target, state)
        count, exact, note, memory, memory_note = None, False, "not counted: refused", None, ""
        sample: tuple[SampleKey, ...] = ()
        hint: tuple[str, ...] = ()
        dbsize, estimated_whole = 0, False
        if refusal is None:  # refused: say so at once, without scanning the keyspace
            dbsize = int(client.execute_command("DBSIZE"))
            pages, budget = count_pages, count_budget_s
            if count_pages is not None and dbsize <= exact_upto:
                # Small enough to count whatever the host's load: a count promised exact.
                pages, budget = None, max(count_budget_s, SMALL_COUNT_BUDGET_S)
            counted = count_matches(client, pattern, type_name=type_name,
                                    native_type=state.version >= (6,), scan_count=scan_count,
                                    budget_s=budget, sample_size=sample_size, max_pages=pages)
            count, exact, note = counted.count, counted.exact, counted.note
            if count_pages is not None and not exact:
                note += " (a sample only: the run counts exactly as it deletes)"
            sample, sizes, memory_note = describe_keys(client, counted.sample,
                                                       with_memory=state.version >= (4,))
            memory = _memory_estimate(sizes, count)
            estimated_whole = not exact and random_keys_all_match(client, pattern)
            if count == 0:
                hint = no_match_hint(pattern, _some_keys(client), dbsize)
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None
    finally:
        client.close()
    command = "UNLINK" if state.version >= (4,) else "DEL"
    typed = f" of type {type_name}" if type_name else ""
    wipe = covers_keyspace(pattern, count, dbsize) or (type_name is None and estimated_whole)
    return ActionPlan(
        action="flush", target=target, spec=spec, subject=f"pattern '{escaped(pattern)}'",
        description=(f"{command} every key{typed} matching '{escaped(pattern)}' in db {db} of "
                     f"{target_label(target)}, found by SCAN MATCH COUNT {scan_count}"),
        args=args, count=count, count_exact=exact, count_note=note, sample=sample,
        memory_bytes=memory, memory_note=memory_note or "MEMORY USAGE of the sample keys",
        warnings=(*hint, *_warnings(sample)),
        refusal=refusal, instance_id=state.run_id, server_version=state.version,
        **wipe_confirmation(target, wipe, f"the pattern matches every key of db {db} "
                            f"({'' if exact else '~'}{count} of {dbsize})"))


def _some_keys(client: redis.Redis) -> list[bytes]:
    """A few keys of the db from one bare SCAN page, for the no-match hint."""
    _, keys = client.execute_command("SCAN", 0, "COUNT", 100)
    return list(keys)[:HINT_KEYS]


def _memory_estimate(sizes: list[int], count: int | None) -> int | None:
    if not sizes or count is None:
        return None
    return round(sum(sizes) / len(sizes) * count)


def _warnings(sample: tuple[SampleKey, ...]) -> tuple[str, ...]:
    notes = ["keys written while the flush runs may survive it (SCAN covers what exists from "
             "start to end)"]
    if sample and any(s.ttl_s is None and s.exists for s in sample):
        notes.append("some matching keys have no TTL: they would not expire on their own")
    return tuple(notes)


def run_flush(plan: ActionPlan, progress: ProgressFn | None = None,
              cancel: threading.Event | None = None, *, confirmation: str | None = None,
              record: bool = True) -> ActionResult:
    """Run a plan from plan_flush: delete matching keys in batches until the SCAN completes,
    `cancel` is set, or an error or safety check stops it (then "partial" with true counts).

    Args:
        plan: From plan_flush.
        progress: Called in this thread after batches with a Progress.
        cancel: Set it (from any thread) to stop after the current batch.
        confirmation: The typed target name, required when `plan.confirm_name` is set.
        record: Append the audit line (always, except in tests of the harness itself).
    """
    if not isinstance(plan.spec, FlushPatternSpec):
        raise TypeError("run_flush needs a plan from plan_flush")
    return run_action(plan, _flush_body, progress, cancel, confirmation, record)


def _flush_body(plan: ActionPlan, tally: Tally) -> None:
    spec = plan.spec
    assert isinstance(spec, FlushPatternSpec)
    db = spec.db

    def settle(keys: list[bytes], exc: BaseException) -> None:
        settle_lost_write(tally, plan.target, db, keys, exc)

    flush_node(plan.target, spec, tally, Pacer(spec.rate_keys_per_s),
               instance_id=plan.instance_id, settle=settle)
