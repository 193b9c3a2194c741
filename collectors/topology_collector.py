"""Provides ClusterCollector and SentinelCollector: a whole Redis Cluster or Sentinel set as one
target whose poll reads the topology and polls every data node.

The topology is read from one control connection (a seed node, or a sentinel) every
TOPOLOGY_EVERY_S, and at once after a node's poll failed or a node's INFO role disagreed with
the topology (a failover in between). Each node is an ordinary RedisInfoCollector, kept while
the node stays in the topology; the nodes' polls run side by side on the same event loop
(netloop.Parallel), so a hung node times out alone and the others' figures still arrive.
Credentials and TLS options of the topology target go to its own nodes only.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.driver import LoopCollector
from cachetop.collectors.framing import RespError, RespFraming, pack_command
from cachetop.collectors.netloop import Parallel, PollLoop, Script
from cachetop.collectors.redis_info import RedisInfoCollector, classify, disabled_reason
from cachetop.collectors.sample import MASTER_LINK, REPL_OFFSET, ROLE, VERSION, Sample
from cachetop.collectors.topology import (
    PRIMARY,
    Node,
    Topology,
    TopologyError,
    host_port,
    parse_cluster_nodes,
    parse_cluster_shards,
    parse_sentinel,
    topology_changes,
)
from cachetop.collectors.wire import Conn, Connect, Request, target_conn

TOPOLOGY_EVERY_S = 10.0
NODE_MARGIN_S = 0.02  # a node's deadline ends this much before the group's, so its own
# timeout (not the group's) is what a hung node reports
_INFO_ROLE = {"master": PRIMARY, "slave": "replica", "replica": "replica"}  # Dragonfly: replica


class TopologyCollector(LoopCollector):
    """The shared part: the control connection, the node collectors, the Sample."""

    kind = "redis-topology"

    def __init__(self, target: Target) -> None:
        self.target = target
        self.topology: Topology | None = None
        self._read_at = -math.inf
        self._stale = True
        self._control: Conn | None = None
        self._control_address = ""
        self._resp = RespFraming()
        self._nodes: dict[str, RedisInfoCollector] = {}
        self._events: list[dict[str, str]] = []
        self.unsupported: dict[str, str] = {}  # command -> why, for this control connection

    # -- collector protocol -----------------------------------------------------------------

    def classify(self, exc: BaseException, timeout_s: float) -> CollectError:
        return classify(exc, timeout_s)

    def connections(self) -> tuple[Conn, ...]:
        own = (self._control,) if self._control is not None and \
            self._control.sock is not None else ()
        return own + tuple(c for node in self._nodes.values() for c in node.connections())

    def close(self) -> None:
        self._close_control()
        for node in self._nodes.values():
            node.close()

    def want_detail(self, wanted: bool) -> None:
        """Nodes fetch no drill-down detail: the group's screen shows the topology."""

    # -- the control connection ---------------------------------------------------------------

    def _close_control(self) -> None:
        if self._control is not None:
            self._control.close()
        self._control = None
        self.unsupported.clear()

    def _open(self, address: str) -> Script:
        t = self.target
        host, port = host_port(address)
        conn = target_conn(t, (host, port))
        self._control, self._control_address, self._resp = conn, address, RespFraming()
        self.unsupported.clear()
        yield Connect(conn)
        if t.password is not None:
            auth = ("AUTH", t.username, t.password.reveal()) if t.username else \
                ("AUTH", t.password.reveal())
            try:
                yield from self._call(*auth)
            except RespError as exc:
                # A sentinel often has no password while its data nodes do.
                if "without any password configured" not in str(exc) and \
                        "no password is set" not in str(exc):
                    raise

    def _call(self, *args: str | bytes | int) -> Script:
        assert self._control is not None
        reply = yield Request(self._control, pack_command(*args), self._resp)
        return reply.value

    def _candidates(self) -> list[str]:
        """Where to read the topology: the current control node, the seeds, then every node
        of the last read (a cluster outlives its seeds)."""
        order = [self._control_address] if self._control is not None else []
        order += list(self.target.seeds)
        if self.topology is not None and self.target.kind == "redis-cluster":
            order += [n.address for n in self.topology.nodes if n.health != "fail"]
        return list(dict.fromkeys(a for a in order if a))

    def _read_topology(self) -> Script:
        errors: list[str] = []
        for address in self._candidates():
            try:
                if self._control is None or address != self._control_address:
                    self._close_control()
                    yield from self._open(address)
                topology = yield from self._read_from(address)
                return topology
            except (OSError, RespError, CollectError, TopologyError) as exc:
                self._close_control()
                error = exc if isinstance(exc, CollectError) else (
                    CollectError("bad-data", str(exc)) if isinstance(exc, TopologyError)
                    else classify(exc, self.target.timeout_s))
                if error.status == "auth-failed":
                    raise error from None
                errors.append(f"{address}: {error.message}")
        raise CollectError("down", "no topology: " + "; ".join(errors)[:300])

    def _read_from(self, address: str) -> Script:
        raise NotImplementedError

    # -- one poll ---------------------------------------------------------------------------

    def _poll(self) -> Script:
        started = time.monotonic()
        if self._stale or started - self._read_at >= TOPOLOGY_EVERY_S:
            topology = yield from self._read_topology()
            self._note(topology)
        assert self.topology is not None
        nodes = self._sync_nodes(self.topology)
        order = list(nodes)
        budget = max(0.05, self.target.timeout_s - (time.monotonic() - started) - NODE_MARGIN_S)
        outcomes = yield Parallel([nodes[a].poll() for a in order], budget,
                                  [nodes[a].classify for a in order])
        children: dict[str, Sample] = {}
        errors: dict[str, tuple[str, str]] = {}
        for address, (sample, error) in zip(order, outcomes, strict=True):
            node = self.topology.node(address)
            if error is not None or sample is None:
                failure = error or CollectError("bad-data", "no sample")
                errors[address] = (failure.status, failure.message)
                if node is None or node.health != "fail":
                    self._stale = True  # a connection error: read the topology again
                continue
            children[address] = self._with_node(sample, node)
            seen = _INFO_ROLE.get(sample.info.get(ROLE, ""), "")
            if node is not None and seen and seen != node.role:
                self._stale = True  # a failover since the last read
        events, self._events = self._events, []
        versions = {s.info.get(VERSION, "") for s in children.values()} - {""}
        return Sample(
            self.target.name, self.target.kind, time.monotonic(), time.monotonic() - started,
            info={VERSION: ",".join(sorted(versions))},
            children=children, child_errors=errors, topology=self.topology.as_dict(),
            events=tuple(events),
        )

    def _note(self, topology: Topology) -> None:
        now = time.time()
        for change in topology_changes(self.topology, topology):
            self._events.append({"time": f"{now:.3f}", "target": self.target.name,
                                 "kind": change.kind, "text": change.text,
                                 "node": change.node})
        self.topology, self._read_at, self._stale = topology, time.monotonic(), False

    def _with_node(self, sample: Sample, node: Node | None) -> Sample:
        """The node's sample with what the topology knows of it (shard, slots, link)."""
        info = dict(sample.info)
        if node is not None:
            info.update(shard=node.shard, slots=str(node.slots), health=node.health)
            if MASTER_LINK not in info:
                info[MASTER_LINK] = node.link
        offset = sample.gauges.get(REPL_OFFSET)
        if offset is not None:
            info["offset"] = str(int(offset))
        return dataclasses.replace(sample, info=info)

    def _sync_nodes(self, topology: Topology) -> dict[str, RedisInfoCollector]:
        """One collector per data node of the topology: new ones made, gone ones closed."""
        wanted = [n.address for n in topology.nodes]
        for address in list(self._nodes):
            if address not in wanted:
                self._nodes.pop(address).close()
        for address in wanted:
            if address not in self._nodes:
                self._nodes[address] = self.node_collector(address)
        return {a: self._nodes[a] for a in wanted}

    def node_collector(self, address: str) -> RedisInfoCollector:
        host, port = host_port(address)
        target = dataclasses.replace(
            self.target, name=address, kind="redis", address=address, host=host, port=port,
            seeds=(), master_name="", remap={}, socket_path=None,
            cluster_node=self.target.kind == "redis-cluster")
        collector = RedisInfoCollector(target)
        collector.want_detail(False)
        collector.defer_first_detail(math.inf)
        return collector

    def node_target(self, address: str) -> Target:
        """The node at `address` as a target with this topology's credentials (actions)."""
        return self.node_collector(address).target


