"""Provides memcached's actions: flush by pattern (metadump + delete), flush_all, delete one key.

Memcached cannot match patterns; cachetop walks the keys with metadump, matches them with
Redis's glob rules (glob.py, proven equal to SCAN MATCH), and deletes the matches in pipelined
`delete` batches, counting the server's DELETED replies. The preview says what that can and
cannot guarantee.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from cachetop.actions.audit import escaped
from cachetop.actions.connect import McConnection, valid_memcached_key
from cachetop.actions.glob import check_pattern, covers_keyspace, glob_match
from cachetop.actions.hints import HINT_KEYS, no_match_hint
from cachetop.actions.memcached_dump import metadump, server_time
from cachetop.actions.pacing import Pacer
from cachetop.actions.plan import (
    ActionArgumentError,
    ActionError,
    ActionPlan,
    ActionResult,
    DeleteKeySpec,
    FlushDbSpec,
    FlushPatternSpec,
    RefusedError,
    SampleKey,
    target_label,
)
from cachetop.actions.redis_keys import (
    keys_subject,
    missing_text,
    missing_warning,
    unique_keys,
)
from cachetop.actions.runner import ProgressFn, Tally, run_action
from cachetop.actions.safety import (
    confirm_name_for,
    describe_error,
    policy_refusal,
    wipe_confirmation,
)
from cachetop.collectors.base import Target
from cachetop.text_safety import plain

_T = TypeVar("_T")

DELETE_BATCH = 200
DUMP_BUDGET_S = 120.0
MAX_WALKS = 3  # the crawler can miss items moving between LRU segments: walk again
METADUMP_GUARANTEES = (
    "metadump is a point-in-time walk of the LRU: keys written after it passes are not seen, "
    "so keys written during the flush may survive it",
    "the crawler can miss items that move between LRU segments while it walks (recently "
    "read ones): the count may be short; the run walks again after deleting, up to "
    f"{MAX_WALKS} times, until a walk finds no match",
    "the count is what the walk saw now; the run walks again and deletes what matches then",
    "matching is done by cachetop, with Redis glob rules, on the URL-decoded keys",
)


def _ask(target: Target, what: str, fn: Callable[[McConnection], _T]) -> _T:
    """fn(connection) on a fresh connection to `target`: the one place a socket error becomes
    an ActionError, naming `what` was asked."""
    try:
        with McConnection(target) as conn:
            return fn(conn)
    except ActionError:
        raise
    except OSError as exc:
        raise ActionError(f"{target.name}: {what}: {describe_error(exc)}") from None


def _ttl(exp: int, now: int) -> float | None:
    return None if exp <= 0 else float(max(exp - now, 0))


def plan_memcached_flush(target: Target, pattern: bytes, *, read_only: bool = False,
                         rate_keys_per_s: float | None = None, dump_budget_s: float = 30.0,
                         sample_size: int = 20) -> ActionPlan:
    """Preview deleting the memcached keys matching a Redis glob: exact count of what one
    metadump walk sees now, a sample with TTLs, and the exact sum of item sizes.

    Raises:
        ActionError: a catch-all pattern, or metadump is unavailable (`-X`), or no connection.
    """
    check_pattern(pattern)

    others: list[bytes] = []  # a few keys of the instance, for the no-match hint

    def walk(conn: McConnection) -> tuple[int, int, list[SampleKey], str, int]:
        now, pid = server_time(conn)
        count, size, total = 0, 0, 0
        sample: list[SampleKey] = []
        for item in metadump(conn, dump_budget_s):
            total += 1
            if glob_match(pattern, item.key):
                count, size = count + 1, size + item.size
                if len(sample) < sample_size:
                    sample.append(SampleKey(item.key, plain(item.key, 200), _ttl(item.exp, now),
                                            True, item.size))
            elif len(others) < HINT_KEYS:
                others.append(item.key)
        return count, size, sample, pid, total

    refusal = policy_refusal(target, read_only)
    count, size, sample, pid, total = (
        (0, 0, [], "", 0) if refusal  # refused: say so at once, without walking the items
        else _ask(target, "metadump", walk))
    wipe = covers_keyspace(pattern, count, total)
    return ActionPlan(
        action="flush", target=target,
        spec=FlushPatternSpec(pattern, 0, None, DELETE_BATCH, rate_keys_per_s),
        subject=f"pattern '{escaped(pattern)}'",
        description=(f"delete every memcached key matching '{escaped(pattern)}' on "
                     f"{target_label(target)}, listed by lru_crawler metadump"),
        args=(("pattern", escaped(pattern)),
              ("rate", f"{rate_keys_per_s:g}" if rate_keys_per_s else "auto")),
        count=None if refusal else count, count_exact=not refusal,
        count_note="not counted: refused" if refusal else "exact for one metadump walk, now",
        sample=tuple(sample), memory_bytes=None if refusal else size,
        memory_note="sum of the items' sizes",
        warnings=(*no_match_hint(pattern, others, total),
                  *METADUMP_GUARANTEES) if not count and not refusal else METADUMP_GUARANTEES,
        refusal=refusal,
        instance_id=pid, **wipe_confirmation(
            target, wipe, f"the pattern matches every item the walk listed ({count} of "
            f"{total})"))


def run_memcached_flush(plan: ActionPlan, progress: ProgressFn | None = None,
                        cancel: threading.Event | None = None, *,
                        confirmation: str | None = None, record: bool = True) -> ActionResult:
    """Walk metadump again, then delete the matching keys in paced, pipelined batches."""
    return run_action(plan, _flush_body, progress, cancel, confirmation, record)


def _check_instance(conn: McConnection, plan: ActionPlan) -> None:
    _, pid = server_time(conn)
    if plan.instance_id and pid and pid != plan.instance_id:
        raise RefusedError(f"refused: {plan.target.name} restarted since the preview "
                           "(its pid changed); preview again")


def _flush_body(plan: ActionPlan, tally: Tally) -> None:
    spec = plan.spec
    assert isinstance(spec, FlushPatternSpec)
    with McConnection(plan.target) as conn:
        _check_instance(conn, plan)
        pacer = Pacer(spec.rate_keys_per_s)
        pacer.set_baseline([_probe(conn) for _ in range(3)])
        # Keys whose delete said NOT_FOUND (-> reported as still listed): not sent again.
        not_found: dict[bytes, bool] = {}
        for walk in range(1, MAX_WALKS + 1):
            tally.report("listing")
            keys = _matching_keys(conn, spec.pattern, tally, not_found)
            if not keys:
                tally.complete = True
                return
            if walk > 1:
                tally.notes.append(f"walk {walk} found {len(keys)} more matching keys "
                                   "(missed by the crawler, or written meanwhile)")
            if not _delete_all(conn, keys, spec, pacer, tally, not_found):
                return
        tally.left.append(f"matching keys were still listed after {MAX_WALKS} walks "
                          "(a writer keeps adding them?)")


def _matching_keys(conn: McConnection, pattern: bytes, tally: Tally,
                   not_found: dict[bytes, bool]) -> list[bytes]:
    """The matching keys a walk lists now, less those a delete already said were not there:
    one listed again was not deleted, and the run says so (`left`, so "partial")."""
    listed = [item.key for item in metadump(conn, DUMP_BUDGET_S)
              if glob_match(pattern, item.key)]
    tally.scanned += len(listed)
    stuck = [key for key in listed if key in not_found]
    tally.skip(len(stuck), "listed again after NOT_FOUND: not sent again")
    fresh = [key for key in stuck if not not_found[key]]
    if fresh:
        more = f" and {len(fresh) - 1} more" if len(fresh) > 1 else ""
        tally.left.append(f"'{escaped(fresh[0])}'{more} still listed after the server "
                          "answered NOT_FOUND to its delete: not deleted")
        not_found.update(dict.fromkeys(fresh, True))  # reported once
    return [key for key in listed if key not in not_found] if stuck else listed


def _delete_all(conn: McConnection, keys: list[bytes], spec: FlushPatternSpec, pacer: Pacer,
                tally: Tally, not_found: dict[bytes, bool]) -> bool:
    """Delete `keys` in paced batches; False if cancelled."""
    start = 0
    while start < len(keys):
        batch = keys[start:start + pacer.chunk_size(spec.scan_count)]
        if not pacer.wait(len(batch), tally.cancel):
            return False
        tally.sent(len(batch))
        deleted, missing = delete_many(conn, batch)
        tally.deleted_batch(len(batch), deleted)
        not_found.update((key, not_found.get(key, False)) for key in missing)
        pacer.record(len(batch))
        if pacer.observe_probe(_probe(conn)):
            tally.slowdowns = pacer.slowdowns
        tally.limit_keys_per_s = pacer.current
        tally.report()
        start += len(batch)
    return True


def _delete_command(key: bytes) -> bytes:
    """`delete <key>` for a key the text protocol can carry; the meta delete with the key in
    base64 (`md <b64> b`, memcached >= 1.6) for one it cannot (spaces, control bytes),
    which is how such keys are stored in the first place (`ms <b64> b`)."""
    if valid_memcached_key(key) is None:
        return b"delete " + key + b"\r\n"
    return b"md " + base64.b64encode(key) + b" b\r\n"


def delete_many(conn: McConnection, keys: list[bytes]) -> tuple[int, list[bytes]]:
    """Pipelined deletes: one write, then one reply line per key. Returns the DELETED/HD
    count and the keys the server said were not there (NOT_FOUND/NF).

    Raises:
        ActionError: a reply that is neither (an old server without meta commands answers
            `md` with ERROR): the run stops there, partial, saying so.
    """
    conn.send(b"".join(_delete_command(key) for key in keys))
    deleted = 0
    missing: list[bytes] = []
    for key in keys:
        line = conn.read_line()
        if line in (b"DELETED", b"HD"):
            deleted += 1
        elif line in (b"NOT_FOUND", b"NF"):
            missing.append(key)
        else:
            meta = valid_memcached_key(key) is not None
            hint = (" (deleting a key with spaces or control bytes needs memcached >= 1.6 "
                    "meta commands)") if meta else ""
            raise ActionError(f"unexpected reply to delete '{escaped(key)}': "
                              f"{plain(line)[:200]}{hint}")
    return deleted, missing


def _probe(conn: McConnection) -> float:
    started = time.perf_counter()
    conn.command(b"version")
    return time.perf_counter() - started


def plan_memcached_flush_all(target: Target, *, delay_s: int = 0,
                             read_only: bool = False) -> ActionPlan:
    """Preview `flush_all [delay]`: every item of the instance (curr_items, bytes)."""
    if delay_s < 0:
        raise ActionArgumentError("the flush_all delay must be 0 or more seconds")
    stats = _ask(target, "stats", lambda conn: conn.stats())
    later = f" in {delay_s}s" if delay_s else ""
    return ActionPlan(
        action="flush_all", target=target, spec=FlushDbSpec(0, delay_s), subject="all items",
        description=f"flush_all{later}: invalidate every item of {target_label(target)}",
        args=(("delay_s", str(delay_s)),), count=int(stats.get("curr_items", 0)),
        count_exact=False, count_note="curr_items now", memory_bytes=int(stats.get("bytes", 0)),
        memory_note="bytes used by items now",
        warnings=("every item goes, whatever its key; this cannot be undone",),
        refusal=policy_refusal(target, read_only), instance_id=stats.get("pid", ""),
        **wipe_confirmation(target, True, "flush_all invalidates every item of the instance"))


def run_memcached_flush_all(plan: ActionPlan, progress: ProgressFn | None = None,
                            cancel: threading.Event | None = None, *,
                            confirmation: str | None = None, record: bool = True) -> ActionResult:
    return run_action(plan, _flush_all_body, progress, cancel, confirmation, record)


def _flush_all_body(plan: ActionPlan, tally: Tally) -> None:
    spec = plan.spec
    assert isinstance(spec, FlushDbSpec)
    with McConnection(plan.target) as conn:
        _check_instance(conn, plan)
        before = int(conn.stats().get("curr_items", 0))
        tally.sent(before)
        conn.command(b"flush_all" + (b" %d" % spec.delay_s if spec.delay_s else b""))
        tally.deleted_batch(before, before)
        tally.scanned = before
        tally.notes.append("deleted is curr_items just before flush_all (which reports no "
                           "count)" + (f"; items go in {spec.delay_s}s" if spec.delay_s else ""))
        tally.complete = True


def plan_memcached_delete(target: Target, keys: Sequence[bytes], *,
                          read_only: bool = False) -> ActionPlan:
    """Preview deleting exact keys: each exists? TTL and size via `mg <key> s t` (1.6)."""
    keys = unique_keys(keys)
    for key in keys:
        problem = valid_memcached_key(key)
        if problem:
            raise ActionArgumentError(f"cannot delete this key: {problem}")
    replies = _ask(target, "mg", lambda conn: [_meta_get(conn, key) for key in keys])
    sample = tuple(SampleKey(key, plain(key, 200), reply[1] if reply else None,
                             None if reply is None else reply[0], reply[2] if reply else None)
                   for key, reply in zip(keys, replies, strict=True))
    known = all(s.exists is not None for s in sample)
    there = [s for s in sample if s.exists is not False]
    missing = [s.key for s in sample if s.exists is False]
    if not known:
        note = "unknown (no meta commands)"
    elif len(keys) > 1:
        note = f"{len(there)} of {len(keys)} keys exist"
    else:
        note = "the key exists" if there else "the key does not exist now"
    return ActionPlan(
        action="delete", target=target, spec=DeleteKeySpec(keys), subject=keys_subject(keys),
        description=f"delete the memcached {keys_subject(keys)} on {target_label(target)}",
        args=(("keys" if len(keys) > 1 else "key", ",".join(escaped(k) for k in keys)),),
        count=len(there) if known else None, count_exact=known, count_note=note,
        sample=sample,
        warnings=missing_warning(missing, bool(there)),
        nothing=missing_text(missing, "") if known and not there else "",
        refusal=policy_refusal(target, read_only), confirm_name=confirm_name_for(target))


def _meta_get(conn: McConnection, key: bytes) -> tuple[bool, float | None, int | None] | None:
    conn.send(b"mg " + key + b" s t\r\n")
    line = conn.read_line()
    if line == b"EN":
        return False, None, None
    if not line.startswith(b"HD"):
        return None  # ERROR on servers without meta commands: existence unknown
    flags = {part[:1]: part[1:] for part in line.split(b" ")[1:] if part}
    ttl = float(flags[b"t"]) if flags.get(b"t", b"-1").lstrip(b"-").isdigit() else None
    size = int(flags[b"s"]) if flags.get(b"s", b"").isdigit() else None
    return True, (ttl if ttl is not None and ttl >= 0 else None), size


def run_memcached_delete(plan: ActionPlan, progress: ProgressFn | None = None,
                         cancel: threading.Event | None = None, *,
                         confirmation: str | None = None, record: bool = True) -> ActionResult:
    return run_action(plan, _delete_body, progress, cancel, confirmation, record)


def _delete_body(plan: ActionPlan, tally: Tally) -> None:
    spec = plan.spec
    assert isinstance(spec, DeleteKeySpec)
    with McConnection(plan.target) as conn:
        for start in range(0, len(spec.keys), 500):
            chunk = list(spec.keys[start:start + 500])
            if start and tally.cancel.is_set():
                return
            tally.scanned += len(chunk)
            tally.sent(len(chunk))
            tally.deleted_batch(len(chunk), delete_many(conn, chunk)[0])
            tally.report()
        tally.complete = True
