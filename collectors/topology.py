"""Provides the topology of a Redis Cluster or a Sentinel set as data, read from the servers'
own replies by pure functions, and the diff of two reads (failovers, nodes gone, slots moved).

Nothing here opens a socket: cachetop.collectors.topology_collector sends the commands and hands the
decoded replies (hiredis: lists of bytes and ints) to these parsers, so every parser is tested
on replies captured from real servers (tests/fixtures/topology).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

CLUSTER_SLOTS = 16384
PRIMARY, REPLICA = "primary", "replica"


@dataclass(frozen=True, slots=True)
class Node:
    """One data node as the topology names it.

    `address` is where cachetop connects (after the address map); `announced` is what the
    server said, when the map changed it. `shard` is a stable label: the slot ranges the shard
    serves (they stay with the shard through a failover), or the master name on Sentinel.
    `health` is "online", "fail", "loading" or "down" (a Sentinel's s_down/o_down).
    """

    address: str
    role: str
    node_id: str = ""
    shard: str = ""
    slots: int = 0
    health: str = "online"
    link: str = "connected"
    offset: int | None = None
    primary: str = ""  # a replica's primary (its address)
    announced: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the wire and JSON (the engine protocol carries no dataclasses)."""
        return {"address": self.address, "role": self.role, "node_id": self.node_id,
                "shard": self.shard, "slots": self.slots, "health": self.health,
                "link": self.link, "offset": self.offset, "primary": self.primary}


@dataclass(frozen=True, slots=True)
class Topology:
    """One read of a cluster (`kind` "cluster") or a Sentinel set ("sentinel").

    `slots_covered` counts slots whose shard has a healthy primary (16384 when all is well).
    On Sentinel, `master` is the address the sentinels name now, `quorum` CKQUORUM's line and
    `quorum_ok` whether it said OK; `sentinels` are the sentinels' addresses.
    """

    kind: str
    nodes: tuple[Node, ...]
    slots_covered: int = 0
    master: str = ""
    master_name: str = ""
    quorum: str = ""
    quorum_ok: bool | None = None
    sentinels: tuple[str, ...] = ()
    source: str = ""  # the node or sentinel this read came from

    def node(self, address: str) -> Node | None:
        return next((n for n in self.nodes if n.address == address), None)

    def primaries(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == PRIMARY and n.health != "fail")

    def as_dict(self) -> dict[str, Any]:
        shards: dict[str, dict[str, Any]] = {}
        failed = []
        for n in self.nodes:
            if n.health == "fail" and not (n.role == REPLICA and n.shard in shards):
                failed.append(n.address)  # a failed primary has lost its slots: no shard
                continue
            entry = shards.setdefault(n.shard, {"shard": n.shard, "primary": "", "replicas": [],
                                                "slots": 0})
            if n.role == PRIMARY:
                entry["primary"], entry["slots"] = n.address, n.slots
            else:
                entry["replicas"].append(n.address)
        return {"kind": self.kind, "nodes": [n.as_dict() for n in self.nodes],
                "shards": list(shards.values()), "failed": failed,
                "slots_covered": self.slots_covered,
                "master": self.master, "master_name": self.master_name, "quorum": self.quorum,
                "quorum_ok": self.quorum_ok, "sentinels": list(self.sentinels),
                "source": self.source}


@dataclass(frozen=True, slots=True)
class TopologyChange:
    """What changed between two reads: `kind` is failover, node-down, node-up, node-added,
    node-removed, slots-moved or master-switch; `text` one line for people."""

    kind: str
    text: str
    node: str = ""
    details: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "node": self.node}


class TopologyError(ValueError):
    """A reply is not the shape the command returns (a proxy, an incompatible server)."""


