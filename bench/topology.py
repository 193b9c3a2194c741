"""What a whole topology costs: the topology read and its diff at 1,000 nodes (pure), the
engine's figures of a 1,000-node group, and a real 3+3 cluster polled as one
`redis+cluster://` target against the same six nodes as six `redis://` targets (same run).

    .venv/bin/python bench/topology.py            # 1,000 nodes, 20 s windows
    .venv/bin/python bench/topology.py --smoke    # 100 nodes, 3 s windows (CI)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cachetop.collectors.registry import make_collectors  # noqa: E402
from cachetop.collectors.sample import Sample  # noqa: E402
from cachetop.collectors.topology import (  # noqa: E402
    CLUSTER_SLOTS,
    parse_cluster_nodes,
    parse_cluster_shards,
    topology_changes,
)
from cachetop.monitor import Monitor  # noqa: E402
from cachetop.target_url import parse_target_url  # noqa: E402
from cachetop.tracker import TargetTracker  # noqa: E402
from tests.topology_servers import RedisClusterSet  # noqa: E402


def nodes_text(primaries: int, failed_over: int = -1) -> str:
    """CLUSTER NODES of `primaries` primaries with a replica each; shard `failed_over` has its
    replica promoted and its old primary failed."""
    per = CLUSTER_SLOTS // primaries
    lines = []
    for i in range(primaries):
        first, last = i * per, CLUSTER_SLOTS - 1 if i == primaries - 1 else (i + 1) * per - 1
        p, r = f"p{i:039d}", f"r{i:039d}"
        paddr, raddr = f"10.0.{i // 250}.{i % 250}:6379", f"10.1.{i // 250}.{i % 250}:6379"
        if i == failed_over:
            lines.append(f"{p} {paddr}@16379 master,fail - 0 0 1 disconnected")
            lines.append(f"{r} {raddr}@16379 master - 0 0 2 connected {first}-{last}")
        else:
            lines.append(f"{p} {paddr}@16379 master - 0 0 1 connected {first}-{last}")
            lines.append(f"{r} {raddr}@16379 slave {p} 0 0 1 connected")
    return "\n".join(lines) + "\n"


def shards_reply(primaries: int) -> list[object]:
    per = CLUSTER_SLOTS // primaries
    reply: list[object] = []
    for i in range(primaries):
        first, last = i * per, CLUSTER_SLOTS - 1 if i == primaries - 1 else (i + 1) * per - 1
        members = [[b"id", f"{kind}{i:039d}".encode(), b"port", 6379, b"ip",
                    f"10.{n}.{i // 250}.{i % 250}".encode(), b"endpoint", b"x", b"role", role,
                    b"replication-offset", 1000, b"health", b"online"]
                   for kind, n, role in (("p", 0, b"master"), ("r", 1, b"replica"))]
        reply.append([b"slots", [first, last], b"nodes", members])
    return reply


def timed(label: str, fn: object, repeat: int) -> float:
    assert callable(fn)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    per = (time.perf_counter() - start) / repeat
    print(f"  {label:<44} {per * 1000:8.2f} ms")
    return per


def pure(nodes: int) -> None:
    primaries = nodes // 2
    text, failed = nodes_text(primaries), nodes_text(primaries, failed_over=primaries // 2)
    shards = shards_reply(primaries)
    print(f"pure, {nodes} nodes ({primaries} primaries, a replica each):")
    timed("parse CLUSTER NODES", lambda: parse_cluster_nodes(text), 20)
    timed("parse CLUSTER SHARDS", lambda: parse_cluster_shards(shards), 20)
    before, after = parse_cluster_nodes(text), parse_cluster_nodes(failed)
    changes = topology_changes(before, after)
    assert sorted(c.kind for c in changes) == ["failover", "node-down"], changes
    timed("diff two reads (one failover)", lambda: topology_changes(before, after), 20)
    timed("as_dict (the engine's plain data)", after.as_dict, 20)
    # The engine's side: a group sample with a child sample per node, through the tracker.
    target = parse_target_url("redis+cluster://10.0.0.1:6379")
    topology = after.as_dict()

    def sample(at: float) -> Sample:
        children = {n["address"]: Sample(n["address"], "redis", at, 0.0001,
                                         counters={"ops": at * 100, "hits": at * 90,
                                                   "misses": at * 10},
                                         gauges={"used_memory_bytes": 1e6, "keys": 100.0},
                                         info={"role": "master"})
                    for n in topology["nodes"]}
        return Sample(target.name, target.kind, at, 0.001, children=children, topology=topology)

    tracker = TargetTracker(target)
    tracker.update(sample(1.0))
    at = [1.0]

    def update() -> None:
        at[0] += 1.0
        tracker.update(sample(at[0]))

    timed("tracker.update of the group (figures per node)", update, 5)


def cpu_of(urls: list[str], window_s: float) -> tuple[float, int]:
    """Engine CPU seconds per second polling `urls` at 1 s, and how many results applied."""
    targets = [parse_target_url(u, timeout_s=1.0) for u in urls]
    monitor = Monitor(make_collectors(targets), 1.0)
    monitor.start()
    try:
        time.sleep(2.0)  # connections made, first detail fetched
        start_cpu, start_version, start = time.process_time(), monitor.version, time.monotonic()
        time.sleep(window_s)
        cpu = time.process_time() - start_cpu
        return cpu / (time.monotonic() - start), monitor.version - start_version
    finally:
        monitor.stop()


def real(window_s: float) -> None:
    cluster = RedisClusterSet()
    cluster.start()
    try:
        nodes = [f"redis://127.0.0.1:{n.port}" for n in cluster.nodes]
        print(f"real 3+3 cluster, {window_s:g} s windows, 1 s interval (engine CPU, in-process):")
        for label, urls in (("6 redis:// targets (baseline)", nodes),
                            ("1 redis+cluster:// target", [cluster.url]),
                            ("6 redis:// targets (again)", nodes)):
            cpu, applied = cpu_of(urls, window_s)
            print(f"  {label:<32} {cpu * 100:6.2f} % of a core   {applied} results applied")
    finally:
        cluster.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--window", type=float, default=20.0)
    args = p.parse_args()
    nodes, window = (100, 3.0) if args.smoke else (args.nodes, args.window)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    pure(nodes)
    real(window)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
