"""Provides DemoFleet: a small local fleet of real servers with a live workload.

Everything it starts lives under one temp dir and is stopped on exit, Ctrl-C or a crash.
"""

from __future__ import annotations

import subprocess
import sys
from types import TracebackType

from cachetop.demo.servers import MemcachedServer, RedisServer, die_with_parent


class DemoFleet:
    """Two redis-server (one small enough to evict), one small memcached, and a workload."""

    def __init__(self, rate: float = 300.0) -> None:
        self.rate = rate
        self.redis = [RedisServer(),
                      RedisServer("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")]
        self.memcached = [MemcachedServer(memory_mb=2)]
        self.names = ["sessions", "catalog", "pages"]
        self.workload: subprocess.Popen[bytes] | None = None

    @property
    def urls(self) -> list[str]:
        return [s.url for s in (*self.redis, *self.memcached)]

    def start(self) -> None:
        try:
            for server in (*self.redis, *self.memcached):
                server.start()
            self.workload = subprocess.Popen(
                [sys.executable, "-m", "cachetop.demo.workload", "--rate", str(self.rate),
                 *self.urls], stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.workload is not None and self.workload.poll() is None:
            self.workload.terminate()
            try:
                self.workload.wait(5)
            except subprocess.TimeoutExpired:
                self.workload.kill()
        for server in (*self.redis, *self.memcached):
            server.close()

    def __enter__(self) -> DemoFleet:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
