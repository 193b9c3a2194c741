"""Provides list_tags(), plan_invalidate() and run_invalidate(): tag invalidation per dialect.

Redis dialects (cachetop, laravel, symfony) keep an index per tag; invalidation drains it
(tags_redis.drain_index) with the same pacing, per-batch role checks and true counts as a
pattern flush. On memcached (cachetop dialect) a tag is a version key and invalidation is a
version bump (tags_memcached).
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis

from cachetop.actions.connect import McConnection, redis_client
from cachetop.actions.pacing import Pacer
from cachetop.actions.plan import (
    ActionArgumentError,
    ActionError,
    ActionPlan,
    ActionResult,
    InvalidateSpec,
    SampleKey,
    target_label,
)
from cachetop.actions.redis_flush import settle_lost_write
from cachetop.actions.redis_preview import describe_keys
from cachetop.actions.redis_probe import RedisProbe
from cachetop.actions.runner import ProgressFn, Tally, run_action
from cachetop.actions.safety import (
    check_master,
    checked_state,
    confirm_name_for,
    describe_error,
    policy_refusal,
    read_state,
    state_refusal,
)
from cachetop.actions.tag_dialects import RedisDialect, TagIndex, redis_dialect, server_now
from cachetop.actions.tags_memcached import bump, check_tag, get_versions, list_version_tags
from cachetop.actions.tags_redis import (
    DrainOutcome,
    DrainStoppedError,
    drain_index,
    zset_pairs,
)
from cachetop.audit import escaped
from collectors.base import Target

DIALECTS = ("cachetop", "laravel", "symfony")


def _dialect(target: Target, dialect: str | None) -> str:
    name = dialect or target.dialect or "cachetop"
    if name not in DIALECTS:
        raise ActionArgumentError(f"unknown tag dialect {escaped(name)!r}: use "
                                  f"{', '.join(DIALECTS)}")
    if target.kind == "memcached" and name != "cachetop":
        raise ActionArgumentError(f"the {name} dialect keeps its tags in Redis; memcached "
                                  "targets use the cachetop dialect (version keys)")
    return name


def list_tags(target: Target, *, dialect: str | None = None, prefix: bytes = b"",
              db: int | None = None, limit: int = 1000) -> tuple[TagIndex, ...]:
    """The tags found on `target` with their index sizes (memcached: versions, no sizes)."""
    name = _dialect(target, dialect)
    try:
        if target.kind == "memcached":
            with McConnection(target) as conn:
                return tuple(list_version_tags(conn, limit))
        client = redis_client(target, db)
        try:
            return tuple(redis_dialect(name, prefix).list_tags(client, limit))
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None


def _shown(tags: Sequence[bytes]) -> str:
    return ", ".join(f"'{escaped(t)}'" for t in tags)


def plan_invalidate(target: Target, tags: Sequence[bytes], *, dialect: str | None = None,
                    prefix: bytes = b"", db: int | None = None, read_only: bool = False,
                    batch: int = 500, rate_keys_per_s: float | None = None,
                    sample_size: int = 20) -> ActionPlan:
    """Preview invalidating `tags`: keys in each index, a sample of members with whether
    they still exist (Redis), or the version bump (memcached).

    Raises:
        ActionError: no tags, a bad dialect or tag, or the server could not be asked.
    """
    if not tags or any(not t for t in tags):
        raise ActionArgumentError("give at least one non-empty tag")
    name = _dialect(target, dialect)
    db = target.db if db is None else db
    spec = InvalidateSpec(tuple(tags), name, prefix, db, batch, rate_keys_per_s)
    args = (("tags", ",".join(escaped(t) for t in tags)), ("dialect", name), ("db", str(db)),
            ("prefix", escaped(prefix)))
    common = {"action": "invalidate", "target": target, "spec": spec, "args": args,
              "subject": f"tag{'s' if len(tags) > 1 else ''} {_shown(tags)}",
              "confirm_name": confirm_name_for(target)}
    if target.kind == "memcached":
        return _plan_memcached(target, tags, read_only, common)
    return _plan_redis(target, tags, spec, read_only, sample_size, common)


def _plan_memcached(target: Target, tags: Sequence[bytes], read_only: bool,
                    common: dict[str, Any]) -> ActionPlan:
    keys = [check_tag(t) for t in tags]
    try:
        with McConnection(target) as conn:
            versions = get_versions(conn, keys)
    except OSError as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None
    now = ", ".join(f"'{escaped(t)}' at {versions[k] if versions[k] is not None else 'none'}"
                    for t, k in zip(tags, keys, strict=True))
    return ActionPlan(
        **common, description=f"version bump: incr the version key of {_shown(tags)} "
        f"(now {now}); nothing is deleted", count=None, count_exact=False,
        count_note="version bump: values tagged with these tags become misses; memcached "
        "cannot list them, so they are not counted", warnings=(
            "stale values are not deleted: they age out by TTL or LRU, and readers using "
            "cachetop.tagging treat them as misses at once",),
        refusal=policy_refusal(target, read_only))


def _plan_redis(target: Target, tags: Sequence[bytes], spec: InvalidateSpec, read_only: bool,
                sample_size: int, common: dict[str, Any]) -> ActionPlan:
    d = redis_dialect(spec.dialect, spec.prefix)
    client = redis_client(target, spec.db)
    try:
        state = read_state(client)
        count = 0
        members: list[bytes] = []
        indexes: list[bytes] = []
        if not state.loading:
            now = server_now(client)
            for tag in tags:
                for key in d.index_keys(client, tag):
                    indexes.append(key)
                    count += _live_members(client, d.kind, key, now, spec.dialect)
                    members += _first_members(client, d, key, sample_size - len(members))
        sample, sizes, memory_note = describe_keys(client, members, state.version >= (4,))
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None
    finally:
        client.close()
    memory = round(sum(sizes) / len(sizes) * count) if sizes else None
    return ActionPlan(
        **common, description=f"invalidate {common['subject']} ({spec.dialect} dialect) on "
        f"{target_label(target)}: RENAME each index aside, delete its member keys in batches, then "
        f"the index ({len(indexes)} index key{'s' if len(indexes) != 1 else ''} found)",
        count=count, count_exact=True, count_note="members in the indexes now",
        sample=sample, memory_bytes=memory,
        memory_note=memory_note or "MEMORY USAGE of the sample members",
        warnings=_warnings(indexes, sample), refusal=policy_refusal(target, read_only)
        or state_refusal(target, state), instance_id=state.run_id,
        server_version=state.version)


def _live_members(client: redis.Redis, kind: str, key: bytes, now: float, dialect: str) -> int:
    if kind != "zset":
        return int(client.execute_command("SCARD", key))
    forever = int(client.execute_command("ZCOUNT", key, "-inf", 0))
    return forever + int(client.execute_command("ZCOUNT", key, now, "+inf"))


def _first_members(client: redis.Redis, d: RedisDialect, key: bytes,
                   want: int) -> list[bytes]:
    if want <= 0:
        return []
    command = "ZSCAN" if d.kind == "zset" else "SSCAN"
    _, page = client.execute_command(command, key, 0, "COUNT", 100)
    members = [m for m, _ in zset_pairs(page)] if d.kind == "zset" else list(page)
    return [d.member_key(m) for m in members[:want]]


def _warnings(indexes: list[bytes], sample: tuple[SampleKey, ...]) -> tuple[str, ...]:
    notes = ["keys tagged after the invalidation starts go to a fresh index and are kept"]
    if not indexes:
        notes.append("no index found for these tags: nothing to delete")
    if any(s.exists is False for s in sample):
        notes.append("some indexed keys no longer exist (expired or deleted): they count as "
                     "already gone")
    return tuple(notes)


def run_invalidate(plan: ActionPlan, progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None, *, confirmation: str | None = None,
                   record: bool = True) -> ActionResult:
    """Invalidate the plan's tags; Redis: drain each index (cancel puts unprocessed members
    back in the index), memcached: bump each version key."""
    body = _memcached_body if plan.target.kind == "memcached" else _redis_body
    return run_action(plan, body, progress, cancel, confirmation, record)


def _memcached_body(plan: ActionPlan, tally: Tally) -> None:
    spec = plan.spec
    assert isinstance(spec, InvalidateSpec)
    with McConnection(plan.target) as conn:
        for tag in spec.tags:
            if tally.cancel.is_set():
                return
            old, new = bump(conn, check_tag(tag))
            tally.notes.append(f"tag '{escaped(tag)}' version {old if old is not None else 'none'}"
                               f" -> {new}")
        tally.complete = True


def _redis_body(plan: ActionPlan, tally: Tally) -> None:
    spec = plan.spec
    assert isinstance(spec, InvalidateSpec)
    d = redis_dialect(spec.dialect, spec.prefix)
    client = redis_client(plan.target, spec.db)
    try:
        state = checked_state(client, plan.target, plan.instance_id)
        pacer = Pacer(spec.rate_keys_per_s)
        probe = RedisProbe(client, pacer, tally)
        replid = [check_master(client, plan.target)]
        command = "UNLINK" if state.version >= (4,) else "DEL"

        def delete(keys: list[bytes]) -> int:
            deleted, size = 0, pacer.chunk_size(spec.batch)
            for start in range(0, len(keys), size):
                chunk = keys[start:start + size]
                if not pacer.wait(len(chunk), tally.cancel):
                    raise DrainStoppedError
                replid[0] = check_master(client, plan.target, replid[0])
                tally.sent(len(chunk))
                try:
                    n = int(client.execute_command(command, *chunk))
                except (redis.ConnectionError, OSError) as exc:
                    settle_lost_write(tally, plan.target, spec.db, chunk, exc)
                    raise
                tally.deleted_batch(len(chunk), n)
                pacer.record(len(chunk))
                probe.after_batch()
                deleted += n
            return deleted

        skipped = 0
        for tag in spec.tags:
            for index_key in d.index_keys(client, tag):
                out = DrainOutcome()
                seen = tally.scanned

                def on_batch(o: DrainOutcome, base: int = seen) -> None:
                    tally.scanned = base + o.members
                    tally.report()

                try:
                    drain_index(client, d, tag, index_key, batch=spec.batch, delete=delete,
                                stop=tally.cancel.is_set, out=out, on_batch=on_batch)
                except (redis.RedisError, OSError, ActionError):
                    tally.notes.append(f"if '{escaped(out.work_key)}' still exists, it holds the "
                                       f"members of tag '{escaped(tag)}' not yet deleted")
                    raise
                skipped += out.skipped
                if not out.complete:
                    return
        if skipped:
            tally.notes.append(f"{skipped} members skipped: their score says they expired")
        tally.complete = True
    finally:
        client.close()
