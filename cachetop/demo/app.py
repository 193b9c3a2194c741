"""Provides the demo application process: a small shop on the demo fleet, with a /metrics endpoint.

    python -m cachetop.demo.app --metrics-port P --sessions URL --replica URL --catalog URL \\
        --pages URL --fragments URL [--rate REQ_PER_S] [--cold-start S]

Worker threads serve requests at a paced rate (see shop.py for the caching patterns); database
latency is a sleep in the worker, so the process stays light on CPU. Bounded: it exits on
SIGTERM or SIGINT, and within half a second once its parent is gone.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from cachetop.cli_parser import ArgumentParser
from cachetop.demo.app_metrics import AppMetrics
from cachetop.demo.database import SimulatedDatabase, WriteBehind
from cachetop.demo.phases import PHASES, Schedule
from cachetop.demo.shop import (
    CACHES,
    FRAGMENTS,
    L2,
    LOCAL,
    OPERATIONS,
    PAGES,
    SESSIONS,
    Clients,
    Shop,
)

log = logging.getLogger("cachetop.demo.app")
WORKERS = 8
CATEGORY_CHANGE_EVERY_S = 15.0
WARM_PRODUCTS, WARM_PAGES, WARM_BATCH = 2000, 400, 100


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"not a host:port URL: {url}")
    return parts.hostname, parts.port


def connect(args: argparse.Namespace) -> Clients:
    import redis
    from pymemcache.client.base import PooledClient

    def rds(url: str) -> redis.Redis:
        host, port = _address(url)
        return redis.Redis(host=host, port=port, socket_timeout=2, socket_connect_timeout=2)

    def mc(url: str) -> PooledClient:
        return PooledClient(_address(url), connect_timeout=2, timeout=2, no_delay=True,
                            max_pool_size=WORKERS + 2)

    return Clients(sessions=rds(args.sessions), replica=rds(args.replica),
                   catalog=rds(args.catalog), pages=mc(args.pages), fragments=mc(args.fragments))


class DemoApp:
    """The shop, its worker threads, the phase clock and the metrics endpoint."""

    def __init__(self, clients: Clients, rate: float, schedule: Schedule, seed: int = 7) -> None:
        self.metrics = AppMetrics(CACHES, OPERATIONS)
        self.db = SimulatedDatabase(lambda q, s: self.metrics.db_latency.labels(q).observe(s))
        self.write_behind = WriteBehind(self.db, self._flushed)
        self.shop = Shop(clients, self.metrics, self.db, self.write_behind)
        self.rate, self.schedule, self.seed = rate, schedule, seed
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.phase = ""
        self._l2_info: dict[str, float] = {}
        self.metrics.add_source(LOCAL, lambda: self._lru_reading())
        self.metrics.add_source(L2, lambda: self._l2_info)

    def _flushed(self, written: int, pending: int) -> None:
        self.metrics.write_behind_written.inc(written)
        self.metrics.write_behind_depth.set(pending)

    def _lru_reading(self) -> dict[str, float]:
        c = self.shop.lru.counts()
        return {"hits": c.hits, "misses": c.misses, "evictions": c.evictions,
                "expirations": c.expirations, "entries": c.entries,
                "memory_bytes": c.memory_bytes, "max_memory_bytes": c.max_memory_bytes}

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def start(self, metrics_port: int) -> None:
        threads: list[tuple[str, Callable[[], None]]] = [
            (f"worker-{i}", functools.partial(self._work, i)) for i in range(WORKERS)]
        threads += [("write-behind", functools.partial(self.write_behind.run, self.stop)),
                    ("warmer", self._warm), ("redis-l2-info", self._poll_l2_info)]
        for name, target in threads:
            threading.Thread(target=self._guard, args=(target,), name=name, daemon=True).start()
        self.metrics.serve(metrics_port)

    def _guard(self, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception:  # a thread boundary: log it, and end the demo app loudly
            log.exception("%s failed", threading.current_thread().name)
            self.stop.set()

    def _work(self, index: int) -> None:
        """Serve requests at rate / WORKERS, paced; a slow request delays, never bursts."""
        rng = random.Random(self.seed * 1000 + index)
        next_at = time.monotonic() + rng.random() * 0.1
        while not self.stop.is_set():
            now = time.monotonic()
            if next_at > now:
                self.stop.wait(next_at - now)
                continue
            per_worker = self.rate * self.schedule.rate_factor(self.elapsed_s()) / WORKERS
            next_at = max(next_at + 1.0 / per_worker, now - 1.0)
            try:
                self.shop.handle(rng)
            except Exception as exc:  # noqa: BLE001 - a restarted or flushed server: ride it out
                log.warning("request failed: %r", exc)
                self.stop.wait(0.5)

    def _warm(self) -> None:
        """During the cold start, load the most popular products in batches spread over most
        of the phase, so the caches visibly fill. More than the catalog holds, so it evicts:
        the hottest batch goes last, and LRU keeps it."""
        batches = range(WARM_PRODUCTS - WARM_BATCH, -1, -WARM_BATCH)
        pause_s = self.schedule.cold_start_s * 0.8 / len(batches)
        for start in batches:
            if self.stop.wait(pause_s) or self.elapsed_s() >= self.schedule.cold_start_s:
                return
            try:
                self.shop.warm(range(start, start + WARM_BATCH), pages=start < WARM_PAGES)
            except Exception as exc:  # noqa: BLE001 - warming is best effort
                log.warning("cache warming failed: %r", exc)

    def _poll_l2_info(self) -> None:
        """The second layer's size and evictions, as Redis reports them, every second."""
        catalog = self.shop.c.catalog
        while not self.stop.is_set():
            try:
                info = catalog.info()
                self._l2_info = {
                    "memory_bytes": info["used_memory"], "max_memory_bytes": info["maxmemory"],
                    "evictions": info["evicted_keys"], "expirations": info["expired_keys"],
                    "entries": info.get("db0", {}).get("keys", 0)}
            except Exception as exc:  # noqa: BLE001 - a restarted server: try again later
                log.warning("catalog INFO failed: %r", exc)
            self.stop.wait(1.0)

    def tick(self, rng: random.Random, last_category_change: float) -> float:
        """Enter the phase of now (running its event once), and change a category now and
        then; returns when the last category change happened."""
        phase = self.schedule.phase_at(self.elapsed_s())
        if phase != self.phase:
            self._enter(phase, rng)
        now = time.monotonic()
        if phase != "cold-start" and now - last_category_change >= CATEGORY_CHANGE_EVERY_S:
            removed = self.shop.category_change(rng)
            log.info("category change: %d entries invalidated by tag", removed)
            return now
        return last_category_change

    def _enter(self, phase: str, rng: random.Random) -> None:
        log.info("phase: %s", phase)
        self.phase = phase
        self.metrics.set_phase(phase, PHASES)
        self.shop.hot_product = None
        if phase == "hot-key-burst":
            self.shop.hot_product = 300 + rng.randrange(1000)  # a lukewarm product goes viral
        elif phase == "deploy":
            log.info("deploy: %d keys flushed from product:*", self.shop.deploy())


