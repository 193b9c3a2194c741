"""Provides the polling benchmark: targets per process at a 1 s interval, and CPU per poll.

Many emulated targets (many connections to a few real redis-server and memcached processes on
loopback) are polled by one `Monitor`; a baseline measured in the same run (redis-py `info()`,
raw INFO + cachetop's flat parser, pymemcache `stats()`) sits beside the figures. Starts and
stops exactly its own server processes. Run `python bench/poll.py --help`; figures and how to
read them are in bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
import redis  # noqa: E402
from pymemcache.client.base import Client as MemcacheClient  # noqa: E402
from redis._parsers.helpers import parse_info  # noqa: E402

from cachetop.demo.servers import MemcachedServer, RedisServer  # noqa: E402
from cachetop.metrics.derive import TargetTracker  # noqa: E402
from cachetop.monitor import Monitor  # noqa: E402
from collectors import redis_parse  # noqa: E402
from collectors.base import Deadline, Target  # noqa: E402
from collectors.registry import make_collector  # noqa: E402

INTERVAL_S = 1.0
SHARED_SERVERS = 2  # redis-server and memcached processes shared by the emulated targets
HIST_CMD = "cmdstat_latency|histogram"
MAX_RUN_S = 900.0  # the load child and every loop stop by themselves after this


# -- servers and load --------------------------------------------------------------------------


@dataclass
class Servers:
    """The processes one run owns: shared ones for the fleet, two redis with one target each."""

    redis_shared: list[Any]
    memcached_shared: list[Any]
    redis_idle: Any  # exactly one target: the histogram policy as a real idle instance sees it
    redis_loaded: Any  # exactly one target, plus the background GET load

    def all(self) -> list[Any]:
        return [*self.redis_shared, *self.memcached_shared, self.redis_idle, self.redis_loaded]


@contextmanager
def servers_started() -> Iterator[Servers]:
    started: list[Any] = []
    try:
        def redis_server() -> Any:
            server = RedisServer("--maxclients", "4000")
            started.append(server)
            server.start()
            return server

        def memcached_server() -> Any:
            server = MemcachedServer("-c", "4096")
            started.append(server)
            server.start()
            return server

        yield Servers([redis_server() for _ in range(SHARED_SERVERS)],
                      [memcached_server() for _ in range(SHARED_SERVERS)],
                      redis_server(), redis_server())
    finally:
        for server in started:
            server.close()


@contextmanager
def load_started(port: int, ops_per_s: float) -> Iterator[None]:
    """GETs on one redis in a child process, so their CPU is not counted as cachetop's."""
    if ops_per_s <= 0:
        yield
        return
    child = subprocess.Popen([sys.executable, __file__, "--load-child", str(port),
                              str(ops_per_s), str(os.getpid())])
    try:
        yield
    finally:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def load_child(port: int, ops_per_s: float, parent: int) -> None:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    client.set("bench:key", b"x" * 100)
    period, next_at = 1.0 / ops_per_s, time.monotonic()
    stop_at = next_at + MAX_RUN_S
    while os.getppid() == parent and next_at < stop_at:
        client.get("bench:key")
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))


def raise_nofile(needed: int) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return f"{soft}"


# -- baseline ----------------------------------------------------------------------------------