# ---- helpers


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _pairs(flat: Any) -> dict[str, Any]:
    """A RESP2 flat list `[name, value, name, value...]` as a dict with str keys."""
    if not isinstance(flat, list) or len(flat) % 2:
        raise TopologyError("expected a list of name/value pairs")
    return {_text(k): v for k, v in zip(flat[::2], flat[1::2], strict=True)}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def host_port(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port); raises TopologyError."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or not host:
        raise TopologyError(f"not host:port: {address[:60]!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def remap_address(address: str, remap: Mapping[str, str]) -> str:
    """The address cachetop connects to for one a server announced (NAT, tunnels)."""
    return remap.get(address, address)


def slot_ranges_text(ranges: Sequence[tuple[int, int]]) -> str:
    """`0-5460,10923-16383`; a single slot as `42`; no slots as `-`."""
    if not ranges:
        return "-"
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in sorted(ranges))


def _slot_count(ranges: Sequence[tuple[int, int]]) -> int:
    return sum(b - a + 1 for a, b in ranges)


def _covered(nodes: Sequence[Node]) -> int:
    return sum(n.slots for n in nodes if n.role == PRIMARY and n.health == "online")


# ---- Redis Cluster


def parse_cluster_shards(reply: Any, remap: Mapping[str, str] = {},  # noqa: B006 - read only
                         source: str = "") -> Topology:
    """CLUSTER SHARDS (Redis 7.0+) as decoded RESP2.

    A primary that failed and lost its slots to its replica comes back as a shard of its own
    with no slots and health "fail"; it is listed as a failed primary, not as serving.
    """
    if not isinstance(reply, list):
        raise TopologyError("CLUSTER SHARDS: expected a list of shards")
    nodes: list[Node] = []
    for raw_shard in reply:
        shard = _pairs(raw_shard)
        maybe = [_int(s) for s in shard.get("slots") or []]
        flat = [s for s in maybe if s is not None]
        if len(flat) != len(maybe) or len(flat) % 2:
            raise TopologyError("CLUSTER SHARDS: bad slot ranges")
        ranges = list(zip(flat[::2], flat[1::2], strict=True))
        label = slot_ranges_text(ranges)
        members = [_pairs(n) for n in shard.get("nodes") or []]
        primary = ""
        for m in members:
            if _text(m.get("role", "")) == "master" and _text(m.get("health", "")) != "fail":
                primary = _member_address(m, remap)
        for m in members:
            address = _member_address(m, remap)
            role = PRIMARY if _text(m.get("role", "")) == "master" else REPLICA
            health = _text(m.get("health", "online"))
            nodes.append(Node(
                address=address, role=role, node_id=_text(m.get("id", "")), shard=label,
                slots=_slot_count(ranges) if role == PRIMARY and health != "fail" else 0,
                health=health, link="disconnected" if health == "fail" else "connected",
                offset=_int(m.get("replication-offset")),
                primary=primary if role == REPLICA else "",
                announced=_announced(m),
            ))
    return Topology("cluster", tuple(nodes), _covered(nodes), source=source)


def _announced(member: Mapping[str, Any]) -> str:
    host = _text(member.get("ip") or member.get("endpoint") or "")
    port = _int(member.get("port")) or _int(member.get("tls-port")) or 0
    return join_address(host, port)


def _member_address(member: Mapping[str, Any], remap: Mapping[str, str]) -> str:
    return remap_address(_announced(member), remap)


