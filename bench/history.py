"""Memory of the history store: 1 hour at 1 s for 1,000 targets, beside a deque baseline.

Prints RSS growth (psutil) for cachetop's float32 ring buffers and, in the same run, for the
naive store (a deque of Python floats per figure). `--smoke` runs 50 targets x 10 minutes.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from collections import deque
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cachetop.metrics.series import FIGURES, History  # noqa: E402


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def fill_history(targets: int, points: int) -> tuple[float, float]:
    before = rss_mb()
    history = History(history_s=points, interval_s=1.0)
    started = time.process_time()
    now = time.monotonic()
    for i in range(points):
        for t in range(targets):
            history.record(f"target-{t}", now + i, {name: float(i + t) for name in FIGURES})
    cpu_us = (time.process_time() - started) / (targets * points) * 1e6
    grown = rss_mb() - before
    assert len(history.series("target-0")["t"]) == points
    return grown, cpu_us


def fill_deques(targets: int, points: int) -> float:
    before = rss_mb()
    store = {f"target-{t}": {name: deque(maxlen=points) for name in ("t", *FIGURES)}
             for t in range(targets)}
    for i in range(points):
        for t in range(targets):
            for name, ring in store[f"target-{t}"].items():
                ring.append(math.sin(i + t) + i * 1e-3 if name != "t" else float(i))
    return rss_mb() - before


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    targets, points = (50, 600) if args.smoke else (1000, 3600)
    base = rss_mb()
    grown, cpu_us = fill_history(targets, points)
    naive = fill_deques(targets, points)
    print(f"history store: {targets} targets x {points} points x {len(FIGURES) + 1} series")
    print(f"  process RSS before: {base:.1f} MB")
    print(f"  cachetop float32 rings: +{grown:.1f} MB "
          f"({grown * 2**20 / (targets * points * (len(FIGURES) + 1)):.1f} B/point), "
          f"{cpu_us:.1f} us CPU per target-interval record")
    print(f"  baseline deque of floats: +{naive:.1f} MB "
          f"({naive * 2**20 / (targets * points * (len(FIGURES) + 1)):.1f} B/point)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
