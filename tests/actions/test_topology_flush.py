"""Pattern flushes across a whole topology, against real servers: a 3-primary/3-replica Redis
Cluster (200,000 matching keys, a writer adding other keys meanwhile; cancel with a true
partial count) and a Sentinel set (the master only; a master changed since the preview)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from cachetop.actions import Progress, execute, plan_delete, plan_flush, plan_flushdb
from cachetop.target_url import parse_target_url
from tests.actions.helpers import audit_lines
from tests.topology_servers import RedisClusterSet, SentinelSet
from tests.wait import wait_until


def fill_cluster(cluster: RedisClusterSet, prefix: str, count: int) -> Counter[str]:
    """Write `prefix{i}` keys straight to the primary that owns each key's slot; returns how
    many went to each primary (the independent per-node count)."""
    client = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    by_node: dict[str, list[bytes]] = {}
    try:
        for i in range(count):
            key = f"{prefix}{i}".encode()
            node = client.nodes_manager.get_node_from_slot(key_slot(key))
            by_node.setdefault(f"{node.host}:{node.port}", []).append(key)
    finally:
        client.close()
    for address, keys in by_node.items():
        host, port = address.rsplit(":", 1)
        with redis.Redis(host=host, port=int(port)) as r:
            for start in range(0, len(keys), 10_000):
                pipe = r.pipeline(transaction=False)
                for key in keys[start:start + 10_000]:
                    pipe.set(key, b"v")
                pipe.execute()
    return Counter({a: len(k) for a, k in by_node.items()})


def count_on_primaries(cluster: RedisClusterSet, pattern: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for node in cluster.primaries():
        with node.client() as c:
            counts[f"127.0.0.1:{node.port}"] = len(set(c.scan_iter(match=pattern, count=1000)))
    return counts


class Writer(threading.Thread):
    """Writes non-matching keys through a cluster client for as long as the flush runs."""

    def __init__(self, cluster: RedisClusterSet) -> None:
        super().__init__(daemon=True)
        self.client = RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
        self.written = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.client.set(f"w:{self.written}", b"v")
            self.written += 1

    def finish(self) -> int:
        self.stop.set()
        self.join(10)
        self.client.close()
        return self.written


def test_a_cluster_flush_deletes_exactly_the_matching_keys_on_every_primary(
        cluster: RedisClusterSet, state_home: Path) -> None:
    matching = fill_cluster(cluster, "m:", 200_000)
    others = fill_cluster(cluster, "o:", 20_000)
    target = parse_target_url(cluster.url, timeout_s=5.0)
    plan = plan_flush(target, b"m:*", count_budget_s=60.0)
    assert plan.refusal is None
    assert (plan.count, plan.count_exact) == (200_000, True)
    spec_nodes = [p.target.name for p in plan.spec.node_plans]  # type: ignore[union-attr]
    assert sorted(spec_nodes) == sorted(matching)
    for node_plan in plan.spec.node_plans:  # type: ignore[union-attr]
        assert node_plan.count == matching[node_plan.target.name]     # the per-node preview
    writer = Writer(cluster)
    writer.start()
    wait_until(lambda: writer.written > 100, "the writer writing")
    seen: list[Progress] = []
    try:
        result = execute(plan, progress=seen.append)
    finally:
        written = writer.finish()
    assert result.status == "done", result.summary
    assert result.deleted == 200_000
    assert dict(result.per_node) == dict(matching)
    assert sum(count_on_primaries(cluster, "m:*").values()) == 0
    assert count_on_primaries(cluster, "o:*") == others
    assert sum(count_on_primaries(cluster, "w:*").values()) == written
    assert seen and seen[-1].deleted == 200_000 and seen[-1].planned == 200_000
    deleted_seen = [p.deleted for p in seen]
    assert deleted_seen == sorted(deleted_seen)                       # one rising progress
    records = [json.loads(line) for line in audit_lines(state_home)]
    for event in ("intent", "result"):
        assert sorted(r["target"] for r in records if r["event"] == event) == \
            sorted(matching)                                          # one line per node
    assert all(r["done"] == matching[r["target"]] for r in records if r["event"] == "result")


def test_cancelling_a_cluster_flush_reports_the_true_partial_count(
        cluster: RedisClusterSet) -> None:
    matching = fill_cluster(cluster, "m:", 30_000)
    target = parse_target_url(cluster.url, timeout_s=5.0)
    plan = plan_flush(target, b"m:*", rate_keys_per_s=4000, scan_count=200,
                      count_budget_s=60.0)
    cancel = threading.Event()

    def progress(p: Progress) -> None:
        if p.deleted >= 3000:
            cancel.set()

    # Every key matches: the group's name is typed once for all its nodes.
    assert plan.confirm_name == target.name and plan.wipes_all
    assert execute(plan, cancel=cancel).status == "refused"
    result = execute(plan, progress=progress, cancel=cancel, confirmation=target.name)
    assert result.status == "cancelled", result.summary
    left = count_on_primaries(cluster, "m:*")
    assert 0 < result.deleted < 30_000
    assert result.deleted == 30_000 - sum(left.values())             # the true partial count
    for name, deleted in result.per_node:
        assert deleted == matching[name] - left[name]
    assert "not started on" in result.notes[-1] or len(result.per_node) == 3


def test_a_sentinel_flush_deletes_on_the_master_only(sentinel_set: SentinelSet) -> None:
    master = sentinel_set.master.client()
    for i in range(1000):
        master.set(f"m:{i}", "v")
    for i in range(1000):
        master.set(f"other:{i}", "v")
    target = parse_target_url(sentinel_set.url, timeout_s=5.0)
    plan = plan_flush(target, b"m:*")
    master_name = f"127.0.0.1:{sentinel_set.master.port}"
    assert [p.target.name for p in plan.spec.node_plans] == [master_name]  # type: ignore[union-attr]
    result = execute(plan)
    assert result.status == "done", result.summary
    assert result.per_node == ((master_name, 1000),)
    assert not list(master.scan_iter(match="m:*"))
    assert len(set(master.scan_iter(match="other:*"))) == 1000
    master.close()


def test_a_sentinel_flush_refuses_when_the_master_changed_since_the_preview(
        sentinel_set: SentinelSet) -> None:
    with sentinel_set.master.client() as c:
        c.set("m:1", "v")
    target = parse_target_url(sentinel_set.url, timeout_s=5.0)
    plan = plan_flush(target, b"m:*")
    replica = ("127.0.0.1", sentinel_set.replica.port)
    with sentinel_set.sentinels[0].client(decode_responses=True) as s:
        s.execute_command("SENTINEL", "FAILOVER", sentinel_set.name)
        wait_until(lambda: tuple(s.sentinel_get_master_addr_by_name(sentinel_set.name))
                   == replica, "the sentinels to name the new master", timeout_s=60)
    result = execute(plan, confirmation=plan.confirm_name)
    assert result.status == "refused"
    assert f"is now 127.0.0.1:{sentinel_set.replica.port}" in result.summary
    assert "preview again" in result.summary
    assert result.deleted == 0


def test_flushdb_of_a_cluster_empties_every_primary_after_the_typed_name(
        cluster: RedisClusterSet) -> None:
    filled = fill_cluster(cluster, "k:", 3000)
    target = parse_target_url(cluster.url, timeout_s=5.0)
    plan = plan_flushdb(target)
    assert plan.confirm_name == target.name and plan.count == 3000
    assert sorted(p.target.name for p in plan.spec.node_plans) == sorted(filled)  # type: ignore[union-attr]
    assert execute(plan, confirmation="wrong").status == "refused"
    assert sum(count_on_primaries(cluster, "*").values()) == 3000        # nothing deleted
    result = execute(plan, confirmation=target.name)
    assert result.status == "done", result.summary
    assert sum(count_on_primaries(cluster, "*").values()) == 0


def test_deleting_keys_of_a_cluster_routes_each_to_the_primary_of_its_slot(
        cluster: RedisClusterSet) -> None:
    filled = fill_cluster(cluster, "k:", 200)
    wanted = [f"k:{i}".encode() for i in range(0, 200, 10)] + [b"missing"]
    target = parse_target_url(cluster.url, timeout_s=5.0)
    plan = plan_delete(target, wanted)
    assert plan.refusal is None
    result = execute(plan, confirmation=plan.confirm_name)
    assert result.status == "done", result.summary
    assert result.deleted == 20                                          # "missing" was not there
    left = count_on_primaries(cluster, "k:*")
    assert sum(left.values()) == 180
    # each deletion happened on the node that holds the key's slot (no MOVED, no CROSSSLOT)
    deleted_per_node: dict[str, int] = {}
    for name, deleted in result.per_node:
        deleted_per_node[name] = deleted_per_node.get(name, 0) + deleted
    assert {n: filled[n] - left[n] for n in filled} == {
        n: deleted_per_node.get(n, 0) for n in filled}
