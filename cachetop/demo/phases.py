"""Provides Schedule (the demo workload's phases over time) and ZipfKeys (popularity skew).

The phases make the figures move while someone watches:

    cold-start     empty caches, traffic ramping up from 30 %, a warmer walking the catalog
    steady         the normal mix
    hot-key-burst  a flash sale: one product takes a large share of the traffic, 1.6x rate
    deploy         a new version: the local cache restarts empty and a namespace is flushed
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

PHASES = ("cold-start", "steady", "hot-key-burst", "deploy")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When each phase runs, in seconds since the application started."""

    cold_start_s: float = 20.0
    first_burst_s: float = 30.0  # after the cold start
    burst_every_s: float = 180.0
    burst_s: float = 20.0
    first_deploy_s: float = 100.0  # after the cold start
    deploy_every_s: float = 300.0
    deploy_s: float = 15.0
    burst_rate_factor: float = 1.6

    def phase_at(self, t_s: float) -> str:
        if t_s < self.cold_start_s:
            return "cold-start"
        since = t_s - self.cold_start_s
        if _in_window(since, self.first_deploy_s, self.deploy_every_s, self.deploy_s):
            return "deploy"
        if _in_window(since, self.first_burst_s, self.burst_every_s, self.burst_s):
            return "hot-key-burst"
        return "steady"

    def rate_factor(self, t_s: float) -> float:
        """The share of the nominal request rate to send at `t_s`."""
        phase = self.phase_at(t_s)
        if phase == "cold-start":
            return 0.3 + 0.7 * t_s / self.cold_start_s
        if phase == "hot-key-burst":
            return self.burst_rate_factor
        return 1.0


def _in_window(since_s: float, first_s: float, every_s: float, length_s: float) -> bool:
    return since_s >= first_s and (since_s - first_s) % every_s < length_s


class ZipfKeys:
    """Draws ids 0..n-1, id k with probability ∝ 1 / (k + 1)^s: id 0 is the most popular."""

    def __init__(self, n: int, s: float) -> None:
        self.n = n
        self._cumulative: list[float] = list(
            itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))
        self._total = self._cumulative[-1]

    def draw(self, rng: random.Random) -> int:
        return min(self.n - 1, bisect.bisect(self._cumulative, rng.random() * self._total))

    def share_of_top(self, k: int) -> float:
        """The probability mass of the k most popular ids."""
        return self._cumulative[min(k, self.n) - 1] / self._total
