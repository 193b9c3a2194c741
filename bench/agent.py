"""Provides the agent benchmark: `cachetop agent` with 1,000 targets (emulated: many targets on
a few real redis-server and memcached processes on loopback, as bench/poll.py does), and what
a Prometheus scrape costs it.

It measures, in one run:
1. the answer time of GET /metrics (wall clock at this process, median and worst): scrapes
   that make the agent render (new figures), scrapes right after another, and scrapes at a
   scraper's steady cadence (every 15 s), which the agent renders just ahead of;
2. the CPU a scrape adds: the agent's CPU over a window with no scrape (the baseline, in the
   same run) against a window of the same length with a fresh-figures scrape every
   SCRAPE_EVERY_S; the difference per scrape, over a 15 s scrape interval, is the share of one
   core a Prometheus scraping every 15 s adds;
3. the size of the exposition, and that every target is in it and up.
Targets (issue 13): answer <= 100 ms, <= 2 % CPU added at 15 s. `--smoke` runs 50 targets.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from cachetop.demo.servers import MemcachedServer, RedisServer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = 2
PROMETHEUS_EVERY_S = 15.0
SCRAPE_EVERY_S = 1.5  # longer than the poll interval: each scrape finds new figures


@contextmanager
def servers(n: int) -> Iterator[tuple[list[Any], list[Any]]]:
    started: list[Any] = []
    try:
        redis = [RedisServer("--maxclients", str(n + 200)) for _ in range(SHARED)]
        memcached = [MemcachedServer("-c", str(n + 200)) for _ in range(SHARED)]
        for server in [*redis, *memcached]:
            server.start()
            started.append(server)
        yield redis, memcached
    finally:
        for server in started:
            server.close()


def write_config(path: Path, n: int, redis: list[Any], memcached: list[Any],
                 interval_s: float) -> None:
    lines = [f"interval = {interval_s}", ""]
    for i in range(n):
        if i % 2:
            url = f"redis://127.0.0.1:{redis[(i // 2) % SHARED].port}"
        else:
            url = f"memcached://127.0.0.1:{memcached[(i // 2) % SHARED].port}"
        lines += ["[[targets]]", f'name = "t{i}"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines))


def scrape(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    return time.perf_counter() - started, body


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=int, default=1000)
    p.add_argument("--interval", type=float, default=1.0, help="the agent's poll interval")
    p.add_argument("--window", type=float, default=30.0, help="seconds of each CPU window")
    p.add_argument("--smoke", action="store_true",
                   help="50 targets, short windows, scrapes 3 s apart (CI)")
    args = p.parse_args()
    n, window = (50, 6.0) if args.smoke else (args.targets, args.window)
    print(f"agent bench: {n} targets, poll every {args.interval:g} s, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    with servers(n) as (redis, memcached), tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "fleet.toml"
        write_config(config, n, redis, memcached, args.interval)
        agent = subprocess.Popen([sys.executable, "-m", "cachetop", "agent", "--config",
                                  str(config), "--listen", "127.0.0.1:0"], cwd=ROOT,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        try:
            assert agent.stderr is not None
            line = agent.stderr.readline()
            found = re.search(r":(\d+)/metrics", line)
            if not found:
                print(f"agent bench: the agent did not start: {line}", file=sys.stderr)
                return 1
            url = f"http://127.0.0.1:{found.group(1)}/metrics"
            return measure(url, psutil.Process(agent.pid), n, args.interval, window,
                           *((3.0, 2) if args.smoke else (PROMETHEUS_EVERY_S, 4)))
        finally:
            agent.terminate()
            agent.wait(30)


def measure(url: str, proc: psutil.Process, n: int, interval_s: float, window: float,
            every_s: float = PROMETHEUS_EVERY_S, scrapes: int = 4) -> int:
    deadline = time.monotonic() + 120 + n * 0.05
    up = 0
    while time.monotonic() < deadline:  # every target up, with an interval's figures
        _, body = scrape(url)
        text = body.decode()
        up = text.count(" 1.0\n", text.find("# TYPE cachetop_target_up"),
                        text.find("# HELP cachetop_target_status"))
        if up == n and text.count("cachetop_interval_seconds{") >= n:
            break
        time.sleep(0.5)
    print(f"  every target up in /metrics: {up}/{n}; exposition {len(body) / 1e6:.2f} MB, "
          f"{text.count(chr(10))} lines", flush=True)
    # 1. the baseline: polling only.
    time.sleep(interval_s)
    c0, t0 = cpu_s(proc), time.monotonic()
    time.sleep(window)
    base = (cpu_s(proc) - c0) / (time.monotonic() - t0)
    # 2. the same window with a fresh scrape every SCRAPE_EVERY_S, then one cached one each.
    fresh: list[float] = []
    cached: list[float] = []
    c0, t0 = cpu_s(proc), time.monotonic()
    next_at = t0
    while time.monotonic() - t0 < window:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += SCRAPE_EVERY_S
        fresh.append(scrape(url)[0])
    elapsed = time.monotonic() - t0
    with_scrapes = (cpu_s(proc) - c0) / elapsed
    for _ in range(len(fresh)):
        cached.append(scrape(url)[0])
    per_scrape_s = max(0.0, (with_scrapes - base) * elapsed / len(fresh))
    added = per_scrape_s / PROMETHEUS_EVERY_S
    print(f"  /metrics answer, new figures: median {statistics.median(fresh) * 1e3:.1f} ms, "
          f"worst {max(fresh) * 1e3:.1f} ms ({len(fresh)} scrapes); unchanged figures: "
          f"median {statistics.median(cached) * 1e3:.1f} ms (rendered again unless the "
          f"last is under {min(interval_s, 1.0):g} s old)", flush=True)
    print(f"  agent CPU: {base * 100:.1f} % of a core polling; {with_scrapes * 100:.1f} % "
          f"with a scrape every {SCRAPE_EVERY_S:g} s: {per_scrape_s * 1e3:.0f} ms of CPU a "
          f"scrape, {added * 100:.2f} % of a core at one scrape every "
          f"{PROMETHEUS_EVERY_S:g} s", flush=True)
    # 3. scrapes at a scraper's steady cadence: the agent renders just ahead of each.
    cadence: list[float] = []
    scrape(url)
    next_at = time.monotonic() + every_s
    for _ in range(scrapes):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += every_s
        cadence.append(scrape(url)[0])
    print(f"  /metrics answer, one scrape every {every_s:g} s (rendered ahead): median "
          f"{statistics.median(cadence) * 1e3:.1f} ms, worst {max(cadence) * 1e3:.1f} ms "
          f"({len(cadence)} scrapes)", flush=True)
    answer_ok = statistics.median(cadence) <= 0.1
    print(f"  targets: answer <= 100 ms ({'holds' if answer_ok else 'FAILS'} at the median), "
          f"scrape CPU <= 2 % ({'holds' if added <= 0.02 else 'FAILS'}); "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    return 0 if up == n else 1


if __name__ == "__main__":
    sys.exit(main())
