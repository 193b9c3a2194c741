"""Test helpers: targets for test servers, and two-poll figures from a real collector."""

from __future__ import annotations

import time
from collections.abc import Callable

from cachetop.collectors.base import Deadline, Target
from cachetop.collectors.registry import make_collector
from cachetop.collectors.secret import Secret
from cachetop.fleet import TargetFigures
from cachetop.tracker import TargetTracker


def redis_target(port: int, name: str = "r", *, username: str | None = None,
                 password: str | None = None, timeout_s: float = 1.0) -> Target:
    return Target(name=name, kind="redis", address=f"127.0.0.1:{port}", host="127.0.0.1",
                  port=port, username=username,
                  password=Secret(password) if password is not None else None,
                  timeout_s=timeout_s)


def memcached_target(port: int, name: str = "m", timeout_s: float = 1.0) -> Target:
    return Target(name=name, kind="memcached", address=f"127.0.0.1:{port}", host="127.0.0.1",
                  port=port, timeout_s=timeout_s)


class TwoPolls:
    """A real collector and a tracker: `poll()` returns the figures of the interval it ends."""

    def __init__(self, target: Target) -> None:
        self.collector = make_collector(target)
        self.tracker = TargetTracker(target)

    def poll(self) -> TargetFigures:
        from cachetop.collectors.base import CollectError

        try:
            return self.tracker.update(self.collector.collect(Deadline(self.collector.target
                                                                       .timeout_s)))
        except CollectError as exc:
            return self.tracker.fail(exc)

    def around(self, workload: Callable[[], None]) -> TargetFigures:
        self.poll()
        workload()
        time.sleep(0.05)
        return self.poll()

    def close(self) -> None:
        self.collector.close()
