"""Real Redis Cluster and Sentinel sets on free loopback ports, for tests.

Each is built from tests.servers.RedisServer processes, so teardown stops exactly the processes
this fixture started (by their own Popen handles), never anything found by name.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import redis

from cachetop.demo.servers import require_binary
from tests.servers import RedisServer

# Fast failure detection: a killed primary is replaced within a few seconds on a loaded machine.
NODE_TIMEOUT_MS = 1500


def _until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")


class RedisClusterSet:
    """`primaries` primaries with `replicas` replicas each, made by `redis-cli --cluster create`."""

    def __init__(self, primaries: int = 3, replicas: int = 1, *args: str) -> None:
        self.nodes = [RedisServer("--cluster-enabled", "yes", "--cluster-config-file",
                                  "nodes.conf", "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                                  "--cluster-replica-validity-factor", "0", *args)
                      for _ in range(primaries * (1 + replicas))]
        self.replicas = replicas

    def start(self, attempts: int = 2) -> None:
        """Start the nodes and create the cluster; a failed create (seen once on a loaded
        machine, exit 1) is retried once on fresh ports, and its output kept for the error."""
        for attempt in range(attempts):
            try:
                self._start()
                return
            except RuntimeError:
                self.close()
                if attempt == attempts - 1:
                    raise
                self.nodes = [RedisServer(*n.args) for n in self.nodes]
            except BaseException:
                self.close()
                raise

    def _start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = require_binary("redis-cli")
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        done = subprocess.run([cli, "--cluster", "create", *addresses,
                               "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode:
            raise RuntimeError("redis-cli --cluster create failed: "
                               + (done.stdout + done.stderr)[-600:])
        self.wait_ok()

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Every running node says cluster_state:ok and knows every other node's role."""
        primaries = len(self.nodes) // (1 + self.replicas)

        def ok() -> bool:
            for node in self.running():
                with node.client() as c:
                    info = c.execute_command("CLUSTER", "INFO").decode()
                    lines = c.execute_command("CLUSTER", "NODES").decode().splitlines()
                    replication = c.info("replication")
                if "cluster_state:ok" not in info:
                    return False
                if replication["role"] == "slave" and \
                        replication["master_link_status"] != "up":
                    return False
                # Every bus link connected, and every node knowing every replica of a known
                # primary: a CLUSTER FAILOVER sent sooner timed out unheard.
                nodes = [line.split() for line in lines]
                if any(n[7] != "connected" for n in nodes):
                    return False
                masters = {n[0] for n in nodes if "master" in n[2]}
                if sum(1 for n in nodes if "slave" in n[2] and n[3] in masters) \
                        != primaries * self.replicas:
                    return False
                serving = [n for n in nodes if "master" in n[2] and "fail" not in n[2]
                           and len(n) > 8]
                if len(serving) != primaries:
                    return False
            return True
        _until(ok, timeout_s, "cluster_state:ok and every primary known on every node")

    def wait_replicated(self, timeout_s: float = 15.0) -> None:
        """Every replica holds as many keys as its primary. Replication is asynchronous: a
        test that wrote keys and read the nodes at once found a replica still at 0 keys
        (its sync not done) while DBSIZE read a moment later said 103."""
        def caught_up() -> bool:
            for primary in self.primaries():
                replica = self.replica_of(primary)
                with primary.client() as p, replica.client() as r:
                    if p.dbsize() != r.dbsize():
                        return False
            return True
        _until(caught_up, timeout_s, "every replica holding its primary's keys")

    def running(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def role(self, node: RedisServer) -> str:
        with node.client() as c:
            return str(c.info("replication")["role"])

    def primaries(self) -> list[RedisServer]:
        return [n for n in self.running() if self.role(n) == "master"]

    def replica_of(self, primary: RedisServer) -> RedisServer:
        for node in self.running():
            with node.client() as c:
                info = c.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == primary.port:
                return node
        raise AssertionError(f"no replica of {primary.port}")

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:2])

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class SentinelSet:
    """A master, a replica and one sentinel (quorum 1) watching them as `name`."""

    def __init__(self, name: str = "mymaster", sentinels: int = 1) -> None:
        self.name = name
        self.master = RedisServer()
        self.replica = RedisServer()
        self.sentinels = [RedisServer("--sentinel") for _ in range(sentinels)]

    def start(self) -> None:
        try:
            self.master.start()
            self.replica.args += ["--replicaof", "127.0.0.1", str(self.master.port)]
            self.replica.start()
            for sentinel in self.sentinels:
                conf = sentinel.dir / "sentinel.conf"
                conf.write_text(
                    f"port {sentinel.port}\nbind 127.0.0.1\ndir {sentinel.dir}\n"
                    f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 1\n"
                    f"sentinel down-after-milliseconds {self.name} 1000\n"
                    f"sentinel failover-timeout {self.name} 5000\n")
                sentinel.argv = lambda s=sentinel, c=conf: [  # type: ignore[method-assign]
                    s.path, str(c), "--sentinel"]
                sentinel.start()
            _until(self._replica_known, 30.0, "the sentinel to see the replica")
        except BaseException:
            self.close()
            raise

    def _replica_known(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client(decode_responses=True) as c:
                replicas = c.sentinel_slaves(self.name)
                master = c.sentinel_master(self.name)
            if not replicas or replicas[0].get("master-link-status") != "ok" or \
                    int(master["num-other-sentinels"]) != len(self.sentinels) - 1:
                return False
        return True

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.name}"

    def close(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            server.close()


class _Servers(Protocol):
    def start(self) -> None: ...

    def close(self) -> None: ...


S = TypeVar("S", bound=_Servers)


def running(servers: S) -> Iterator[S]:
    """A fixture's body: start the set, hand it over, stop exactly its processes."""
    servers.start()
    try:
        yield servers
    finally:
        servers.close()
