"""Provides plan_topology_flush(), plan_topology_flushdb(), plan_topology_delete() and
run_topology_flush(): actions on a whole Redis Cluster (every primary; exact keys each on the
primary of its slot) or Sentinel set (its current master), built from the one-node actions.

Each node gets its own plan from redis_flush.plan_flush (its own count, sample, run_id and
refusals) and its own run through redis_flush.run_flush: SCAN MATCH on that node, UNLINK per
hash slot on a cluster node (never a multi-key command across slots), the role checked before
every batch, one audit intent and result line per node. The group plan shows the preview per
node; the run reports one progress (the nodes' figures added up), per-node counts in the
result, and stops at the first node that does not finish (cancel, error, a failover).
On Sentinel the master is asked of the sentinels again at run time: a run never starts on a
master other than the one previewed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from redis.crc import key_slot

from cachetop.actions.audit import escaped
from cachetop.actions.plan import (
    ActionError,
    ActionPlan,
    ActionResult,
    Progress,
    Status,
    TopologySpec,
    target_label,
)
from cachetop.actions.runner import ProgressFn, refuse
from cachetop.actions.safety import confirmation_refusal
from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.topology import PRIMARY, Topology
from cachetop.collectors.topology_collector import node_target, read_topology

SAMPLE_KEYS = 20


def write_nodes(target: Target) -> tuple[list[Target], Topology]:
    """The nodes a write goes to now: every serving primary of a cluster, the master the
    sentinels name for a Sentinel set; as targets with the topology's credentials."""
    try:
        topology = read_topology(target)
    except CollectError as exc:
        raise ActionError(f"{target.name}: {exc.message}") from None
    if topology.kind == "sentinel":
        addresses = [topology.master]
    else:
        addresses = [n.address for n in topology.nodes
                     if n.role == PRIMARY and n.health == "online" and n.slots]
    if not addresses or not all(addresses):
        raise ActionError(f"{target.name}: no primary to write to in the topology")
    return [node_target(target, a) for a in addresses], topology


PlanNode = Callable[[Target], ActionPlan]


def plan_topology_flush(target: Target, pattern: bytes, plan_node: PlanNode) -> ActionPlan:
    """Preview the flush on each write node (`plan_node` is the one-node preview with the
    caller's options and protection) and join the previews into one plan for the group."""
    nodes, topology = write_nodes(target)
    return joined_plan(target, topology, tuple(plan_node(node) for node in nodes),
                       f"UNLINK every key matching '{escaped(pattern)}'",
                       "SCAN MATCH on each node, one UNLINK per hash slot")


def plan_topology_flushdb(target: Target, plan_node: PlanNode) -> ActionPlan:
    """FLUSHDB on every primary of a cluster (the master of a Sentinel set), one typed
    confirmation for all of them."""
    nodes, topology = write_nodes(target)
    return joined_plan(target, topology, tuple(plan_node(node) for node in nodes),
                       "FLUSHDB", "each primary's own keys")


def plan_topology_delete(target: Target, keys: list[bytes],
                         plan_node: Callable[[Target, list[bytes]], ActionPlan]) -> ActionPlan:
    """Exact keys, each on the primary that serves its hash slot (one plan per slot, so no
    command spans slots); on Sentinel all on the master."""
    nodes, topology = write_nodes(target)
    plans: tuple[ActionPlan, ...]
    if topology.kind == "sentinel":
        plans = (plan_node(nodes[0], keys),)
    else:
        by_slot: dict[int, list[bytes]] = {}
        for key in keys:
            by_slot.setdefault(key_slot(key), []).append(key)
        plans = tuple(plan_node(node_target(target, slot_owner(topology, slot, target)), group)
                      for slot, group in sorted(by_slot.items()))
    return joined_plan(target, topology, plans, "delete exact keys",
                       "each key on the primary of its hash slot")


def slot_owner(topology: Topology, slot: int, target: Target) -> str:
    """The serving primary of `slot`, from the shards' slot ranges."""
    for node in topology.primaries():
        for part in node.shard.split(","):
            first, _, last = part.partition("-")
            if first.isdigit() and int(first) <= slot <= int(last or first):
                return node.address
    raise ActionError(f"{target.name}: no primary serves hash slot {slot} now")


def joined_plan(target: Target, topology: Topology, plans: tuple[ActionPlan, ...], what: str,
                how: str) -> ActionPlan:
    """One plan for the group from its nodes' plans: counts added, the first refusal, the
    group's name to type when any node needs a typed name."""
    counts = [p.count for p in plans]
    count = None if any(c is None for c in counts) else sum(c or 0 for c in counts)
    per_node = ", ".join(f"{p.target.name}: {'' if p.count_exact else '~'}"
                         f"{'?' if p.count is None else p.count}" for p in plans)
    first = plans[0]
    refusal = next((p.refusal for p in plans if p.refusal), None)
    confirm = next((p for p in plans if p.confirm_name is not None), None)
    where = (f"the master of {topology.master_name} ({topology.master})"
             if topology.kind == "sentinel" else
             f"{len({p.target.name for p in plans})} primaries")
    return ActionPlan(
        action=first.action, target=target, spec=TopologySpec(plans, topology.master),
        subject=first.subject,
        description=(f"{what} on {where} of {target_label(target)} ({how}); keys per node: "
                     f"{per_node}"),
        args=(*first.args, ("nodes", ",".join(dict.fromkeys(p.target.name for p in plans)))),
        count=count, count_exact=all(p.count_exact for p in plans),
        count_note=f"per node: {per_node}",
        sample=tuple(s for p in plans for s in p.sample)[:SAMPLE_KEYS],
        memory_bytes=sum(p.memory_bytes or 0 for p in plans) or None,
        memory_note=first.memory_note,
        warnings=tuple(dict.fromkeys(w for p in plans for w in p.warnings)),
        refusal=refusal, confirm_name=target.name if confirm is not None else None,
        confirm_why=confirm.confirm_why if confirm is not None else "",
        wipes_all=any(p.wipes_all for p in plans),
        instance_id=",".join(p.instance_id for p in plans),
        server_version=first.server_version,
        protection=tuple(dict.fromkeys(x for p in plans for x in p.protection)),
    )


