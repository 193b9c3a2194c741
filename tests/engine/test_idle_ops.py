"""Issue 20 item 2, end to end: an idle Redis polled by the engine process (the path the TUI
and --once take), with its detail watched, reads 0 ops/s: cachetop's own INFO, PINGs, LATENCY
and detail commands are not load."""

from __future__ import annotations

import dataclasses

from cachetop.engine.client import EngineClient
from tests.integration.helpers import redis_target
from tests.servers import RedisServer
from tests.wait import wait_until


def test_an_idle_redis_reads_zero_ops_through_the_engine(redis_server: RedisServer) -> None:
    target = dataclasses.replace(redis_target(redis_server.port, "idle", timeout_s=0.5),
                                 detail_every_s=0.5)
    engine = EngineClient([target], 0.25)
    engine.start()
    seen: list[float] = []  # updated_at of each interval read
    ops: list[float | None] = []
    try:
        # Watched at once (the watch may reach the engine in the same read as its config):
        # INFO all, SLOWLOG... on top of each poll's INFO, PINGs and LATENCY HISTOGRAM.
        engine.watch("idle", True)

        def intervals() -> bool:
            t = engine.snapshot().targets[0]
            if t.interval_s is not None and (not seen or t.updated_at != seen[-1]):
                seen.append(t.updated_at)
                ops.append(t.ops_per_s)
            return len(ops) >= 8 and engine.snapshot().targets[0].detail is not None

        wait_until(intervals, "eight intervals with the detail watched")
    finally:
        engine.stop()
    processed = int(redis_server.client().info("stats")["total_commands_processed"])
    assert processed > 40  # the server counted cachetop's own commands...
    assert ops[-8:] == [0.0] * 8  # ...and none of them is shown as load
