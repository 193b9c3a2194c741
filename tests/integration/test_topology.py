"""Whole topologies against real servers on loopback: a 3-primary/3-replica Redis Cluster
made by `redis-cli --cluster create`, and a Sentinel set (a master, a replica, a sentinel).

Each test starts its own servers (tests.topology_servers) and stops exactly those.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.cluster import RedisCluster

from cachetop.collectors.base import Deadline
from cachetop.collectors.registry import make_collectors
from cachetop.fleet import TargetFigures
from cachetop.metrics.ratios import weighted_hit_ratio
from cachetop.monitor import Monitor
from cachetop.target_url import parse_target_url
from cachetop.tracker import TargetTracker
from tests.topology_servers import RedisClusterSet, SentinelSet
from tests.wait import wait_until


def monitor_of(url: str, interval_s: float = 0.2) -> Monitor:
    target = parse_target_url(url, timeout_s=2.0)
    monitor = Monitor(make_collectors([target]), interval_s)
    monitor.start()
    return monitor


def group(monitor: Monitor) -> TargetFigures:
    figures = monitor.snapshot().targets[0]
    return figures


def wait_all_up(monitor: Monitor, nodes: int = 6) -> None:
    wait_until(lambda: len(group(monitor).caches) == nodes and all(
        n.live for n in group(monitor).caches), f"all {nodes} nodes up")


def primary_and_replica(cluster: RedisClusterSet, index: int) -> tuple[Any, Any, str, str]:
    primary = cluster.primaries()[index]
    replica = cluster.replica_of(primary)
    return primary, replica, f"127.0.0.1:{primary.port}", f"127.0.0.1:{replica.port}"


def node_roles(f: TargetFigures) -> dict[str, str]:
    return {n.name: (n.topology or {}).get("role", "") for n in f.caches}


def failovers(f: TargetFigures) -> list[Any]:
    return [e for e in f.events if e["kind"] == "failover"]


def test_group_figures_are_the_combination_of_the_nodes(cluster: RedisClusterSet) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    try:
        for i in range(300):
            client.set(f"k:{i}", "v")
        cluster.wait_replicated()  # the nodes' key counts are compared with DBSIZE below
        collector = make_collectors([parse_target_url(cluster.url, timeout_s=2.0)])[0]
        tracker = TargetTracker(collector.target)
        tracker.update(collector.collect(Deadline(5.0)))
        for i in range(800):
            client.get(f"k:{i % 300}")
        for i in range(200):
            client.get(f"missing:{i}")
        figures = tracker.update(collector.collect(Deadline(5.0)))
    finally:
        client.close()
        collector.close()
    assert figures.status == "up"
    assert len(figures.caches) == 6
    roles = sorted(node_roles(figures).values())
    assert roles == ["primary"] * 3 + ["replica"] * 3
    assert (figures.topology or {})["slots_covered"] == 16384
    assert (figures.topology or {})["nodes_up"] == 6
    # The known workload: exactly 800 hits and 200 misses, so 80.0 %.
    assert (figures.hits_delta, figures.misses_delta) == (800, 200)
    assert figures.hit_ratio == pytest.approx(0.8)
    # The group is the sum / weighted combination of its nodes' own figures.
    nodes = figures.caches
    assert figures.hit_ratio == weighted_hit_ratio((n.hits_delta, n.misses_delta) for n in nodes)
    assert figures.ops_per_s == pytest.approx(sum(n.ops_per_s or 0 for n in nodes))
    assert figures.memory_used_bytes == sum(n.memory_used_bytes or 0 for n in nodes)
    # 300 keys on the primaries, copied on the replicas (DBSIZE counted independently).
    dbsize = {}
    for node in cluster.nodes:
        with node.client() as c:
            dbsize[f"127.0.0.1:{node.port}"] = c.dbsize()
    assert {n.name: n.keys for n in nodes} == dbsize
    assert sum(n.keys or 0 for n in nodes if n.topology and n.topology["role"] == "primary") \
        == 300
    p99s = [n.server_latency.p99_s if n.server_latency.p99_s is not None
            else n.probe_latency.p99_s for n in nodes]
    assert figures.server_latency.p99_s == max(p for p in p99s if p is not None)


def test_a_manual_failover_is_one_failover_with_the_new_roles(
        cluster: RedisClusterSet) -> None:
    monitor = monitor_of(cluster.url)
    try:
        wait_all_up(monitor)
        old, new, old_name, new_name = primary_and_replica(cluster, 0)
        with new.client() as c:
            c.execute_command("CLUSTER", "FAILOVER")
        wait_until(lambda: node_roles(group(monitor)).get(new_name) == "primary"
                   and node_roles(group(monitor)).get(old_name) == "replica",
                   "the new roles", timeout_s=60)
        # The roles the servers themselves report (independent of cachetop's read).
        assert cluster.role(new) == "master" and cluster.role(old) == "slave"
        wait_until(lambda: failovers(group(monitor)), "the failover event")
        seen = monitor.version  # five more polls applied: no second record appears
        wait_until(lambda: monitor.version >= seen + 5, "five more polls")
        events = failovers(group(monitor))
        assert len(events) == 1, events
        assert events[0]["node"] == new_name and old_name in events[0]["text"]
        assert group(monitor).status == "up"
    finally:
        monitor.stop()


def test_a_killed_primary_goes_down_and_its_replicas_promotion_is_seen(
        cluster: RedisClusterSet) -> None:
    monitor = monitor_of(cluster.url)
    try:
        wait_all_up(monitor)
        victim, heir, victim_name, heir_name = primary_and_replica(cluster, 1)
        victim.stop()

        def victim_down() -> bool:
            node = next((n for n in group(monitor).caches if n.name == victim_name), None)
            return node is not None and not node.live
        wait_until(victim_down, "the killed node shown down")
        wait_until(lambda: node_roles(group(monitor)).get(heir_name) == "primary",
                   "the replica's promotion", timeout_s=60)
        assert cluster.role(heir) == "master"
        wait_until(lambda: [e for e in failovers(group(monitor)) if e["node"] == heir_name],
                   "the failover event")
        figures = group(monitor)
        assert figures.status == "up"
        assert (figures.topology or {})["nodes_up"] == 5
        assert any("1 of 6 nodes not answering" in d for d in figures.degraded)
    finally:
        monitor.stop()


def test_sentinel_failover_is_followed(sentinel_set: SentinelSet) -> None:
    monitor = monitor_of(sentinel_set.url)
    master = f"127.0.0.1:{sentinel_set.master.port}"
    replica = f"127.0.0.1:{sentinel_set.replica.port}"
    try:
        wait_until(lambda: node_roles(group(monitor)) == {master: "primary",
                                                          replica: "replica"},
                   "the master and its replica")
        assert (group(monitor).topology or {})["quorum_ok"] is True
        with sentinel_set.sentinels[0].client() as c:
            c.execute_command("SENTINEL", "FAILOVER", sentinel_set.name)
        wait_until(lambda: (group(monitor).topology or {}).get("master") == replica
                   and node_roles(group(monitor)).get(replica) == "primary",
                   "the new master followed", timeout_s=60)
        with sentinel_set.replica.client() as c:
            assert c.info("replication")["role"] == "master"
        wait_until(lambda: failovers(group(monitor)), "the failover event")
        (event,) = failovers(group(monitor))
        assert event["node"] == replica and master in event["text"]
    finally:
        monitor.stop()


def test_a_topology_target_never_sends_its_credentials_elsewhere(
        cluster: RedisClusterSet) -> None:
    """Credentials of the cluster go to its nodes: the nodes without a password still answer
    (AUTH to a passwordless node fails, so the nodes here take a password of their own)."""
    password = "cluster-pw"
    for node in cluster.nodes:
        with node.client() as c:
            c.config_set("requirepass", password)
    monitor = monitor_of(cluster.url.replace("redis+cluster://",
                                             f"redis+cluster://default:{password}@"))
    try:
        wait_all_up(monitor)
    finally:
        monitor.stop()
        for node in cluster.nodes:
            with node.client(password=password) as c:
                c.config_set("requirepass", "")


def test_an_unreachable_cluster_is_down_with_a_clear_line() -> None:
    from tests.servers import free_port

    monitor = monitor_of(f"redis+cluster://127.0.0.1:{free_port(55535)}")
    try:
        wait_until(lambda: group(monitor).status == "down", "the group down")
        assert "no topology" in (group(monitor).error or "")
        assert "connection refused" in (group(monitor).error or "")
    finally:
        monitor.stop()


