"""Provides RedisProbe: the PING latency probe a bulk delete takes between its batches.

It feeds the Pacer (pacing.py), which slows the run when the server answers others slowly.
A probe every PROBE_EVERY_S is often enough to react within a few batches and rare enough not
to add a round trip to every batch of a fast run.
"""

from __future__ import annotations

import time

import redis

from cachetop.actions.pacing import Pacer
from cachetop.actions.runner import Tally

BASELINE_PROBES = 5
PROBE_EVERY_S = 0.01


def ping_s(client: redis.Redis) -> float:
    started = time.perf_counter()
    client.ping()
    return time.perf_counter() - started


class RedisProbe:
    """Measures a baseline now (before any write), then probes at most every PROBE_EVERY_S."""

    def __init__(self, client: redis.Redis, pacer: Pacer, tally: Tally) -> None:
        self.client, self.pacer, self.tally = client, pacer, tally
        pacer.set_baseline([ping_s(client) for _ in range(BASELINE_PROBES)])
        self._probed_at = time.monotonic()

    def after_batch(self) -> None:
        now = time.monotonic()
        if now - self._probed_at < PROBE_EVERY_S:
            return
        self._probed_at = now
        self.pacer.observe_probe(ping_s(self.client))
        self.tally.slowdowns = self.pacer.slowdowns
        self.tally.limit_keys_per_s = self.pacer.current