def run(args: argparse.Namespace) -> int:
    stop_signal = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_signal.set())
    signal.signal(signal.SIGINT, lambda *_: stop_signal.set())
    parent = os.getppid()
    schedule = Schedule(cold_start_s=args.cold_start, burst_every_s=args.burst_every,
                        deploy_every_s=args.deploy_every)
    app = DemoApp(connect(args), args.rate, schedule)
    app.metrics.set_servers({cache: ":".join(map(str, _address(url))) for cache, url in (
        (L2, args.catalog), (SESSIONS, args.sessions), (PAGES, args.pages),
        (FRAGMENTS, args.fragments))})
    app.start(args.metrics_port)
    rng, last_change = random.Random(3), time.monotonic()
    try:
        while not (stop_signal.wait(0.5) or app.stop.is_set()) and os.getppid() == parent:
            try:
                last_change = app.tick(rng, last_change)
            except Exception as exc:  # noqa: BLE001 - a failed event must not end the demo
                log.warning("event failed: %r", exc)
                last_change = time.monotonic()
    finally:
        app.stop.set()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="cachetop-demo-app")
    p.add_argument("--metrics-port", type=int, required=True)
    for name in ("sessions", "replica", "catalog", "pages", "fragments"):
        p.add_argument(f"--{name}", required=True, metavar="URL")
    p.add_argument("--rate", type=float, default=150.0, help="requests per second")
    p.add_argument("--cold-start", type=float, default=20.0, metavar="S")
    p.add_argument("--burst-every", type=float, default=180.0, metavar="S")
    p.add_argument("--deploy-every", type=float, default=300.0, metavar="S")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(threadName)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
