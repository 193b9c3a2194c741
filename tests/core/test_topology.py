"""Topology reading as pure functions, on replies captured from real servers (redis 7.0.15:
a 3-primary/3-replica cluster from `redis-cli --cluster create`, the same cluster after its
second primary was killed and its replica promoted, and a Sentinel set with two sentinels).

Each expectation is computed independently of the parser under test: from the CLUSTER NODES
text with a split(), or read off the captured reply by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hiredis
import pytest

from cachetop.collectors.topology import (
    PRIMARY,
    REPLICA,
    TopologyError,
    parse_cluster_nodes,
    parse_cluster_shards,
    parse_sentinel,
    topology_changes,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "topology"


def reply(name: str) -> Any:
    reader = hiredis.Reader()
    reader.feed((FIXTURES / name).read_bytes())
    return reader.gets()


def roles_from_nodes_text(name: str) -> dict[str, str]:
    """address -> primary/replica/failed, by splitting CLUSTER NODES lines (independent)."""
    roles = {}
    for line in reply(name).decode().splitlines():
        parts = line.split()
        address = parts[1].split("@")[0]
        flags = parts[2].split(",")
        roles[address] = "failed" if "fail" in flags else (
            PRIMARY if "master" in flags else REPLICA)
    return roles


def roles_of(topology: Any) -> dict[str, str]:
    return {n.address: "failed" if n.health == "fail" else n.role for n in topology.nodes}


@pytest.mark.parametrize("state", ["", "_failed_over"])
def test_cluster_shards_and_nodes_agree_with_the_nodes_text(state: str) -> None:
    expected = roles_from_nodes_text(f"cluster_nodes_7.0{state}.resp")
    shards = parse_cluster_shards(reply(f"cluster_shards_7.0{state}.resp"))
    nodes = parse_cluster_nodes(reply(f"cluster_nodes_7.0{state}.resp"))
    assert roles_of(shards) == expected
    assert roles_of(nodes) == expected
    assert shards.slots_covered == nodes.slots_covered == 16384
    # Every replica's primary is a serving primary of the same shard.
    for topology in (shards, nodes):
        serving = {n.address: n for n in topology.primaries()}
        assert len(serving) == 3
        assert sorted(n.slots for n in serving.values()) == [5461, 5461, 5462]
        for n in topology.nodes:
            if n.role == REPLICA:
                assert serving[n.primary].shard == n.shard


def test_shard_labels_are_the_slot_ranges() -> None:
    topology = parse_cluster_shards(reply("cluster_shards_7.0.resp"))
    assert sorted({n.shard for n in topology.nodes}) == ["0-5460", "10923-16383", "5461-10922"]


def test_a_killed_primary_and_its_replicas_promotion_are_one_failover_and_one_down() -> None:
    before_roles = roles_from_nodes_text("cluster_nodes_7.0.resp")
    after_roles = roles_from_nodes_text("cluster_nodes_7.0_failed_over.resp")
    promoted = [a for a in after_roles if before_roles[a] == REPLICA
                and after_roles[a] == PRIMARY]
    killed = [a for a in after_roles if after_roles[a] == "failed"]
    assert len(promoted) == 1 and len(killed) == 1
    for parse, kind in ((parse_cluster_shards, "shards"), (parse_cluster_nodes, "nodes")):
        before = parse(reply(f"cluster_{kind}_7.0.resp"))
        after = parse(reply(f"cluster_{kind}_7.0_failed_over.resp"))
        changes = topology_changes(before, after)
        assert sorted(c.kind for c in changes) == ["failover", "node-down"], changes
        failover = next(c for c in changes if c.kind == "failover")
        assert failover.node == promoted[0]
        assert failover.details["old"] == killed[0]
        assert f"{killed[0]} was primary, now down" in failover.text
        assert next(c for c in changes if c.kind == "node-down").node == killed[0]


def test_the_same_read_twice_changes_nothing() -> None:
    topology = parse_cluster_shards(reply("cluster_shards_7.0.resp"))
    assert topology_changes(topology, topology) == []
    assert topology_changes(None, topology) == []


def test_remap_applies_to_every_discovered_node_and_only_mapped_ones() -> None:
    plain = parse_cluster_shards(reply("cluster_shards_7.0.resp"))
    first, second = plain.nodes[0].address, plain.nodes[1].address
    remap = {first: "10.9.9.9:7000"}
    for parse, name in ((parse_cluster_shards, "cluster_shards_7.0.resp"),
                        (parse_cluster_nodes, "cluster_nodes_7.0.resp")):
        mapped = parse(reply(name), remap)
        addresses = {n.address for n in mapped.nodes}
        assert "10.9.9.9:7000" in addresses and first not in addresses
        assert second in addresses
        node = mapped.node("10.9.9.9:7000")
        assert node is not None and node.announced == first
        # a replica of the remapped primary names it by its reachable address
        assert all(n.primary != first for n in mapped.nodes)


def test_cluster_nodes_with_moved_slots_and_migrating_markers() -> None:
    before = parse_cluster_nodes(
        "a 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n"
        "b 10.0.0.2:7000@17000 master - 0 0 2 connected 8192-16383\n")
    after = parse_cluster_nodes(
        "a 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8000 [8001->-b]\n"
        "b 10.0.0.2:7000@17000 master - 0 0 3 connected 8001-16383 9000\n")
    assert after.node("10.0.0.2:7000").slots == 16383 - 8001 + 1 + 1  # type: ignore[union-attr]
    changes = topology_changes(before, after)
    assert [c.kind for c in changes] == ["slots-moved", "slots-moved"]
    assert "now serves 0-8000 (was 0-8191)" in changes[0].text


def test_an_epoch_bump_alone_is_no_change() -> None:
    before = parse_cluster_nodes("a 10.0.0.1:7000@17000 master - 0 0 1 connected 0-16383\n")
    after = parse_cluster_nodes("a 10.0.0.1:7000@17000 master - 0 0 9 connected 0-16383\n")
    assert topology_changes(before, after) == []


def sentinel(master: Any = None) -> Any:
    return parse_sentinel(master if master is not None else reply("sentinel_master_7.0.resp"),
                          reply("sentinel_replicas_7.0.resp"),
                          reply("sentinel_sentinels_7.0.resp"),
                          reply("sentinel_ckquorum_7.0.resp").decode(), "mymaster",
                          source="127.0.0.1:36031")


def test_sentinel_master_replicas_sentinels_and_quorum() -> None:
    topology = sentinel()
    # Read off the captured replies: master 127.0.0.1:53859, replica :59553 at offset 559.
    assert topology.master == "127.0.0.1:53859"
    assert [(n.address, n.role) for n in topology.nodes] == [
        ("127.0.0.1:53859", PRIMARY), ("127.0.0.1:59553", REPLICA)]
    replica = topology.nodes[1]
    assert (replica.offset, replica.link, replica.primary) == (559, "connected",
                                                               "127.0.0.1:53859")
    assert topology.sentinels == ("127.0.0.1:36031", "127.0.0.1:48859")
    assert topology.quorum_ok is True and topology.quorum.startswith("OK 2 usable")


def test_a_sentinel_switching_master_is_one_failover() -> None:
    before = sentinel()
    raw = list(reply("sentinel_master_7.0.resp"))
    raw[raw.index(b"port") + 1] = b"59553"
    after = sentinel(raw)
    changes = topology_changes(before, after)
    assert [c.kind for c in changes if c.kind == "failover"] == ["failover"]
    assert changes[0].text == ("127.0.0.1:59553 is now the master of mymaster "
                               "(was 127.0.0.1:53859)")


def test_no_quorum_is_not_ok() -> None:
    topology = parse_sentinel(reply("sentinel_master_7.0.resp"), [], [],
                              "NOQUORUM 1 usable Sentinels. Not enough available Sentinels",
                              "mymaster")
    assert topology.quorum_ok is False


@pytest.mark.parametrize("bad", [b"not a list", [[b"slots"]], [[b"slots", [1], b"nodes", []]],
                                 [[b"slots", [b"x", 3], b"nodes", []]]])
def test_malformed_shards_are_a_topology_error(bad: Any) -> None:
    with pytest.raises(TopologyError):
        parse_cluster_shards(bad)


def test_malformed_nodes_text_is_a_topology_error() -> None:
    with pytest.raises(TopologyError):
        parse_cluster_nodes("abc 1.2.3.4:5@6 master\n")
    with pytest.raises(TopologyError):
        parse_cluster_nodes("a 10.0.0.1:7000@17000 master - 0 0 1 connected x-y\n")


def test_mid_failover_the_address_clients_are_told_wins_and_roles_swap() -> None:
    """GET-MASTER-ADDR-BY-NAME names the promoted replica before SENTINEL MASTER does."""
    topology = parse_sentinel(reply("sentinel_master_7.0.resp"),
                              reply("sentinel_replicas_7.0.resp"), [], "OK", "mymaster",
                              master_addr=[b"127.0.0.1", b"59553"])
    assert topology.master == "127.0.0.1:59553"
    assert [(n.address, n.role) for n in topology.nodes] == [
        ("127.0.0.1:59553", PRIMARY), ("127.0.0.1:53859", REPLICA)]
    assert topology.nodes[1].primary == "127.0.0.1:59553"
    same = parse_sentinel(reply("sentinel_master_7.0.resp"), [], [], "OK", "mymaster",
                          master_addr=[b"127.0.0.1", b"53859"])
    assert same.master == "127.0.0.1:53859" and same.nodes[0].role == PRIMARY
