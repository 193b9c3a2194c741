"""Provides the demo workload: cache-aside reads with TTLs on Zipf-distributed keys.

Runs as its own process (`python -m cachetop.demo.workload URL...`) so its CPU never competes
with cachetop's poller for the GIL. Bounded: it stops when its parent goes away.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

KEYS = 5000
ZIPF_S = 1.1
VALUE_SIZES = (200, 800, 3000)


def zipf_weights(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights: key k is drawn with probability ∝ 1 / (k + 1)^s."""
    return list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))


class Cache:
    """get/set over one Redis or memcached, so the loop below is the same for both."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        if parts.scheme == "redis":
            import redis

            client = redis.Redis(host=parts.hostname, port=parts.port, socket_timeout=2)
            self.get: Callable[[str], object] = client.get
            self.set: Callable[[str, bytes, int], object] = (
                lambda k, v, ttl: client.set(k, v, ex=ttl))
        else:
            from pymemcache.client.base import Client

            mc = Client((parts.hostname, parts.port), connect_timeout=2, timeout=2, no_delay=True)
            self.get = mc.get
            self.set = lambda k, v, ttl: mc.set(k, v, expire=ttl, noreply=True)


def run(urls: Sequence[str], ops_per_s: float, parent: int) -> None:
    caches = [Cache(u) for u in urls]
    weights = zipf_weights(KEYS, ZIPF_S)
    population = range(KEYS)
    rng = random.Random(7)
    period = 1.0 / ops_per_s
    next_at = time.monotonic()
    started = next_at
    while os.getppid() == parent:
        elapsed = time.monotonic() - started
        cold = elapsed < 20  # a cold start: a wider key space until the hot set is cached
        for cache in caches:
            key = rng.choices(population, cum_weights=weights)[0]
            if cold:
                key = rng.randrange(KEYS * 4)
            name = f"user:{key}"
            try:
                if cache.get(name) is None:  # cache-aside: miss -> "database" -> set with TTL
                    cache.set(name, b"x" * VALUE_SIZES[key % 3], rng.randint(10, 60))
                elif rng.random() < 0.05:  # write-through update
                    cache.set(name, b"y" * VALUE_SIZES[key % 3], rng.randint(10, 60))
            except Exception:  # noqa: BLE001 - a demo workload rides out a restarted server
                time.sleep(0.2)
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cachetop-demo-workload")
    p.add_argument("urls", nargs="+")
    p.add_argument("--rate", type=float, default=300.0, help="lookups per second per cache")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run(args.urls, args.rate, os.getppid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
