"""Provides run_action(): the harness every action's run goes through, and Tally, its counters.

The harness applies the rules no action may forget: a refused plan or a missing confirmation
never reaches the server; an intent line is written to the audit log and fsynced before the
first write, and when it cannot be, nothing runs; any failure ends as a result (status with
true counts), never as an exception; a result line follows the intent, and when it cannot be
written the result says so (`audit_error`) and is no longer "ok". Refusals are one line.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis

from cachetop.actions import audit
from cachetop.actions.connect import McError
from cachetop.actions.plan import (
    ActionError,
    ActionPlan,
    ActionResult,
    FlushDbSpec,
    FlushPatternSpec,
    Progress,
    RefusedError,
    Status,
    target_label,
)
from cachetop.actions.safety import confirmation_refusal, describe_error
from cachetop.text_safety import exact, plain

ProgressFn = Callable[[Progress], None]
log = logging.getLogger(__name__)


class Tally:
    """Mutable counters of one run; lives in the worker thread only (Progress is the copy
    that crosses threads)."""

    def __init__(self, plan: ActionPlan, progress: ProgressFn | None,
                 cancel: threading.Event) -> None:
        self.plan, self._progress, self.cancel = plan, progress, cancel
        self.started = time.monotonic()
        self.scanned = self.deleted = self.already_gone = 0
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.left: list[str] = []  # why matching keys were not deleted
        self.complete = False  # the whole index/keyspace was walked without error
        self.refused = False
        self.in_flight = 0  # keys of a write whose reply has not arrived
        self.limit_keys_per_s: float | None = None
        self.slowdowns = 0
        self.skipped: dict[str, int] = {}  # why -> scanned keys that were not sent

    def skip(self, keys: int, why: str) -> None:
        """Count scanned keys that were not sent, and why (the summary's figures add up)."""
        if keys > 0:
            self.skipped[why] = self.skipped.get(why, 0) + keys

    def account(self) -> None:
        """After the body: scanned keys neither answered for nor skipped were not sent, because
        the run stopped (cancel, error, refusal) before their batch."""
        unsent = (self.scanned - self.deleted - self.already_gone - sum(self.skipped.values())
                  - self.in_flight)
        if unsent > 0:
            self.skip(unsent, "not sent: the run stopped first")

    def sent(self, keys: int) -> None:
        self.in_flight = keys

    def deleted_batch(self, sent: int, deleted: int) -> None:
        """Count a write's reply: `deleted` existed, the rest of `sent` were already gone."""
        self.in_flight = 0
        self.deleted += deleted
        self.already_gone += sent - deleted

    def reply_lost(self, still_there: int) -> None:
        """The connection died with a write in flight; `still_there` is how many of its keys
        exist now, read on a new connection (when that fails too, this is not called: the batch
        stays in flight and a note says it may have been deleted). The others are gone, and
        counted as deleted: the server ran the write, only its reply was lost."""
        if not self.in_flight:
            return
        sent, self.in_flight = self.in_flight, 0
        gone = max(0, sent - still_there)
        self.deleted += gone
        self.notes.append(f"the connection dropped with a batch of {sent} keys in flight: "
                          f"{gone} of them were gone on a new connection, counted as deleted")

    def report(self, phase: str = "deleting") -> None:
        """Send a Progress to the callback (every batch: a UI keeps only the latest)."""
        if self._progress is None:
            return
        elapsed = time.monotonic() - self.started
        rate = self.deleted / elapsed if elapsed > 0 else 0.0
        try:
            self._progress(Progress(self.scanned, self.deleted, self.already_gone,
                                    self.plan.count, elapsed, rate, self.limit_keys_per_s,
                                    self.slowdowns, phase))
        except Exception as exc:  # noqa: BLE001 - the caller's callback is a thread boundary
            self.errors.append(f"progress callback failed: {plain(str(exc))[:200]}")
            self.cancel.set()

    def status(self) -> Status:
        if self.refused:
            return "partial" if self.deleted or self.in_flight else "refused"
        if self.errors:
            return "partial" if self.deleted or self.in_flight else "failed"
        if self.complete:
            return "partial" if self.left else "done"
        return "cancelled" if self.cancel.is_set() else "partial"


RunBody = Callable[[ActionPlan, Tally], None]


def run_action(plan: ActionPlan, body: RunBody, progress: ProgressFn | None,
               cancel: threading.Event | None, confirmation: str | None,
               record: bool = True) -> ActionResult:
    """Run `body` under the safety rules; always returns a result, never raises (it is
    what a UI worker thread calls). `record=False` (tests of the harness only) skips the
    audit log."""
    cancel = cancel or threading.Event()
    reason = plan.refusal or confirmation_refusal(plan, confirmation)
    if reason:
        return refuse(plan, reason, record=record)
    run_id = secrets.token_hex(8)
    journal: audit.AuditLog | None = None
    if record:
        try:
            journal = audit.AuditLog()
            journal.write(intent_record(plan, run_id))
        except audit.AuditError as exc:
            if journal is not None:
                journal.close()
            return refuse(plan, f"refused: {exc}", record=False)
    try:
        tally = Tally(plan, progress, cancel)
        _run_body(plan, body, tally)
        return _finish(plan, tally.status(), tally, journal, run_id)
    finally:
        if journal is not None:
            journal.close()


def _run_body(plan: ActionPlan, body: RunBody, tally: Tally) -> None:
    try:
        body(plan, tally)
    except RefusedError as exc:
        tally.refused = True
        tally.errors.append(str(exc))
    except (redis.RedisError, OSError, ActionError) as exc:
        if isinstance(exc, redis.ResponseError | McError):
            tally.in_flight = 0  # the server answered with an error: it did nothing
        tally.errors.append(describe_error(exc))
    except Exception as exc:  # noqa: BLE001 - a worker's boundary: a bug still ends as a result
        log.exception("action %s on %s failed", plan.action, plan.target.name)
        tally.errors.append(f"internal error: {type(exc).__name__}: {plain(str(exc))[:200]}")
    if tally.slowdowns:
        tally.notes.append(f"slowed down {tally.slowdowns} times: the server answered probes "
                           "slowly (other clients were waiting)")
    if tally.in_flight:
        tally.notes.append(f"the last batch of {tally.in_flight} keys got no reply: "
                           "some of them may have been deleted too")
    tally.account()
    tally.report()


def refuse(plan: ActionPlan, reason: str, *, record: bool = True) -> ActionResult:
    """A result for an action that did not start (policy, safety, no confirmation); audited
    as one line."""
    tally = Tally(plan, None, threading.Event())
    tally.errors.append(reason if reason.startswith("refused") else f"refused: {reason}")
    tally.refused = True
    result = _result(plan, "refused", tally, "")
    if not record:
        return result
    return _recorded(result, lambda: audit.append(audit_record(plan, result, "refused")))


def _result(plan: ActionPlan, status: Status, tally: Tally, run_id: str) -> ActionResult:
    duration = time.monotonic() - tally.started
    return ActionResult(
        action=plan.action, target_name=plan.target.name, address=plan.target.address,
        status=status, planned=plan.count, deleted=tally.deleted,
        already_gone=tally.already_gone, scanned=tally.scanned, errors=tuple(tally.errors),
        duration_s=duration, summary=summary_line(plan, status, tally, duration),
        notes=tuple(tally.notes), args=plan.args, left=tuple(tally.left), run_id=run_id,
        skipped=sum(tally.skipped.values()),
        skipped_why=tuple(f"{n} {why}" for why, n in tally.skipped.items()))


def _finish(plan: ActionPlan, status: Status, tally: Tally, journal: audit.AuditLog | None,
            run_id: str) -> ActionResult:
    result = _result(plan, status, tally, run_id)
    if journal is None:
        return result
    return _recorded(result, lambda: journal.write(audit_record(plan, result, "result")))


def _recorded(result: ActionResult, write: Callable[[], object]) -> ActionResult:
    """The result once `write` has put its line in the audit log; when that fails, the result
    says its line is missing, in the summary a script reads too."""
    try:
        write()
    except audit.AuditError as exc:
        message = f"the audit result line was not written: {exc}"
        return replace(result, audit_error=message, summary=f"{result.summary}; {message}")
    return result


def planned_text(plan: ActionPlan) -> str:
    if plan.count is None:
        return ""
    return f" of {'' if plan.count_exact else '~'}{plan.count} planned"


def accounting_text(plan: ActionPlan, tally: Tally) -> str:
    """Where every scanned key went, in figures that add up: `scanned 426: 408 deleted, 18
    already gone, 0 skipped`, then why keys were skipped, a write without a reply, and for a
    pattern flush how the scan differs from the preview's exact count."""
    skipped = sum(tally.skipped.values())
    text = (f"scanned {tally.scanned}: {tally.deleted} deleted, {tally.already_gone} already "
            f"gone, {skipped} skipped")
    if tally.skipped:
        text += " [" + "; ".join(f"{n} {why}" for why, n in tally.skipped.items()) + "]"
    if tally.in_flight:
        text += f", {tally.in_flight} sent without a reply"
    if isinstance(plan.spec, FlushPatternSpec) and plan.count is not None and plan.count_exact:
        if plan.count > tally.scanned and tally.complete:
            text += (f"; {plan.count - tally.scanned} planned keys not found by the run "
                     "(expired or deleted since the preview)")
        elif tally.scanned > plan.count:
            text += (f"; {tally.scanned - plan.count} more than planned (written since the "
                     "preview, or returned twice by SCAN)")
    elif (isinstance(plan.spec, FlushDbSpec) and plan.count is not None and tally.complete
          and tally.scanned != plan.count):  # the size just before, against the preview's
        change = "written" if tally.scanned > plan.count else "expired or deleted"
        text += (f"; {abs(tally.scanned - plan.count)} {change} since the preview counted "
                 f"{plan.count}")
    return text


def summary_line(plan: ActionPlan, status: Status, tally: Tally, duration_s: float) -> str:
    head = f"{plan.action} {target_label(plan.target)} {plan.subject}"
    if status == "refused":
        return f"{head}: {tally.errors[0] if tally.errors else 'refused'}"
    body = (f"deleted {tally.deleted}{planned_text(plan)} ({accounting_text(plan, tally)}) "
            f"in {duration_s:.1f}s: {status}")
    if tally.errors:
        body += f": {tally.errors[0]}"
    elif tally.left:
        body += f": {tally.left[0]}"
    return f"{head}: {body}"


def _where(plan: ActionPlan) -> dict[str, Any]:
    target = plan.target
    db = getattr(plan.spec, "db", None) if target.kind == "redis" else None
    return {"target": exact(target.name), "address": exact(target.address),
            "kind": target.kind, "db": db, "protection": list(plan.protection)}


def intent_record(plan: ActionPlan, run_id: str) -> dict[str, Any]:
    """What is about to run, where, and how much the preview expects: on disk before the
    first write."""
    return {
        "event": "intent", "run": run_id, **_where(plan), "action": plan.action,
        "subject": plan.subject, "args": dict(plan.args), "planned": plan.count,
        "planned_exact": plan.count_exact, "wipes_all": plan.wipes_all,
        "confirmed_name": plan.confirm_name, "instance_id": plan.instance_id,
    }


def audit_record(plan: ActionPlan, result: ActionResult, event: str = "result") -> dict[str, Any]:
    """The result line (`event` "result", same `run` as its intent) or a refusal's line."""
    return {
        "event": event, "run": result.run_id, **_where(plan), "action": plan.action,
        "args": dict(plan.args), "planned": plan.count,
        "planned_exact": plan.count_exact, "done": result.deleted,
        "already_gone": result.already_gone, "scanned": result.scanned,
        "skipped": result.skipped, "skipped_why": list(result.skipped_why),
        "errors": list(result.errors), "notes": list(result.notes), "left": list(result.left),
        "duration_s": round(result.duration_s, 3), "status": result.status,
    }