def parse_cluster_nodes(text: Any, remap: Mapping[str, str] = {},  # noqa: B006 - read only
                        source: str = "") -> Topology:
    """CLUSTER NODES (every version): one line per node,
    `id ip:port@cport[,hostname] flags primary ping pong epoch link slot...`."""
    lines = _text(text).splitlines()
    rows: list[tuple[str, str, set[str], str, str, list[tuple[int, int]]]] = []
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 8:
            raise TopologyError("CLUSTER NODES: a line has fewer than 8 fields")
        node_id, endpoint, flags, primary_id, link = (parts[0], parts[1], set(parts[2].split(",")),
                                                      parts[3], parts[7])
        address = endpoint.split("@", 1)[0].split(",", 1)[0]
        ranges = []
        for slot in parts[8:]:
            if slot.startswith("["):  # a slot being migrated or imported: `[42->-id]`
                continue
            first, _, last = slot.partition("-")
            a, b = _int(first), _int(last or first)
            if a is None or b is None:
                raise TopologyError("CLUSTER NODES: bad slot range")
            ranges.append((a, b))
        rows.append((node_id, address, flags, primary_id, link, ranges))
    by_id = {row[0]: row for row in rows}
    nodes = []
    for node_id, address, flags, primary_id, link, ranges in rows:
        failed = "fail" in flags or "noaddr" in flags
        is_primary = "master" in flags
        shard_row = by_id.get(primary_id) if not is_primary else None
        shard_ranges = shard_row[5] if shard_row is not None else ranges
        primary_address = remap_address(shard_row[1], remap) if shard_row is not None else ""
        nodes.append(Node(
            address=remap_address(address, remap), role=PRIMARY if is_primary else REPLICA,
            node_id=node_id, shard=slot_ranges_text(shard_ranges),
            slots=_slot_count(ranges) if is_primary and not failed else 0,
            health="fail" if failed else "online", link=link, primary=primary_address,
            announced=address,
        ))
    return Topology("cluster", tuple(nodes), _covered(nodes), source=source)


# ---- Sentinel


def _sentinel_health(flags: str) -> str:
    names = set(flags.split(","))
    if names & {"s_down", "o_down", "disconnected"}:
        return "down"
    return "online"


def parse_sentinel(master: Any, replicas: Any, sentinels: Any, ckquorum: str | None,
                   master_name: str, remap: Mapping[str, str] = {},  # noqa: B006 - read only
                   source: str = "", master_addr: Any = None) -> Topology:
    """SENTINEL MASTER, REPLICAS and SENTINELS of one master name, with CKQUORUM's line
    (`None` when it was refused; an error line when quorum cannot be reached).

    `master_addr` is GET-MASTER-ADDR-BY-NAME's reply: what clients are told to use. During a
    failover it already names the promoted replica while SENTINEL MASTER still names the old
    master; it wins, and the two swap roles.
    """
    topology = _parse_sentinel(master, replicas, sentinels, ckquorum, master_name, remap,
                               source)
    if not isinstance(master_addr, list) or len(master_addr) != 2:
        return topology
    told = remap_address(join_address(_text(master_addr[0]), _int(master_addr[1]) or 0), remap)
    if told == topology.master:
        return topology
    nodes = []
    for n in topology.nodes:
        if n.address == told:
            n = replace(n, role=PRIMARY, primary="", offset=None)
        elif n.role == PRIMARY:
            n = replace(n, role=REPLICA, primary=told)
        else:
            n = replace(n, primary=told)
        nodes.append(n)
    nodes.sort(key=lambda n: n.role != PRIMARY)
    return replace(topology, nodes=tuple(nodes), master=told)