def cpu_us_per_call(rows: list[tuple[str, Callable[[], object]]], seconds: float,
                    slices: int = 5) -> list[tuple[str, float]]:
    """CPU µs per call of each function, looped for `seconds` of wall time in all (no other
    thread runs then). The rows take turns in `slices` slices and each row reports its median
    slice, so the noise of this shared machine falls on every row alike."""
    per_slice: dict[str, list[float]] = {label: [] for label, _ in rows}
    for _, fn in rows:
        fn()
    for _ in range(slices):
        for label, fn in rows:
            calls, cpu0 = 0, time.process_time()
            stop_at = time.monotonic() + seconds / slices / len(rows)
            while time.monotonic() < stop_at:
                for _ in range(10):
                    fn()
                calls += 10
            per_slice[label].append((time.process_time() - cpu0) / calls * 1e6)
    return [(label, sorted(v)[len(v) // 2]) for label, v in per_slice.items()]


def baseline(srv: Servers, seconds: float) -> list[tuple[str, float]]:
    rport, mport = srv.redis_idle.port, srv.memcached_shared[0].port
    sections = ("server", "clients", "memory", "persistence", "stats", "replication", "keyspace")
    client = redis.Redis(host="127.0.0.1", port=rport)
    conn = redis.Connection(host="127.0.0.1", port=rport)
    mc = MemcacheClient(("127.0.0.1", mport), connect_timeout=2, timeout=2, no_delay=True)

    def raw_info() -> bytes:
        conn.send_command("INFO", *sections)
        return conn.read_response()  # type: ignore[no-any-return]

    def collector(kind: str, port: int, probes: int) -> Callable[[], object]:
        target = Target(name=f"base-{kind}-{probes}", kind=kind, address=f"127.0.0.1:{port}",
                        host="127.0.0.1", port=port, timeout_s=1.0, probes_per_poll=probes)
        c = make_collector(target)
        return lambda: c.collect(Deadline(1.0))

    raw = raw_info()
    sample = collector("redis", rport, 3)()
    tracker = TargetTracker(Target(name="t", kind="redis", address="a"))
    clock = [sample.taken_at]

    def derive() -> object:  # successive samples 1 s apart, so the 60 s probe window fills
        clock[0] += INTERVAL_S
        return tracker.update(replace(sample, taken_at=clock[0]))
    rows = [
        ("redis-py Redis.info() (INFO + parse_info)", client.info),
        ("raw INFO round trip, no parsing", raw_info),
        ("raw INFO + redis_parse.info_fields", lambda: redis_parse.info_fields(raw_info())),
        ("  parse_info alone (same reply)", lambda: parse_info(raw.decode())),
        ("  info_fields alone (same reply)", lambda: redis_parse.info_fields(raw)),
        ("pymemcache Client.stats()", mc.stats),
        ("cachetop redis collect(), 0 probes", collector("redis", rport, 0)),
        ("cachetop redis collect(), 3 probes", collector("redis", rport, 3)),
        ("cachetop memcached collect(), 0 probes", collector("memcached", mport, 0)),
        ("cachetop memcached collect(), 3 probes", collector("memcached", mport, 3)),
        ("TargetTracker.update (derive), redis sample", derive),
    ]
    out = cpu_us_per_call(rows, seconds)
    client.close()
    conn.disconnect()
    mc.close()
    return out


# -- fleet runs --------------------------------------------------------------------------------


class RecordingTracker:
    """Wraps a TargetTracker and keeps the `updated_at` of every figures it returns.

    `Monitor.subscribe` callbacks take no argument, so they cannot tell which target was
    updated; this proxy in `Monitor.trackers` costs one call and one list append per poll.
    """

    def __init__(self, tracker: TargetTracker) -> None:
        self._tracker = tracker
        self.times: list[float] = []
        self.failed: list[tuple[float, str]] = []

    def update(self, sample: Any) -> Any:
        figures = self._tracker.update(sample)
        self.times.append(figures.updated_at)
        return figures

    def fail(self, error: Any) -> Any:
        figures = self._tracker.fail(error)
        self.times.append(figures.updated_at)
        self.failed.append((figures.updated_at, error.status))
        return figures


def make_targets(srv: Servers, n: int, probes: int) -> tuple[list[Target], list[Any]]:
    """n targets, half redis and half memcached; two redis are alone on their own server."""
    def target(kind: str, server: Any, i: int) -> Target:
        return Target(name=f"{kind}-{i:04d}", kind=kind, address=f"127.0.0.1:{server.port}",
                      host="127.0.0.1", port=server.port, timeout_s=1.0,
                      probes_per_poll=probes)

    n_redis = max(2, n // 2)
    owners = [srv.redis_idle, srv.redis_loaded]
    owners += [srv.redis_shared[i % SHARED_SERVERS] for i in range(n_redis - 2)]
    owners += [srv.memcached_shared[i % SHARED_SERVERS] for i in range(n - n_redis)]
    targets = [target(o.binary.split("-")[0], o, i) for i, o in enumerate(owners)]
    return targets, owners


def histogram_calls(server: Any) -> int:
    client = server.client(socket_timeout=2)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return int(stats.get(HIST_CMD, {}).get("calls", 0))


def thread_cpu_s() -> dict[str, float]:
    """This process's CPU seconds (user + sys) by thread group: main, scheduler, pool."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    os_threads = psutil.Process().threads()
    # The pool keeps adding threads: name those born while /proc was read, too.
    names.update({t.native_id: t.name for t in threading.enumerate()})
    groups = {"main": 0.0, "scheduler": 0.0, "pool": 0.0, "other": 0.0}
    for t in os_threads:
        name = names.get(t.id, "")
        group = ("main" if name == "MainThread" else "scheduler" if name == "poll-scheduler"
                 else "pool" if name.startswith("poll_") else "other")
        groups[group] += t.user_time + t.system_time
    return groups


@dataclass
class RunFigures:
    n: int
    cpu_pct: float
    user_pct: float
    sys_pct: float
    us_per_poll: float
    polls_per_target_s: float
    on_time: float
    worst_gap_s: float
    never_polled: int
    failures: dict[str, int]
    callback_polls_per_target_s: float
    hist_shared: float
    hist_idle: float
    hist_loaded: float
    rss_mb: float
    threads: int
    threads_peak: int
    server_cpu_pct: float
    split_pct: dict[str, float]


def on_time_share(recs: list[RecordingTracker], start: float, end: float) -> tuple[float, float]:
    """Share of targets updated within 1.5 intervals of `end` whose gaps never exceeded 2."""
    good, worst = 0, 0.0
    for rec in recs:
        before = [t for t in rec.times if t < start]
        times = before[-1:] + [t for t in rec.times if start <= t <= end]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)] or [end - start]
        gap = max(max(gaps), end - times[-1]) if times else end - start
        worst = max(worst, gap)
        if times and end - times[-1] <= 1.5 * INTERVAL_S and max(gaps) <= 2 * INTERVAL_S:
            good += 1
    return good / max(1, len(recs)), worst


class Window:
    """One end of a measured window.

    Process CPU, clocks and the poll count are read back to back by calls that keep the GIL:
    with hundreds of poll threads queued for it, any call that lets it go (file reads, a lock)
    can take seconds to come back, which skewed an earlier version of this bench by up to 2x.
    The /proc reads come after, and only their ratios are used.
    """

    def __init__(self, servers_cpu: list[psutil.Process], applied: list[int]) -> None:
        self.rusage = resource.getrusage(resource.RUSAGE_SELF)
        self.mono, self.wall, self.polls = time.monotonic(), time.time(), applied[0]
        self.split = thread_cpu_s()
        self.server_cpu_s = sum(sum(p.cpu_times()[:2]) for p in servers_cpu)
        self.server_mono = time.monotonic()


def split_share(w0: Window, w1: Window) -> dict[str, float]:
    """Each thread group's share of the process CPU, in %."""
    delta = {k: w1.split[k] - w0.split[k] for k in w0.split}
    total = sum(delta.values()) or 1.0
    return {k: 100 * v / total for k, v in delta.items()}


def fleet_run(srv: Servers, n: int, warmup_s: float, window_s: float,
              probes: int) -> RunFigures:
    targets, owners = make_targets(srv, n, probes)
    monitor = Monitor([make_collector(t) for t in targets], INTERVAL_S, history_s=600.0)
    recs = [RecordingTracker(t) for t in monitor.trackers]
    monitor.trackers[:] = recs  # type: ignore[assignment]
    applied = [0]  # a subscriber as cheap as the TUI's post_message; racy += only undercounts
    monitor.subscribe(lambda: applied.__setitem__(0, applied[0] + 1))
    redis_servers = [*srv.redis_shared, srv.redis_idle, srv.redis_loaded]
    hist0 = {s.port: histogram_calls(s) for s in redis_servers}
    servers_cpu = [psutil.Process(s.pid) for s in srv.all()]
    started_at, threads_peak = time.monotonic(), 0
    monitor.start()
    try:
        time.sleep(warmup_s)
        w0 = Window(servers_cpu, applied)
        while time.monotonic() < w0.mono + window_s:
            time.sleep(min(0.5, w0.mono + window_s - time.monotonic()))
            threads_peak = max(threads_peak, threading.active_count())
        w1 = Window(servers_cpu, applied)
        threads = threading.active_count()
        hist1 = {s.port: histogram_calls(s) for s in redis_servers}
        minutes = (time.monotonic() - started_at) / 60
    finally:
        monitor.stop()
    wall = w1.mono - w0.mono
    if abs((w1.wall - w0.wall) - wall) > 0.05:
        print(f"  warning: the wall clock moved {w1.wall - w0.wall - wall:+.3f} s against the "
              "monotonic clock; on-time figures are suspect", file=sys.stderr)
    user = w1.rusage.ru_utime - w0.rusage.ru_utime
    sys_ = w1.rusage.ru_stime - w0.rusage.ru_stime
    polls = sum(1 for r in recs for t in r.times if w0.wall <= t <= w1.wall)
    failures: dict[str, int] = {}
    for r in recs:
        for t, status in r.failed:
            if w0.wall <= t <= w1.wall:
                failures[status] = failures.get(status, 0) + 1
    on_time, worst = on_time_share(recs, w0.wall, w1.wall)

    def hist_rate(servers: list[Any]) -> float:
        # Each target fetches once on its first poll; count only the fetches after that.
        n_t = sum(1 for o in owners if o in servers)
        fetched = sum(hist1[s.port] - hist0[s.port] for s in servers) - n_t
        return fetched / max(1, n_t) / minutes

    return RunFigures(
        n=n, cpu_pct=100 * (user + sys_) / wall, user_pct=100 * user / wall,
        sys_pct=100 * sys_ / wall, us_per_poll=1e6 * (user + sys_) / max(1, polls),
        polls_per_target_s=polls / n / wall, on_time=on_time, worst_gap_s=worst,
        never_polled=sum(1 for r in recs if not r.times), failures=failures,
        callback_polls_per_target_s=(w1.polls - w0.polls) / n / wall,
        hist_shared=hist_rate(srv.redis_shared), hist_idle=hist_rate([srv.redis_idle]),
        hist_loaded=hist_rate([srv.redis_loaded]), rss_mb=w1.rusage.ru_maxrss / 1024,
        threads=threads, threads_peak=threads_peak,
        server_cpu_pct=100 * (w1.server_cpu_s - w0.server_cpu_s) / (w1.server_mono
                                                                     - w0.server_mono),
        split_pct=split_share(w0, w1),
    )


# -- profile -----------------------------------------------------------------------------------


class StageClock:
    """Per-thread CPU (time.thread_time) spent inside wrapped functions, summed per stage."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[dict[str, float]] = []
        self._lock = threading.Lock()
        self.stack = ExitStack()

    def _mine(self) -> dict[str, float]:
        mine = getattr(self._local, "d", None)
        if mine is None:
            mine = self._local.d = {}
            with self._lock:
                self._all.append(mine)
        return mine  # type: ignore[no-any-return]

    def wrap(self, owner: Any, attr: str, stage: str) -> None:
        original = getattr(owner, attr)
        thread_time, mine = time.thread_time, self._mine

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                d = mine()
                d[stage] = d.get(stage, 0.0) + thread_time() - t0
                d[stage + "#"] = d.get(stage + "#", 0.0) + 1

        if attr in vars(owner):
            self.stack.callback(setattr, owner, attr, original)
        else:  # inherited: wrap it on this class only, and remove the wrapper afterwards
            self.stack.callback(delattr, owner, attr)
        setattr(owner, attr, timed)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        with self._lock:
            for d in self._all:
                for k, v in d.items():
                    out[k] = out.get(k, 0.0) + v
        return out

    def reset(self) -> None:
        with self._lock:
            for d in self._all:
                d.clear()


STAGES = (  # (module, owner attribute path, stage label); nesting shown by indentation
    ("collectors.poller", "poll", "poll() = collect + Deadline + PollResult"),
    ("collectors.redis_info", "RedisInfoCollector.collect", "  redis collect()"),
    ("collectors.redis_info", "sample_from_info", "    INFO -> Sample (info_fields, keyspace)"),
    ("collectors.redis_info", "RedisInfoCollector._probe", "    PING probes"),
    ("collectors.redis_info", "RedisInfoCollector._fetch_histogram",
     "    LATENCY HISTOGRAM fetch + parse"),
    ("collectors.redis_info", "RedisInfoCollector._fetch_detail",
     "    detail: INFO all + SLOWLOG (every 10 s)"),
    ("collectors.memcached_stats", "MemcachedStatsCollector.collect", "  memcached collect()"),
    ("pymemcache.client.base", "Client.version", "    version probes"),
    ("collectors.memcached_stats", "sample_from_stats", "    stats -> Sample"),
    ("collectors.memcached_stats", "MemcachedStatsCollector._fetch_detail",
     "    detail: stats slabs/items/settings (every 10 s)"),
    ("cachetop.monitor", "Monitor.apply", "Monitor.apply"),
    ("cachetop.metrics.derive", "TargetTracker.update", "  TargetTracker.update (derive)"),
    ("cachetop.metrics.series", "History.record", "  History.record"),
)


def install_stages(clock: StageClock) -> None:
    import importlib

    for module_name, path, stage in STAGES:
        owner: Any = importlib.import_module(module_name)
        *parents, attr = path.split(".")
        for part in parents:
            owner = getattr(owner, part)
        clock.wrap(owner, attr, stage)


def profile_stages(srv: Servers, n: int, warmup_s: float, window_s: float,
                   probes: int) -> list[str]:
    """Where the CPU goes in a real threaded run: per-stage thread CPU, µs per poll."""
    clock = StageClock()
    with clock.stack:
        install_stages(clock)
        targets, _ = make_targets(srv, n, probes)
        monitor = Monitor([make_collector(t) for t in targets], INTERVAL_S, history_s=600.0)
        monitor.start()
        try:
            time.sleep(warmup_s)
            clock.reset()
            w0 = Window([], [0])
            time.sleep(window_s)
            w1 = Window([], [0])
            totals = clock.totals()
        finally:
            monitor.stop()
    polls = totals.get(STAGES[0][2] + "#", 1.0)
    total = sum(w1.rusage[:2]) - sum(w0.rusage[:2])
    lines = [f"stages at {n} targets, {window_s:g} s window, {polls:.0f} polls; process CPU "
             f"{100 * total / (w1.mono - w0.mono):.1f}% of one core, {1e6 * total / polls:.0f}"
             " us/poll (the stage clocks add ~10 us/poll)",
             f"  {'stage (thread CPU)':<56}{'us/poll':>9}{'calls/poll':>11}{'% CPU':>7}"]
    for _, _, stage in STAGES:
        cpu = totals.get(stage, 0.0)
        lines.append(f"  {stage:<56}{1e6 * cpu / polls:>9.1f}"
                     f"{totals.get(stage + '#', 0) / polls:>11.2f}{100 * cpu / total:>7.1f}")
    share = split_share(w0, w1)
    pool, sched = total * share["pool"] / 100, total * share["scheduler"] / 100
    inside = totals.get(STAGES[0][2], 0.0) + totals.get("Monitor.apply", 0.0)
    for label, cpu in (("pool threads outside poll() and apply()", pool - inside),
                       ("scheduler thread", sched), ("main and other threads",
                                                     total - pool - sched)):
        lines.append(f"  {label:<56}{1e6 * cpu / polls:>9.1f}{'':>11}{100 * cpu / total:>7.1f}")
    return lines


def sequential(srv: Servers, n: int, rounds: int, probes: int,
               profiler: cProfile.Profile | None = None) -> float:
    """CPU µs per poll + apply when one thread polls every target in turn (no pool)."""
    from collectors.poller import poll

    targets, _ = make_targets(srv, n, probes)
    collectors = [make_collector(t) for t in targets]
    monitor = Monitor(collectors, INTERVAL_S, history_s=600.0)
    for i, c in enumerate(collectors):  # warm: connect, first detail and histogram
        monitor.apply(poll(c, i, INTERVAL_S))
    cpu0 = time.process_time()
    with profiler or ExitStack():
        for _ in range(rounds):
            for i, c in enumerate(collectors):
                monitor.apply(poll(c, i, INTERVAL_S))
    cpu = time.process_time() - cpu0
    for c in collectors:
        c.close()
    return 1e6 * cpu / (rounds * n)


def cprofile_text(profiler: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- report ------------------------------------------------------------------------------------


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def print_runs(runs: list[RunFigures]) -> None:
    print_table(
        ["targets", "CPU %core", "usr", "sys", "us/poll", "polls/tgt/s", "on time",
         "worst gap s", "failed", "threads end/peak", "peak RSS MB", "servers %core"],
        [[str(r.n), f"{r.cpu_pct:.1f}", f"{r.user_pct:.1f}", f"{r.sys_pct:.1f}",
          f"{r.us_per_poll:.0f}", f"{r.polls_per_target_s:.3f}", f"{r.on_time:.1%}",
          f"{r.worst_gap_s:.2f}", str(sum(r.failures.values())),
          f"{r.threads}/{r.threads_peak}", f"{r.rss_mb:.0f}", f"{r.server_cpu_pct:.1f}"]
         for r in runs])
    print("\n  LATENCY HISTOGRAM fetches per redis target per minute")
    print_table(["targets", "shared servers (emulated)", "sole target, idle",
                 "sole target, loaded"],
                [[str(r.n), f"{r.hist_shared:.1f}", f"{r.hist_idle:.1f}", f"{r.hist_loaded:.1f}"]
                 for r in runs])
    print("\n  share of the process CPU by thread, %")
    print_table(["targets", *runs[0].split_pct],
                [[str(r.n), *(f"{v:.1f}" for v in r.split_pct.values())] for r in runs])
    for r in runs:
        if r.failures or r.never_polled:
            print(f"  {r.n} targets: failed polls in the window {r.failures or 0}, "
                  f"{r.never_polled} targets never polled")
        if abs(r.callback_polls_per_target_s - r.polls_per_target_s) > 0.02:
            print(f"  {r.n} targets: subscriber counted {r.callback_polls_per_target_s:.3f} "
                  "polls/target/s")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="20 targets, a few seconds (CI)")
    p.add_argument("--sizes", default="100,500,1000", help="fleet sizes, comma-separated")
    p.add_argument("--window", type=float, default=20.0, help="measured seconds per size")
    p.add_argument("--warmup", type=float, default=4.0, help="seconds before each window")
    p.add_argument("--load-ops", type=float, default=50.0,
                   help="background GETs/s on the 'loaded' redis (0: none)")
    p.add_argument("--probes", type=int, default=Target.__dataclass_fields__[
        "probes_per_poll"].default, help="Target.probes_per_poll (PINGs or versions per poll)")
    p.add_argument("--profile", action="store_true",
                   help="also break the largest size's CPU down by stage, and cProfile")
    p.add_argument("--load-child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.window, args.warmup = "20", 3.0, 1.5
    return args


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so every `finally` stops what this run started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load_child:
        port, rate, parent = args.load_child
        with suppress(KeyboardInterrupt):
            load_child(int(port), float(rate), int(parent))
        return 0
    signal.signal(signal.SIGTERM, interrupted)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    nofile = raise_nofile(2 * max(sizes) + 256)
    print(f"cachetop poll bench: {os.cpu_count()} cores, nofile {nofile}, interval "
          f"{INTERVAL_S:g} s, window {args.window:g} s, warm-up {args.warmup:g} s, "
          f"load {args.load_ops:g} GET/s, python {sys.version.split()[0]}, "
          f"redis-py {redis.__version__} (hiredis {redis.utils.HIREDIS_AVAILABLE})")
    with servers_started() as srv, load_started(srv.redis_loaded.port, args.load_ops):
        print("\nbaseline, one thread, CPU per call")
        for label, us in baseline(srv, 5.0 if args.smoke else 30.0):
            print(f"  {label:<44}{us:>8.1f} us")
        print(f"\nMonitor at {INTERVAL_S:g} s, {SHARED_SERVERS} redis + {SHARED_SERVERS} memcached"
              " shared by the targets, plus 2 redis with one target each (idle, loaded)")
        runs = []
        for n in sizes:
            runs.append(fleet_run(srv, n, args.warmup, args.window, args.probes))
            print(f"  {n} targets done", file=sys.stderr)
        print_runs(runs)
        if args.profile:
            n = max(sizes)
            print()
            print("\n".join(profile_stages(srv, n, args.warmup, args.window, args.probes)))
            floor = sequential(srv, n, 3, args.probes)
            print(f"\n  the same {n} targets polled in turn by one thread (no pool, no wake-ups):"
                  f" {floor:.0f} us/poll")
            profiler = cProfile.Profile()
            sequential(srv, 200, 5, args.probes, profiler)
            print("\ncProfile of that loop, 200 targets x 5 rounds, by own time")
            print(cprofile_text(profiler, 25))
    failed = [r.n for r in runs if r.never_polled]
    if failed:
        print(f"FAIL: some targets never polled at sizes {failed}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