RunNode = Callable[..., ActionResult]


class _Progress:
    """One progress for the whole run: the finished nodes' figures plus the running one's."""

    def __init__(self, plan: ActionPlan, progress: ProgressFn | None) -> None:
        self.plan, self.progress = plan, progress
        self.scanned = self.deleted = self.gone = 0
        self.elapsed_s = 0.0

    def node(self, p: Progress) -> None:
        if self.progress is None:
            return
        elapsed = self.elapsed_s + p.elapsed_s
        deleted = self.deleted + p.deleted
        self.progress(Progress(self.scanned + p.scanned, deleted, self.gone + p.already_gone,
                               self.plan.count, elapsed, deleted / elapsed if elapsed else 0.0,
                               p.limit_keys_per_s, p.slowdowns, p.phase))

    def add(self, result: ActionResult) -> None:
        self.scanned += result.scanned
        self.deleted += result.deleted
        self.gone += result.already_gone
        self.elapsed_s += result.duration_s


def run_topology_flush(plan: ActionPlan, run_node: RunNode,
                       progress: ProgressFn | None = None,
                       cancel: threading.Event | None = None, *,
                       confirmation: str | None = None, record: bool = True) -> ActionResult:
    """Run each node's flush in turn with `run_node` (redis_flush.run_flush); never raises."""
    spec = plan.spec
    if not isinstance(spec, TopologySpec):
        raise TypeError("run_topology_flush needs a plan of plan_topology_*")
    cancel = cancel or threading.Event()
    reason = plan.refusal or confirmation_refusal(plan, confirmation)
    if not reason and spec.master:
        reason = _master_moved(plan.target, spec.master)
    if reason:
        return refuse(plan, reason, record=record)
    total = _Progress(plan, progress)
    results: list[ActionResult] = []
    for node_plan in spec.node_plans:
        # The group's name was typed; each node's plan asks for its own (its audit line
        # names the node): it is given here, as the group's confirmation covers it.
        result = run_node(node_plan, total.node, cancel, confirmation=node_plan.confirm_name,
                          record=record)
        results.append(result)
        total.add(result)
        if result.status != "done" or cancel.is_set():
            break
    return _joined(plan, results, cancel.is_set())


def _master_moved(target: Target, planned: str) -> str | None:
    try:
        _, topology = write_nodes(target)
    except ActionError as exc:
        return f"refused: {exc}"
    if topology.master != planned:
        return (f"refused: the master of {topology.master_name} is now {topology.master} "
                f"(the preview was of {planned}): preview again")
    return None


def _joined(plan: ActionPlan, results: list[ActionResult], cancelled: bool) -> ActionResult:
    spec = plan.spec
    assert isinstance(spec, TopologySpec)
    ran = len(results)
    statuses = {r.status for r in results}
    status: Status
    if statuses == {"done"} and ran == len(spec.node_plans):
        status = "done"
    elif cancelled and not (statuses - {"done", "cancelled"}):
        status = "cancelled"
    elif statuses <= {"refused"} and not any(r.deleted for r in results):
        status = "refused"
    elif statuses <= {"failed", "refused"} and not any(r.deleted for r in results):
        status = "failed"
    else:
        status = "partial"
    deleted = sum(r.deleted for r in results)
    per_node = ", ".join(f"{r.target_name}: {r.deleted}" for r in results)
    skipped = [p.target.name for p in spec.node_plans[ran:]]
    notes = [f"{r.target_name}: {r.summary}" for r in results]
    if skipped:
        notes.append(f"not started on {', '.join(skipped)}")
    planned = "" if plan.count is None else \
        f" of {'' if plan.count_exact else '~'}{plan.count} planned"
    errors = tuple(f"{r.target_name}: {e}" for r in results for e in r.errors)
    summary = (f"{plan.action} {target_label(plan.target)} {plan.subject}: deleted "
               f"{deleted}{planned} "
               f"on {ran} of {len(spec.node_plans)} node(s) ({per_node}): {status}")
    if errors:
        summary += f": {errors[0]}"
    audit_errors = [r.audit_error for r in results if r.audit_error]
    return ActionResult(
        action=plan.action, target_name=plan.target.name, address=plan.target.address,
        status=status, planned=plan.count, deleted=deleted,
        already_gone=sum(r.already_gone for r in results),
        scanned=sum(r.scanned for r in results), errors=errors,
        duration_s=sum(r.duration_s for r in results), summary=summary, notes=tuple(notes),
        args=plan.args, left=tuple(x for r in results for x in r.left),
        audit_error=audit_errors[0] if audit_errors else None,
        run_id=",".join(r.run_id for r in results),
        per_node=tuple((r.target_name, r.deleted) for r in results),
    )
