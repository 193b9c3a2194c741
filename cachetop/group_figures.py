"""Provides group_figures(): a cluster's or Sentinel set's own row from its nodes' figures.

Pure: rates and memory are summed over the live nodes, the hit ratio is weighted by each
node's own hits and misses of the interval, the p99 is the worst node's, and a replica's lag
is its primary's replication offset less its own (both from the same poll's INFO).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from cachetop.fleet import Latency, TargetFigures
from cachetop.tracker import with_children_totals

CLUSTER_SLOTS = 16384
EVENTS_KEPT = 50
_ROLE = {"master": "primary", "slave": "replica", "replica": "replica"}


def _p99(f: TargetFigures) -> float | None:
    if f.server_latency.p99_s is not None:
        return f.server_latency.p99_s
    return f.probe_latency.p99_s


def _total(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def node_facts(name: str, info_role: str | None, topo_node: Mapping[str, Any] | None,
               offsets: Mapping[str, int]) -> dict[str, Any]:
    """One node's topology cell: role (INFO's when the node answered, `info_role`; else the
    topology's), shard, slots, link, replication offset and lag in bytes behind its primary."""
    topo = dict(topo_node or {})
    role = _ROLE.get(info_role, info_role) if info_role else topo.get("role", "")
    offset = offsets.get(name)
    primary = topo.get("primary", "")
    lag = None
    if role == "replica" and offset is not None and primary in offsets:
        lag = max(0, offsets[primary] - offset)
    return {"role": role or "?", "shard": topo.get("shard", ""), "slots": topo.get("slots", 0),
            "health": topo.get("health", ""), "link": topo.get("link", ""),
            "primary": primary if role == "replica" else "", "offset": offset,
            "lag_bytes": lag}


def group_figures(group: TargetFigures, topology: Mapping[str, Any],
                  events: Sequence[Mapping[str, str]]) -> TargetFigures:
    """The group's figures from its nodes (`group.caches`, each with its node_facts), with the
    topology summary.

    Args:
        group: The group's figures whose `caches` are the nodes' own figures.
        topology: The last topology read (cachetop.collectors.topology.Topology.as_dict()).
        events: The group's recent topology changes, oldest first.
    """
    nodes = group.caches
    summed = with_children_totals(group)
    live = [n for n in nodes if n.live]
    p99s = [p for p in (_p99(n) for n in live) if p is not None]
    up = len(live)
    degraded = list(group.degraded)
    if up < len(nodes):
        degraded.append(f"{len(nodes) - up} of {len(nodes)} nodes not answering")
    covered = int(topology.get("slots_covered", 0))
    if topology.get("kind") == "cluster" and covered < CLUSTER_SLOTS:
        degraded.append(f"{CLUSTER_SLOTS - covered} slots without a serving primary")
    if topology.get("quorum_ok") is False:
        degraded.append(f"sentinel quorum: {topology.get('quorum', '')}"[:200])
    summary = {**topology, "nodes_up": up, "nodes_total": len(nodes),
               "primaries": sum(1 for n in nodes if n.topology and
                                n.topology["role"] == "primary" and n.live)}
    return replace(
        summed, caches=nodes, topology=summary, events=tuple(events)[-EVENTS_KEPT:],
        server_latency=Latency(None, None, max(p99s) if p99s else None, "worst node"),
        probe_latency=Latency(),
        memory_max_bytes=_total([n.memory_max_bytes for n in live]),
        connections=_total([n.connections for n in live]),
        degraded=tuple(degraded),
    )