def _parse_sentinel(master: Any, replicas: Any, sentinels: Any, ckquorum: str | None,
                    master_name: str, remap: Mapping[str, str], source: str) -> Topology:
    m = _pairs(master)
    master_address = remap_address(join_address(_text(m.get("ip", "")),
                                                _int(m.get("port")) or 0), remap)
    nodes = [Node(address=master_address, role=PRIMARY, node_id=_text(m.get("runid", "")),
                  shard=master_name, health=_sentinel_health(_text(m.get("flags", ""))),
                  announced=join_address(_text(m.get("ip", "")), _int(m.get("port")) or 0))]
    if not isinstance(replicas, list) or not isinstance(sentinels, list):
        raise TopologyError("SENTINEL REPLICAS/SENTINELS: expected a list")
    for raw in replicas:
        r = _pairs(raw)
        announced = join_address(_text(r.get("ip", "")), _int(r.get("port")) or 0)
        status = _text(r.get("master-link-status", ""))
        nodes.append(Node(
            address=remap_address(announced, remap), role=REPLICA,
            node_id=_text(r.get("runid", "")), shard=master_name,
            health=_sentinel_health(_text(r.get("flags", ""))),
            link="connected" if status == "ok" else "disconnected",
            offset=_int(r.get("slave-repl-offset")), primary=master_address,
            announced=announced,
        ))
    peers = tuple(remap_address(join_address(_text(s.get("ip", "")), _int(s.get("port")) or 0),
                                remap) for s in (_pairs(raw) for raw in sentinels))
    quorum_ok = None if ckquorum is None else ckquorum.startswith("OK")
    return Topology("sentinel", tuple(nodes), master=master_address, master_name=master_name,
                    quorum=ckquorum or "", quorum_ok=quorum_ok,
                    sentinels=(source, *peers) if source else peers, source=source)


# ---- what changed between two reads


def topology_changes(prev: Topology | None, cur: Topology) -> list[TopologyChange]:
    """The changes from `prev` to `cur`, one record each, in a stable order.

    A failover is a node that was a replica and is now a primary (roles compared by node
    address, and by node id where both reads have one): one "failover" record per promotion,
    naming the demoted primary of the same shard if there is one. An epoch bump alone is not
    a failover (resharding bumps it too), so epochs are not read at all.
    """
    if prev is None:
        return []
    changes: list[TopologyChange] = []
    before = {n.address: n for n in prev.nodes}
    after = {n.address: n for n in cur.nodes}
    if cur.kind == "sentinel" and prev.master and cur.master and prev.master != cur.master:
        changes.append(TopologyChange(
            "failover", f"{cur.master} is now the master of {cur.master_name} "
                        f"(was {prev.master})", cur.master,
            {"old": prev.master, "new": cur.master}))
    elif cur.kind == "cluster":
        for address, node in after.items():
            old = before.get(address)
            if old is None or old.role != REPLICA or node.role != PRIMARY or \
                    node.health == "fail":
                continue
            demoted = old.primary or next(
                (n.address for n in prev.nodes if n.role == PRIMARY and n.shard == old.shard
                 and n.address != address), "")
            text = f"{address} promoted to primary of {node.shard}"
            if demoted:
                state = after.get(demoted)
                now = ("down" if state is None or state.health == "fail" else state.role)
                text += f"; {demoted} was primary, now {now}"
            changes.append(TopologyChange("failover", text, address,
                                          {"old": demoted, "new": address}))
    for address in sorted(before.keys() - after.keys()):
        changes.append(TopologyChange("node-removed", f"{address} left the topology", address))
    for address in sorted(after.keys() - before.keys()):
        node = after[address]
        changes.append(TopologyChange("node-added", f"{address} joined as {node.role}", address))
    for address in sorted(after.keys() & before.keys()):
        old, new = before[address], after[address]
        if old.health != new.health:
            if new.health in ("fail", "down"):
                changes.append(TopologyChange("node-down", f"{address} is down ({new.health})",
                                              address))
            elif old.health in ("fail", "down"):
                changes.append(TopologyChange("node-up", f"{address} is back ({new.health})",
                                              address))
        promoted = old.role == REPLICA and new.role == PRIMARY
        if old.role == PRIMARY and new.role == REPLICA and not any(
                c.details.get("old") == address for c in changes):
            changes.append(TopologyChange("failover", f"{address} demoted to replica of "
                                          f"{new.primary or new.shard}", address))
        if cur.kind == "cluster" and not promoted and old.role == new.role == PRIMARY and \
                old.shard != new.shard and new.health != "fail" and old.health != "fail":
            changes.append(TopologyChange("slots-moved", f"{address} now serves {new.shard} "
                                          f"(was {old.shard})", address))
    return changes