class ClusterCollector(TopologyCollector):
    """A Redis Cluster from its seeds: CLUSTER SHARDS (7.0+), else CLUSTER NODES."""

    kind = "redis-cluster"

    def _read_from(self, address: str) -> Script:
        remap = self.target.remap
        if "CLUSTER SHARDS" not in self.unsupported:
            try:
                reply = yield from self._call("CLUSTER", "SHARDS")
                return parse_cluster_shards(reply, remap, address)
            except RespError as exc:
                text = str(exc).lower()
                if "unknown" not in text and "syntax" not in text:
                    raise
                # Before 7.0: asked once per connection, not every read.
                self.unsupported["CLUSTER SHARDS"] = disabled_reason("CLUSTER SHARDS", exc)
        reply = yield from self._call("CLUSTER", "NODES")
        return parse_cluster_nodes(reply, remap, address)


class SentinelCollector(TopologyCollector):
    """A Sentinel set: the master's data nodes as the sentinels see them now."""

    kind = "redis-sentinel"

    def _read_from(self, address: str) -> Script:
        name = self.target.master_name
        assert self._control is not None
        conn = self._control
        # Five commands in one write; their replies are read in order.
        data = b"".join(pack_command("SENTINEL", sub, name) for sub in
                        ("MASTER", "REPLICAS", "SENTINELS", "CKQUORUM",
                         "GET-MASTER-ADDR-BY-NAME"))
        replies: list[Any] = []
        for index in range(5):
            try:
                reply = yield Request(conn, data if index == 0 else b"", self._resp)
                replies.append(reply.value)
            except RespError as exc:
                replies.append(exc)
        for reply in replies[:3]:
            if isinstance(reply, RespError):
                raise CollectError("bad-data", f"sentinel {address}: {reply}"[:200])
        quorum = replies[3]  # NOQUORUM is an answer, not a failure
        return parse_sentinel(replies[0], replies[1], replies[2],
                              str(quorum) if isinstance(quorum, RespError) else _text(quorum),
                              name, self.target.remap, address,
                              None if isinstance(replies[4], RespError) else replies[4])


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


COLLECTORS: dict[str, Callable[[Target], TopologyCollector]] = {
    "redis-cluster": ClusterCollector, "redis-sentinel": SentinelCollector,
}


def node_target(target: Target, address: str) -> Target:
    """A node of `target`'s topology as a plain Redis target, with its credentials."""
    return COLLECTORS[target.kind](target).node_target(address)


def read_topology(target: Target) -> Topology:
    """One blocking read of the topology, for actions and one-off callers (never the UI
    thread): a private loop, each seed tried within the target's timeout.

    Raises:
        CollectError: no seed answered (one line), or the credentials were refused.
    """
    collector = COLLECTORS[target.kind](target)
    loop = PollLoop()
    outcome: list[tuple[Any, CollectError | None]] = []
    budget = min(10.0, target.timeout_s * max(1, len(target.seeds)))
    try:
        loop.start(collector._read_topology(), budget,
                   lambda value, error: outcome.append((value, error)), collector.classify)
        loop.run_until(lambda: bool(outcome))
    finally:
        loop.close()
        collector.close()
    topology, error = outcome[0]
    if error is not None:
        raise error
    assert isinstance(topology, Topology)
    return topology
