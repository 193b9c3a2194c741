"""Provides SimulatedDatabase and WriteBehind: the slow system of record behind the demo's caches.

A query costs 2-20 ms of wall time (log-normal, median ~5 ms) and no CPU: it sleeps in the
calling worker thread, so a cache miss is as expensive for the request as on a real database.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable

MIN_QUERY_S, MEDIAN_QUERY_S, MAX_QUERY_S = 0.002, 0.005, 0.020


class SimulatedDatabase:
    """Rows are generated from their id and a version that updates bump."""

    def __init__(self, observe: Callable[[str, float], None], seed: int = 11) -> None:
        self._observe = observe
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self.queries = 0

    def _query(self, kind: str, scale: float = 1.0) -> None:
        latency = self._rng.lognormvariate(math.log(MEDIAN_QUERY_S), 0.6) * scale
        latency = min(MAX_QUERY_S * scale, max(MIN_QUERY_S, latency))
        time.sleep(latency)
        self.queries += 1
        self._observe(kind, latency)

    def version(self, row: str) -> int:
        with self._lock:
            return self._versions.get(row, 1)

    def read(self, table: str, row: str, size: int) -> bytes:
        """SELECT one row of `table`: a JSON document about `size` bytes long."""
        self._query("read")
        return render_row(row, self.version(row), size)

    def read_many(self, table: str, rows: list[str], sizes: list[int]) -> list[bytes]:
        """One SELECT ... WHERE id IN (...): a few times slower than a single row."""
        self._query("read-batch", scale=2.0)
        return [render_row(row, self.version(row), size) for row, size in zip(rows, sizes,
                                                                               strict=True)]

    def write(self, table: str, row: str) -> int:
        """UPDATE one row; returns its new version."""
        self._query("write")
        with self._lock:
            version = self._versions.get(row, 1) + 1
            self._versions[row] = version
            return version

    def write_many(self, table: str, rows: list[str]) -> None:
        """One batched UPDATE (the write-behind flush): a little slower than a single one."""
        self._query("write-behind", scale=1.5)
        with self._lock:
            for row in rows:
                self._versions[row] = self._versions.get(row, 1) + 1


def render_row(row: str, version: int, size: int) -> bytes:
    head = json.dumps({"id": row, "version": version, "updated": int(time.time())})
    return (head + " " * max(0, size - len(head))).encode()


class WriteBehind:
    """Updates acknowledged once cached; the database gets them later, coalesced by key
    (the latest value of a key wins) and written in batches by one background thread."""

    def __init__(self, db: SimulatedDatabase, on_flush: Callable[[int, int], None],
                 batch: int = 100, every_s: float = 0.5, max_pending: int = 20_000) -> None:
        self.db = db
        self._on_flush = on_flush  # (rows written, rows still pending)
        self.batch, self.every_s, self.max_pending = batch, every_s, max_pending
        self._lock = threading.Lock()
        self._pending: dict[str, bytes] = {}
        self.dropped = 0

    def enqueue(self, row: str, value: bytes) -> None:
        with self._lock:
            if len(self._pending) >= self.max_pending and row not in self._pending:
                self.dropped += 1  # a real queue would apply back-pressure here
                return
            self._pending[row] = value

    @property
    def depth(self) -> int:
        return len(self._pending)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.every_s):
            with self._lock:
                rows, self._pending = list(self._pending), {}
            for start in range(0, len(rows), self.batch):
                if stop.is_set():
                    return
                chunk = rows[start:start + self.batch]
                self.db.write_many("write-behind", chunk)
                self._on_flush(len(chunk), self.depth)
            self._on_flush(0, self.depth)
