"""Provides snapshot_document: a FleetSnapshot as the JSON document metrics.md defines.

Only live targets carry figures: a down target's last good values are a view's business, and a
script must never read stale numbers as current ones (a figure that cannot be computed is null).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from typing import Any

from cachetop.collectors.base import TOPOLOGY_KINDS
from cachetop.events.model import Event
from cachetop.fleet import FleetFigures, FleetSnapshot, Latency, TargetFigures
from cachetop.metrics.top_caches import top_caches


def ms3(seconds: float | None) -> float | None:
    """Milliseconds with three significant figures (0.0123 ms is a fine Redis p50)."""
    if seconds is None or not math.isfinite(seconds):
        return None
    ms = seconds * 1000.0
    if ms == 0:
        return 0.0
    return round(ms, 2 - math.floor(math.log10(abs(ms))))


def _latency(latency: Latency) -> dict[str, float | None]:
    return {"p50": ms3(latency.p50_s), "p95": ms3(latency.p95_s), "p99": ms3(latency.p99_s)}


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return _iso_second(int(wall))


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    """Cached: a fleet's timestamps share few seconds (--batch formats two per target)."""
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def target_document(t: TargetFigures, caches_limit: int | None = None) -> dict[str, Any]:
    """One target; with caches_limit, only that many of its caches, the busiest (top_caches),
    and `caches_cut` says how many of `caches_total` were left out."""
    live = t.live
    figures: dict[str, Any] = {
        "ops_per_sec": t.ops_per_s, "hit_ratio": t.hit_ratio,
        "lifetime_hit_ratio": t.lifetime_hit_ratio, "evictions_per_sec": t.evictions_per_s,
        "expirations_per_sec": t.expirations_per_s,
        "memory_used_bytes": _int(t.memory_used_bytes),
        "memory_max_bytes": _int(t.memory_max_bytes),
        "connections": _int(t.connections), "keys": _int(t.keys),
        "latency_ms": {"server": _latency(t.server_latency), "probe": _latency(t.probe_latency)},
    }
    if not live:
        figures = {k: None for k in figures}
        figures["latency_ms"] = {"server": _latency(Latency()), "probe": _latency(Latency())}
    doc: dict[str, Any] = {
        "name": t.name, "kind": t.kind, "address": t.address, "group": t.group or None,
        "status": t.status, "error": t.error, "role": t.role or None, "version": t.version or None,
        "engine": t.engine or None,
        **figures,
        "server_latency_source": t.server_latency.source or None if live else None,
        "degraded": list(t.degraded), "tls_insecure": t.tls_insecure,
        "status_since": _iso(t.status_since),
        "last_success": _iso(t.last_success),
    }
    if t.lives_on:
        doc["lives_on"] = t.lives_on
    if t.kind in TOPOLOGY_KINDS:
        return _topology_document(t, doc)
    caches = list(t.caches) if live else []
    shown = caches if caches_limit is None else list(top_caches(caches, caches_limit).shown)
    doc["caches"] = [target_document(c) for c in shown]
    doc["caches_total"] = len(caches)
    doc["caches_cut"] = len(caches) - len(shown)
    return doc


_NODE_FACTS = ("role", "shard", "slots", "health", "link", "primary", "offset", "lag_bytes")
_GROUP_FACTS = ("nodes_up", "nodes_total", "primaries", "slots_covered", "master",
                "master_name", "quorum", "quorum_ok", "sentinels", "shards", "failed")


def _topology_document(t: TargetFigures, doc: dict[str, Any]) -> dict[str, Any]:
    """A cluster or Sentinel set: the group figures, its topology, and `nodes` (each a target
    object with its role, shard and slots); a node's `role` is primary or replica."""
    topology = t.topology or {}
    doc["topology"] = {key: topology.get(key) for key in _GROUP_FACTS}
    nodes = []
    for node in t.caches:
        node_doc = target_document(node)
        node_doc.update({key: (node.topology or {}).get(key) for key in _NODE_FACTS})
        del node_doc["caches"], node_doc["caches_total"], node_doc["caches_cut"]
        nodes.append(node_doc)
    doc["nodes"] = nodes
    return doc


def snapshot_events(snap: FleetSnapshot) -> list[dict[str, Any]]:
    """What happened in the snapshot's interval, oldest first: the topology changes of every
    cluster and Sentinel set ({time, target, kind, text}). The hook for a fleet-wide events
    model: every source of events adds its records here."""
    since = snap.taken_at - snap.interval_s - 0.5
    out: list[dict[str, Any]] = []
    for t in snap.targets:
        for event in t.events:
            at = float(event.get("time", 0) or 0)
            if at >= since:
                out.append({"time": _iso(at), "target": event.get("target", t.name),
                            "kind": event.get("kind", ""), "text": event.get("text", ""),
                            "node": event.get("node") or None, "at": at})
    out.sort(key=lambda e: e["at"])
    for event in out:
        del event["at"]
    return out


def event_document(event: Event) -> dict[str, Any]:
    """An event: `time` to the millisecond (several share a second), UTC like the rest."""
    stamp = dt.datetime.fromtimestamp(event.time, dt.UTC)
    return {"time": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
            "target": event.target or None, "kind": event.kind, "text": event.text}


def snapshot_document(snap: FleetSnapshot, caches_limit: int | None = None,
                      events: Sequence[Event] | None = None) -> dict[str, Any]:
    """The document metrics.md defines; caches_limit (None: all) caps each target's caches.
    `events`: the events model's since the previous document (a stream reader sees each
    once); None: the topology changes the snapshot's targets carry for its interval."""
    return {
        "time": _iso(snap.taken_at), "interval_s": snap.interval_s,
        "fleet": _totals(snap.fleet),
        "layers": {name: _totals(f) for name, f in snap.layers.items()},
        "targets": [target_document(t, caches_limit) for t in snap.targets],
        "events": (snapshot_events(snap) if events is None
                   else [event_document(e) for e in events]),
    }


def _totals(f: FleetFigures) -> dict[str, Any]:
    return {"ops_per_sec": f.ops_per_s, "hit_ratio": f.hit_ratio,
            "evictions_per_sec": f.evictions_per_s,
            "memory_used_bytes": _int(f.memory_used_bytes),
            "p99_ms_worst": ms3(f.worst_p99_s),
            "targets_up": f.targets_up, "targets_total": f.targets_total}
