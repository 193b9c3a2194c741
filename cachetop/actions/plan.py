"""Provides the data every action exchanges: ActionPlan, Progress, ActionResult, specs, errors.

All of it is frozen, so a plan computed in a worker thread can be shown by the UI thread and then
handed back to another worker to run, and a result can cross threads the same way. Keys stay
bytes (the original key, to delete); `display` strings are made with text_safety.plain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cachetop.collectors.base import Target
from cachetop.text_safety import exact

Status = Literal["done", "partial", "cancelled", "refused", "failed"]
STATUSES: tuple[Status, ...] = ("done", "partial", "cancelled", "refused", "failed")


def target_label(target: Target) -> str:
    """`name (address)`, or just the address when the name is the address; display-safe and
    unambiguous (text_safety.exact)."""
    name, address = exact(target.name), exact(target.address)
    return name if name == address else f"{name} ({address})"


class ActionError(Exception):
    """An action could not be planned or run; the message is one line without a secret."""


class ActionArgumentError(ActionError):
    """The request itself is wrong (a catch-all pattern, an unknown type or dialect, a key
    memcached cannot hold): asking the server again will not help."""


class RefusedError(ActionError):
    """A safety rule forbids the action (read-only, replica, loading, cluster, confirmation)."""


@dataclass(frozen=True, slots=True)
class SampleKey:
    """One key of a preview. `ttl_s` is None for no expiry; `exists` None when unknown."""

    key: bytes
    display: str
    ttl_s: float | None = None
    exists: bool | None = True
    size_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class FlushPatternSpec:
    """Delete the keys matching a Redis glob (`type_name`: only keys of that TYPE).
    `scan_count` is the largest SCAN COUNT (and keys per UNLINK) of the run; the sizes used
    adapt below it to keep other clients' wait behind one command near `max_latency_s`."""

    pattern: bytes
    db: int
    type_name: str | None = None
    scan_count: int = 1000
    rate_keys_per_s: float | None = None
    max_latency_s: float = 0.001


@dataclass(frozen=True, slots=True)
class FlushDbSpec:
    """FLUSHDB of one Redis db, or memcached `flush_all [delay]`."""

    db: int = 0
    delay_s: int = 0


@dataclass(frozen=True, slots=True)
class DeleteKeySpec:
    """Delete exact keys (no glob), each once."""

    keys: tuple[bytes, ...]
    db: int = 0


@dataclass(frozen=True, slots=True)
class InvalidateSpec:
    """Invalidate tags in one dialect; `prefix` is the laravel cache prefix."""

    tags: tuple[bytes, ...]
    dialect: str = "cachetop"
    prefix: bytes = b""
    db: int = 0
    batch: int = 500
    rate_keys_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class TopologySpec:
    """An action over the write nodes of a cluster or Sentinel set (a pattern flush or a
    flushdb on every primary, exact keys each on the primary of its slot): one plan per node,
    run in order. `master` is the Sentinel master the preview was made on ("" for a cluster)."""

    node_plans: tuple[ActionPlan, ...]
    master: str = ""


ActionSpec = FlushPatternSpec | FlushDbSpec | DeleteKeySpec | InvalidateSpec | TopologySpec


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What an action will do, computed before anything is written.

    `count` is the number of keys it expects to delete (None when it cannot know, e.g. a
    memcached version bump); `count_exact` says whether that is a complete count or an
    estimate, `count_note` how it was obtained. `subject` names what is acted on in a few
    words (`pattern 'user:*'`, `db 0`), for summary lines. `refusal`, when set, is why the
    action must not run (read-only, replica, ...): a UI shows it and disables the confirm
    button; running such a plan returns a "refused" result. `confirm_name`, when set, must be
    typed to confirm, `confirm_why` says why (a prod target covers the instance, or the plan
    empties a whole db: `wipes_all`, decided from the preview's counts, not the pattern's
    text). `protection` lists what protects the instance (protection.Protection.describe).
    `instance_id` (Redis run_id, memcached pid) lets the run check it talks to the same server
    it previewed. `nothing`, when set, says there is nothing to act on (`no such key 'k' in db
    0`, `no such tag 't'`): a front says so and exits 1 instead of running a successful no-op.
    """

    action: str
    target: Target
    spec: ActionSpec
    subject: str
    description: str
    args: tuple[tuple[str, str], ...]
    count: int | None
    count_exact: bool
    count_note: str = ""
    sample: tuple[SampleKey, ...] = ()
    memory_bytes: int | None = None
    memory_note: str = ""
    warnings: tuple[str, ...] = ()
    refusal: str | None = None
    confirm_name: str | None = None
    instance_id: str = ""
    server_version: tuple[int, ...] = ()
    confirm_why: str = ""
    wipes_all: bool = False
    protection: tuple[str, ...] = ()
    nothing: str = ""

    @property
    def needs_typed_name(self) -> bool:
        return self.confirm_name is not None

    @property
    def args_dict(self) -> dict[str, str]:
        return dict(self.args)


@dataclass(frozen=True, slots=True)
class Progress:
    """A running action's figures so far; sent to the progress callback after every batch."""

    scanned: int
    deleted: int
    already_gone: int
    planned: int | None
    elapsed_s: float
    rate_keys_per_s: float
    limit_keys_per_s: float | None = None
    slowdowns: int = 0
    phase: str = "deleting"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action did. `deleted` is the sum of server replies (UNLINK/DEL/`DELETED`),
    never the number of keys sent, plus, when a batch's reply was lost with its connection,
    that batch's keys found gone on a new connection to the same server (run_id unchanged; a
    note says so); `already_gone` counts keys sent that no longer existed.
    `scanned` counts matching keys the scan returned (duplicates included), and adds up:
    scanned = deleted + already_gone + skipped (+ a write in flight whose reply never came, a
    note says so); `skipped_why` says why each skipped key was not sent ("12 not sent: the run
    stopped first"). `left` says why matching keys were not deleted (which makes a run
    "partial"). `audit_error` is set when the result line could not be written to the audit
    log (the intent line was)."""

    action: str
    target_name: str
    address: str
    status: Status
    planned: int | None
    deleted: int
    already_gone: int
    scanned: int
    errors: tuple[str, ...]
    duration_s: float
    summary: str
    notes: tuple[str, ...] = ()
    args: tuple[tuple[str, str], ...] = field(default=())
    left: tuple[str, ...] = ()
    audit_error: str | None = None
    run_id: str = ""
    skipped: int = 0
    skipped_why: tuple[str, ...] = ()
    per_node: tuple[tuple[str, int], ...] = ()  # a cluster/Sentinel run: deleted per node

    @property
    def ok(self) -> bool:
        return self.status == "done" and self.audit_error is None
