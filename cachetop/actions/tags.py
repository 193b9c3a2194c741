"""Provides list_tags(), plan_invalidate() and run_invalidate(): tag invalidation per dialect.

Redis dialects (cachetop, laravel, symfony) keep an index per tag; invalidation drains it
(tags_redis.drain_index) with the same pacing, per-batch role checks and true counts as a
pattern flush. On memcached (cachetop dialect) a tag is a version key and invalidation is a
version bump (tags_memcached).
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import redis

from cachetop.actions.audit import escaped
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
from cachetop.actions.tag_dialects import TagIndex, redis_dialect, server_now
from cachetop.actions.tag_live import LiveCount, count_live, sampled_live
from cachetop.actions.tags_memcached import bump, check_tag, get_versions, list_version_tags
from cachetop.actions.tags_redis import (
    DrainOutcome,
    DrainStoppedError,
    drain_index,
)
from cachetop.collectors.base import Target

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
    """The tags found on `target`, in natural order (`t:2` before `t:10`), with their index
    sizes and live keys (sampled: tag_live.sampled_live); memcached: versions, no sizes."""
    name = _dialect(target, dialect)
    try:
        if target.kind == "memcached":
            with McConnection(target) as conn:
                return tuple(sorted(list_version_tags(conn, limit), key=natural_key))
        client = redis_client(target, db)
        try:
            d = redis_dialect(name, prefix)
            found = d.list_tags(client, limit)
            lives = sampled_live(client, d, [t.index_key for t in found],
                                 [t.size or 0 for t in found], server_now(client))
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None
    tags = [replace(t, live=live, live_exact=exact)
            for t, (live, exact) in zip(found, lives, strict=True)]
    return tuple(sorted(tags, key=natural_key))


def natural_key(tag: TagIndex) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a tag by its name with the digit runs as numbers: category:2 < category:10."""
    text = tag.tag.decode("utf-8", "surrogateescape")
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.split(r"(\d+)", text) if part) + ((1, tag.detail),)


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
    unknown = [t for t, k in zip(tags, keys, strict=True) if versions[k] is None]
    return ActionPlan(
        **common, description=f"version bump: incr the version key of {_shown(tags)} "
        f"(now {now}); nothing is deleted", count=None, count_exact=False,
        count_note="version bump: values tagged with these tags become misses; memcached "
        "cannot list them, so they are not counted", warnings=(
            "stale values are not deleted: they age out by TTL or LRU, and readers using "
            "cachetop.actions.tagging treat them as misses at once",),
        nothing=_no_such_tag(unknown, "cachetop") + " (no version key: never used here, or "
        "evicted)" if len(unknown) == len(tags) else "",
        refusal=policy_refusal(target, read_only))


def _plan_redis(target: Target, tags: Sequence[bytes], spec: InvalidateSpec, read_only: bool,
                sample_size: int, common: dict[str, Any], budget_s: float = 2.0) -> ActionPlan:
    d = redis_dialect(spec.dialect, spec.prefix)
    client = redis_client(target, spec.db)
    walk = LiveCount()
    missing: list[bytes] = []
    sample: tuple[SampleKey, ...] = ()
    memory: int | None = None
    memory_note = ""
    try:
        state = read_state(client)
        refusal = policy_refusal(target, read_only) or state_refusal(target, state)
        if refusal is None:  # refused: say so at once, without reading the indexes
            now = server_now(client)
            deadline = time.monotonic() + budget_s
            for tag in tags:
                found = walk.indexes_found
                for key in d.index_keys(client, tag):
                    count_live(client, d, key, now, deadline, walk, sample_size)
                if walk.indexes_found == found:
                    missing.append(tag)
            sample, sizes, memory_note = describe_keys(
                client, walk.live_keys + walk.dead_keys, state.version >= (4,))
            live_sizes = [s.size_bytes for s in sample if s.exists and s.size_bytes is not None]
            if live_sizes:  # memory of live keys only: a gone key weighs nothing
                memory = round(sum(live_sizes) / len(live_sizes) * walk.live)
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {describe_error(exc)}") from None
    finally:
        client.close()
    n = walk.indexes_found
    note = ("no index found" if not n else
            f"live keys: {walk.live} of the {walk.members} the indexes list exist"
            if walk.exact else f"estimate: the {budget_s:g}s preview walked part of the indexes "
            f"({walk.members} members) and extrapolated")
    return ActionPlan(
        **common, description=f"invalidate {common['subject']} ({spec.dialect} dialect) on "
        f"{target_label(target)}: RENAME each index aside, delete its member keys in batches, then "
        f"the index ({n} index key{'s' if n != 1 else ''} found)",
        count=None if refusal else walk.live, count_exact=refusal is None and walk.exact,
        count_note="not counted: refused" if refusal else note,
        sample=sample, memory_bytes=memory,
        memory_note=memory_note or "MEMORY USAGE of the live sample keys",
        warnings=_warnings(walk, missing, spec.dialect) if not refusal else (),
        nothing=_no_such_tag(missing, spec.dialect) if len(missing) == len(tags) and
        not refusal else "",
        refusal=refusal, instance_id=state.run_id, server_version=state.version)


def _no_such_tag(missing: Sequence[bytes], dialect: str) -> str:
    word = "tag" if len(missing) == 1 else "tags"
    return (f"no such {word} {_shown(missing)} ({dialect} dialect; `cachetop tags TARGET` "
            "lists the tags)")


def _warnings(walk: LiveCount, missing: list[bytes], dialect: str) -> tuple[str, ...]:
    notes = ["keys tagged after the invalidation starts go to a fresh index and are kept"]
    if missing and walk.indexes_found:
        notes.append(f"{_no_such_tag(missing, dialect)}: skipped")
    gone = walk.members - walk.live
    if gone > 0:
        notes.append(f"{gone} indexed keys no longer exist (expired or deleted): the run "
                     "counts them as already gone")
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
                tally.skip(out.skipped, "their index score says they expired")
                if not out.complete:
                    return
        tally.complete = True
    finally:
        client.close()
