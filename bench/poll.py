"""Provides the polling benchmark: the CPU of the whole process tree at fleet size, whether
every target is polled on time, and whether probe round trips tell the truth.

For each size (1,000 targets at 1 s and 5,000 at 5 s by default) it runs, against real
redis-server and memcached processes on loopback that it starts and stops itself:
1. the product as users run it, `cachetop --batch --json --config fleet.toml`: CPU of the
   front and its engine process over a window, the engine's thread count, RSS, and the share
   of printed snapshots in which every target is up with interval figures;
2. an EngineClient (the same engine, read from this process): polls per target per second,
   on-time share and worst gap from each target's update times, failures by status, and the
   probe p50/p99 cachetop reports for a quiet Redis and a quiet memcached against an
   independent client (its own process) probing them during the same window;
3. the baseline, in the same run: a thread per target polling with redis-py and pymemcache
   (INFO + PING, stats + version), the way cachetop polled before the engine (issue 7).
Plus the channel's cost: encoding and decoding one target's figures. `--smoke` runs a small
size for CI. Figures and how to read them: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from cachetop.collectors.base import Target  # noqa: E402
from cachetop.demo.scripted import scripted_fleet  # noqa: E402
from cachetop.demo.servers import MemcachedServer, RedisServer  # noqa: E402
from cachetop.engine.client import EngineClient  # noqa: E402
from cachetop.engine.protocol import (  # noqa: E402
    CODECS,
    FrameReader,
    figures_from_wire,
    figures_to_wire,
    frame,
)

SHARED = 2  # redis-server and memcached processes shared by the emulated targets
MAX_RUN_S = 900.0
BASELINE_MAX = 2000
QUIET = ("quiet-redis", "quiet-memcached")


@dataclass
class Servers:
    redis_shared: list[Any]
    memcached_shared: list[Any]
    quiet_redis: Any
    quiet_memcached: Any
    loaded_redis: Any


@contextmanager
def servers_started(n: int) -> Iterator[Servers]:
    started: list[Any] = []

    def start(server: Any) -> Any:
        started.append(server)
        server.start()
        return server

    clients = str(n + 200)
    try:
        yield Servers([start(RedisServer("--maxclients", clients)) for _ in range(SHARED)],
                      [start(MemcachedServer("-c", clients)) for _ in range(SHARED)],
                      start(RedisServer()), start(MemcachedServer()), start(RedisServer()))
    finally:
        for server in started:
            server.close()


@contextmanager
def load_started(port: int, ops_per_s: float) -> Iterator[None]:
    """GETs on the loaded redis from a child process (its CPU is not cachetop's)."""
    code = textwrap.dedent(f"""
        import os, time, redis
        c = redis.Redis(port={port}); c.set("k", b"x" * 100)
        period, nxt, stop = 1 / {ops_per_s}, time.monotonic(), time.monotonic() + {MAX_RUN_S}
        while os.getppid() == {os.getpid()} and nxt < stop:
            c.get("k"); nxt += period; time.sleep(max(0.0, nxt - time.monotonic()))
    """)
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield
    finally:
        child.kill()
        child.wait(5)


def fleet_targets(srv: Servers, n: int) -> list[dict[str, Any]]:
    """Config entries: the quiet and loaded sole targets, the rest on the shared servers."""
    targets = [{"name": "quiet-redis", "url": f"redis://127.0.0.1:{srv.quiet_redis.port}"},
               {"name": "quiet-memcached",
                "url": f"memcached://127.0.0.1:{srv.quiet_memcached.port}"},
               {"name": "loaded-redis", "url": f"redis://127.0.0.1:{srv.loaded_redis.port}"}]
    for i in range(n - len(targets)):
        if i % 2:
            port = srv.redis_shared[(i // 2) % SHARED].port
            targets.append({"name": f"r{i}", "url": f"redis://127.0.0.1:{port}"})
        else:
            port = srv.memcached_shared[(i // 2) % SHARED].port
            targets.append({"name": f"m{i}", "url": f"memcached://127.0.0.1:{port}"})
    return targets


def write_config(path: Path, targets: list[dict[str, Any]], interval_s: float) -> None:
    lines = [f"interval = {interval_s}", ""]
    for t in targets:
        lines += ["[[targets]]", f'name = "{t["name"]}"', f'url = "{t["url"]}"', ""]
    path.write_text("\n".join(lines))


def tree_cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


# -- 1. the product: cachetop --batch --json ---------------------------------------------------

@dataclass
class CliFigures:
    tree_pct: float
    front_pct: float
    engine_pct: float
    engine_threads_max: int
    engine_rss_mb: float
    lines: int
    complete_share: float  # printed snapshots where every target is up with interval figures


def run_cli(config: Path, n: int, interval_s: float, warmup_s: float,
            window_s: float) -> CliFigures:
    front = subprocess.Popen([sys.executable, "-m", "cachetop", "--batch", "--json",
                              "--config", str(config)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    lines: list[tuple[float, bool]] = []

    def read() -> None:
        assert front.stdout is not None
        for line in front.stdout:
            doc = json.loads(line)
            complete = all(t["status"] == "up" and t["ops_per_sec"] is not None
                           for t in doc["targets"])
            lines.append((time.monotonic(), complete and len(doc["targets"]) == n))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        engine = None
        while engine is None and time.monotonic() < deadline:
            children = psutil.Process(front.pid).children()
            engine = children[0] if children else None
            time.sleep(0.1)
        assert engine is not None, "no engine process"
        front_p = psutil.Process(front.pid)
        time.sleep(warmup_s)
        c0, f0, e0, t0 = (tree_cpu_s([front_p, engine]), tree_cpu_s([front_p]),
                          tree_cpu_s([engine]), time.monotonic())
        threads_max, end = 0, t0 + window_s
        while time.monotonic() < end:
            threads_max = max(threads_max, engine.num_threads())
            time.sleep(0.5)
        c1, f1, e1, t1 = (tree_cpu_s([front_p, engine]), tree_cpu_s([front_p]),
                          tree_cpu_s([engine]), time.monotonic())
        rss = engine.memory_info().rss / 2**20
    finally:
        front.send_signal(signal.SIGINT)
        try:
            front.wait(15)
        except subprocess.TimeoutExpired:
            front.kill()
            front.wait()
    seen = [ok for at, ok in lines if t0 <= at <= t1]
    span = t1 - t0
    return CliFigures(100 * (c1 - c0) / span, 100 * (f1 - f0) / span, 100 * (e1 - e0) / span,
                      threads_max, rss, len(seen), sum(seen) / len(seen) if seen else 0.0)


# -- 2. the engine read directly: on time, and probe truth ---------------------------------------

INDEPENDENT = textwrap.dedent("""
    import json, socket, sys, time
    port, command, seconds = int(sys.argv[1]), sys.argv[2].encode() + b"\\r\\n", float(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts, stop = [], time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        sock.sendall(command)
        reply = b""
        while not reply.endswith(b"\\r\\n"):
            reply += sock.recv(4096)
        rtts.append(time.perf_counter() - started)
        time.sleep(0.01)
    rtts.sort()
    print(json.dumps({"p50": rtts[len(rtts) // 2], "p99": rtts[int(len(rtts) * 0.99)]}))
""")


@dataclass
class EngineFigures:
    polls_per_target_s: float
    on_time: float
    worst_gap_s: float
    failed: dict[str, int]
    probes: dict[str, tuple[float, float, float, float]]  # name: shown p50/p99, indep p50/p99


def run_engine(targets: list[Target], srv: Servers, interval_s: float, warmup_s: float,
               window_s: float) -> EngineFigures:
    client = EngineClient(targets, interval_s, history_s=60.0)
    updates: dict[str, list[float]] = {t.name: [] for t in targets}
    failed: dict[str, int] = {}
    client.start()
    independent: list[subprocess.Popen[str]] = []
    try:
        time.sleep(warmup_s)
        for port, command in ((srv.quiet_redis.port, "PING"),
                              (srv.quiet_memcached.port, "version")):
            independent.append(subprocess.Popen(
                [sys.executable, "-c", INDEPENDENT, str(port), command, str(window_s)],
                stdout=subprocess.PIPE, text=True))
        start = time.time()
        end = time.monotonic() + window_s
        while time.monotonic() < end:
            for t in client.snapshot().targets:
                times = updates[t.name]
                if t.updated_at and (not times or times[-1] != t.updated_at):
                    times.append(t.updated_at)
                    if t.status not in ("up", "restarted"):
                        failed[t.status] = failed.get(t.status, 0) + 1
            time.sleep(interval_s / 4)  # each update stays an interval: none is missed
        stop = time.time()
        snap = client.snapshot()
        refs = [json.loads(p.communicate(timeout=60)[0]) for p in independent]
    finally:
        for process in independent:
            if process.poll() is None:
                process.kill()
        client.stop()
    polls, late, worst = 0, 0, 0.0
    for times in updates.values():
        inside = [t for t in times if t >= start]
        polls += len(inside)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b >= start]
        edge = stop - (times[-1] if times else start)
        worst = max([worst, edge, *gaps])
        if edge > 1.5 * interval_s or any(g > 2 * interval_s for g in gaps):
            late += 1
    by_name = {t.name: t for t in snap.targets}
    probes = {}
    for name, ref in zip(QUIET, refs, strict=True):
        lat = by_name[name].probe_latency
        probes[name] = (lat.p50_s or 0.0, lat.p99_s or 0.0, ref["p50"], ref["p99"])
    span = stop - start
    return EngineFigures(polls / len(targets) / span, 1 - late / len(targets), worst, failed,
                         probes)


# -- 3. the baseline: a thread per target, redis-py and pymemcache --------------------------------

BASELINE = textwrap.dedent("""
    import json, resource, sys, threading, time
    import redis
    from pymemcache.client.base import Client
    targets, interval, warmup, window = json.loads(sys.argv[1]), float(sys.argv[2]), \\
        float(sys.argv[3]), float(sys.argv[4])
    stop_at = time.monotonic() + warmup + window + 2
    polls = [0]
    def poll(kind, port, offset):
        time.sleep(offset)
        if kind == "redis":
            c = redis.Redis(port=port, socket_timeout=interval)
            def once(): c.info(); c.ping()
        else:
            c = Client(("127.0.0.1", port), timeout=interval, connect_timeout=interval)
            def once(): c.stats(); c.version()
        nxt = time.monotonic()
        while nxt < stop_at:
            try:
                once(); polls[0] += 1
            except Exception:
                pass
            nxt += interval
            time.sleep(max(0.0, nxt - time.monotonic()))
    threads = [threading.Thread(target=poll, args=(k, p, i * interval / len(targets)),
                                daemon=True) for i, (k, p) in enumerate(targets)]
    for t in threads: t.start()
    time.sleep(warmup)
    r0, p0, t0 = resource.getrusage(resource.RUSAGE_SELF), polls[0], time.monotonic()
    time.sleep(window)
    r1, p1, t1 = resource.getrusage(resource.RUSAGE_SELF), polls[0], time.monotonic()
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    print(json.dumps({"pct": 100 * cpu / (t1 - t0), "polls_per_target_s":
                      (p1 - p0) / len(targets) / (t1 - t0), "threads": threading.active_count()}))
""")


def run_baseline(entries: list[dict[str, Any]], interval_s: float, warmup_s: float,
                 window_s: float) -> dict[str, float]:
    pairs = [["redis" if e["url"].startswith("redis") else "memcached",
              int(e["url"].rsplit(":", 1)[1])] for e in entries]
    out = subprocess.run([sys.executable, "-c", BASELINE, json.dumps(pairs), str(interval_s),
                          str(warmup_s), str(window_s)], capture_output=True, text=True,
                         timeout=warmup_s + window_s + 120, check=True)
    return dict(json.loads(out.stdout))


# -- the channel ---------------------------------------------------------------------------------

def channel_cost_us(codec: str) -> tuple[float, float, int]:
    """µs to encode and to decode one target's figures (a realistic Redis row, in a message of
    100 as a delta carries them), and its bytes."""
    figures = scripted_fleet()[0]
    rounds, rows = 300, 100

    def message() -> bytes:
        return frame({"t": "snap", "ch": [[i, figures_to_wire(figures)] for i in range(rows)]},
                     codec)

    encode = timeit.timeit(message, number=rounds) / rounds / rows
    data = message()

    def decode() -> None:
        for m in FrameReader(codec).feed(data):
            for _, row in m["ch"]:
                figures_from_wire(row)

    decoded = timeit.timeit(decode, number=rounds) / rounds / rows
    return encode * 1e6, decoded * 1e6, len(data) // rows


# -- main ----------------------------------------------------------------------------------------

def parse_sizes(text: str) -> list[tuple[int, float]]:
    sizes = []
    for part in text.split(","):
        n, _, interval = part.partition("@")
        sizes.append((int(n), float(interval or 1)))
    return sizes


def raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sizes", default="1000@1,5000@5",
                   help="targets@interval_s, comma separated (default 1000@1,5000@5)")
    p.add_argument("--window", type=float, default=20.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=6.0)
    p.add_argument("--load-ops", type=float, default=50.0, help="GET/s on the loaded redis")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--smoke", action="store_true", help="20 targets, short windows (CI)")
    args = p.parse_args(argv)
    sizes = [(20, 1.0)] if args.smoke else parse_sizes(args.sizes)
    window = 4.0 if args.smoke else args.window
    warmup = 3.0 if args.smoke else args.warmup
    raise_nofile(max(n for n, _ in sizes) * 3 + 1000)
    print(f"cachetop poll bench: {psutil.cpu_count()} cores, python "
          f"{sys.version.split()[0]}, window {window:g} s, warm-up {warmup:g} s")
    for codec in CODECS:
        enc, dec, size = channel_cost_us(codec)
        print(f"channel ({codec}): {enc:.1f} us to encode and {dec:.1f} us to decode (figures "
              f"rebuilt) one target's figures, {size} bytes")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for n, interval in sizes:
        with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
            srv = stack.enter_context(servers_started(n))
            stack.enter_context(load_started(srv.loaded_redis.port, args.load_ops))
            entries = fleet_targets(srv, n)
            config = Path(tmp) / "fleet.toml"
            write_config(config, entries, interval)
            from cachetop.config import load_config

            targets = list(load_config(config, {}).targets)
            cli = run_cli(config, n, interval, warmup, window)
            eng = run_engine(targets, srv, interval, warmup, window)
            # A thread per target cannot start 5,000 threads on this machine (it reported 0
            # polls): past BASELINE_MAX targets the baseline is said to be skipped, not run.
            base = (None if args.no_baseline or args.smoke or n > BASELINE_MAX else
                    run_baseline(entries, interval, warmup, window))
        print(f"\n{n} targets at {interval:g} s:")
        print(f"  cachetop --batch --json: whole tree {cli.tree_pct:.1f}% of a core "
              f"(front {cli.front_pct:.1f}%, engine {cli.engine_pct:.1f}%), "
              f"{cli.tree_pct * 1e4 * interval / n:.0f} us CPU per poll, engine threads max "
              f"{cli.engine_threads_max}, engine RSS {cli.engine_rss_mb:.0f} MB, "
              f"{cli.lines} snapshots printed, complete in {cli.complete_share:.0%}")
        print(f"  engine: {eng.polls_per_target_s * interval:.3f} polls per target per interval,"
              f" on time {eng.on_time:.1%}, worst gap {eng.worst_gap_s:.2f} s, failed "
              f"{eng.failed or 0}")
        for name, (p50, p99, r50, r99) in eng.probes.items():
            ok = all(s <= max(3 * r, r + 0.0003) for s, r in ((p50, r50), (p99, r99)))
            print(f"  probe {name}: cachetop p50 {p50 * 1e3:.3f} / p99 {p99 * 1e3:.3f} ms, "
                  f"independent client p50 {r50 * 1e3:.3f} / p99 {r99 * 1e3:.3f} ms "
                  f"({'within' if ok else 'NOT within'} max(3x, +0.3 ms))")
        if n > BASELINE_MAX and not (args.no_baseline or args.smoke):
            print(f"  baseline skipped: a thread per target is not run past {BASELINE_MAX} "
                  "targets (at 5,000 it could not start its threads here)")
        if base is not None:
            print(f"  baseline, a thread per target (redis-py, pymemcache): "
                  f"{base['pct']:.1f}% of a core, {base['polls_per_target_s'] * interval:.3f} "
                  f"polls per target per interval, {base['threads']:.0f} threads")
        if stop.is_set():
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
