"""Provides the soak bench: a fleet with flapping targets, polled for minutes; is it flat?

One `Monitor` (the real poller and engine, as the TUI runs it) polls ~200 targets that address
a handful of real redis-server and memcached processes (several targets per server: other db
numbers, other names), plus faults: a redis that is SIGKILLed and restarted, a memcached that is
stopped and restarted, a redis that is SIGSTOPped and SIGCONTed, closed ports, a metrics endpoint
that answers 500 or HTML now and then, and a wrong password. Servers, faults, traffic and the
endpoint live in a child process, so the measured process holds only cachetop. Every sample
period it reads RSS, threads, fds, sockets, tracemalloc and gc objects; after the warm-up it fits
a slope to each and prints a verdict. Run `python bench/soak.py --help`; bench/README.md, "Soak",
has the figures.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import heapq
import json
import os
import random
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from cachetop.collectors.base import Target  # noqa: E402
from cachetop.collectors.poller import AUTH_RETRY_S  # noqa: E402
from cachetop.collectors.registry import make_collectors  # noqa: E402
from cachetop.demo.servers import (  # noqa: E402
    MemcachedServer,
    RedisServer,
    free_port,
)
from cachetop.gc_tuning import settle_gc  # noqa: E402
from cachetop.malloc_tuning import ARENAS, TRIM_EVERY_S, limit_malloc_arenas  # noqa: E402
from cachetop.monitor import Monitor  # noqa: E402
from cachetop.parent_death import die_with_parent  # noqa: E402
from cachetop.target_url import parse_target_url  # noqa: E402


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def raise_nofile(needed: int) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return f"{soft}"

RIGHT_PASSWORD = "soak-right-pw-51c2"
WRONG_PASSWORD = "soak-wrong-pw-9e7d"  # must never show in any status line or output
HEAP_LIMIT_MB = 1.0  # fitted growth of the traced Python heap after the warm-up
CACHES = ("local", "remote")  # the endpoint's `cache` label values


# -- the fleet child: servers, faults, traffic and the metrics endpoint -------------------------


@dataclass(frozen=True)
class FaultPlan:
    """How often the child breaks things; every period is in seconds."""

    shared_redis: int = 3
    shared_memcached: int = 2
    kill_every_s: float = 30.0  # the flapping redis: SIGKILL, down for down_s, restarted
    stop_every_s: float = 45.0  # the flapping memcached: SIGTERM, down for down_s, restarted
    down_s: float = 6.0
    freeze_every_s: float = 40.0  # the frozen redis: SIGSTOP for freeze_s, then SIGCONT
    freeze_s: float = 5.0
    bad_http_share: float = 0.3  # endpoint answers: this share 500 or HTML, half each
    traffic_ops_s: float = 100.0
    max_run_s: float = 3600.0


def exposition(started: float, rng: random.Random) -> bytes:
    """A cachetop-convention exposition whose counters grow with time, per cache label."""
    age = time.monotonic() - started
    lines = []
    for i, cache in enumerate(CACHES):
        hits, misses = int(age * (40 + 20 * i)), int(age * (10 + 5 * i))
        lines += [f'cache_hits_total{{cache="{cache}"}} {hits}',
                  f'cache_misses_total{{cache="{cache}"}} {misses}',
                  f'cache_evictions_total{{cache="{cache}"}} {int(age * i)}',
                  f'cache_entries{{cache="{cache}"}} {1000 + rng.randrange(50)}',
                  f'cache_memory_bytes{{cache="{cache}"}} {2**20 + rng.randrange(4096)}',
                  f'cache_memory_max_bytes{{cache="{cache}"}} {2**22}']
    head = ["# TYPE cache_hits_total counter", "# TYPE cache_misses_total counter",
            "# TYPE cache_evictions_total counter", "# TYPE cache_entries gauge",
            "# TYPE cache_memory_bytes gauge", "# TYPE cache_memory_max_bytes gauge"]
    return ("\n".join(head + sorted(lines, key=lambda s: s.split("{")[0])) + "\n").encode()


def metrics_server(plan: FaultPlan) -> ThreadingHTTPServer:
    """The flaky endpoint: an exposition, or (bad_http_share of the time) a 500 or a login page."""
    started, rng, lock = time.monotonic(), random.Random(7), threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # as prometheus_client's start_http_server: one request

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            with lock:
                roll, body = rng.random(), exposition(started, rng)
            if roll < plan.bad_http_share / 2:
                self._send(500, b"internal error\n", "text/plain")
            elif roll < plan.bad_http_share:
                self._send(200, b"<html><body>[b]Sign in[/b]</body></html>\n", "text/html")
            else:
                self._send(200, body, "text/plain; version=0.0.4")

        def _send(self, status: int, body: bytes, mime: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    return server


def traffic(redis_ports: list[int], memcached_ports: list[int], ops_s: float,
            stop: threading.Event) -> None:
    """Light GET/SET load (keys with a TTL) so rates, hit ratios and expirations are live;
    errors from a server that is down are expected and ignored."""
    import redis
    from pymemcache.client.base import Client

    rng = random.Random(3)
    clients: list[Callable[[str, bool], object]] = []
    for port in redis_ports:
        for db in (0, 1, 2):
            r = redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=0.5,
                            socket_connect_timeout=0.5)
            clients.append(lambda k, w, r=r: r.set(k, b"v" * 64, ex=20) if w else r.get(k))
    for port in memcached_ports:
        m = Client(("127.0.0.1", port), connect_timeout=0.5, timeout=0.5)
        clients.append(lambda k, w, m=m: m.set(k, b"v" * 64, expire=20) if w else m.get(k))
    period, next_at = 1.0 / ops_s, time.monotonic()
    while not stop.is_set():
        with suppress(Exception):
            rng.choice(clients)(f"soak:{rng.randrange(1000)}", rng.random() < 0.3)
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))


class Fleet:
    """The child's servers and its fault timeline; every server is started on this thread, so
    PR_SET_PDEATHSIG (tied to the thread that forked) fires only when the child dies."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.servers: list[Any] = []
        self.shared_redis = [self._start(RedisServer()) for _ in range(plan.shared_redis)]
        self.shared_mc = [self._start(MemcachedServer()) for _ in range(plan.shared_memcached)]
        self.flap_redis = self._start(RedisServer())
        self.flap_mc = self._start(MemcachedServer())
        self.frozen = self._start(RedisServer())
        self.auth = self._start(RedisServer("--requirepass", RIGHT_PASSWORD))
        self.http = metrics_server(plan)

    def _start(self, server: Any) -> Any:
        self.servers.append(server)
        server.start()
        return server

    def ports(self) -> dict[str, Any]:
        return {"redis": [s.port for s in self.shared_redis],
                "memcached": [s.port for s in self.shared_mc],
                "flap_redis": self.flap_redis.port, "flap_memcached": self.flap_mc.port,
                "frozen_redis": self.frozen.port, "auth_redis": self.auth.port,
                "http": self.http.server_address[1]}

    def run_faults(self, parent: int) -> None:
        """Fault timeline until the parent goes away; each event is one JSON line on stdout."""
        p = self.plan
        started = time.monotonic()
        heap = [(started + p.kill_every_s, "kill redis"), (started + p.stop_every_s,
                "stop memcached"), (started + p.freeze_every_s, "freeze redis")]
        actions: dict[str, tuple[Callable[[], None], str, float]] = {
            "kill redis": (lambda: sigkill(self.flap_redis), "start redis", p.down_s),
            "start redis": (self.flap_redis.start, "kill redis", p.kill_every_s - p.down_s),
            "stop memcached": (self.flap_mc.stop, "start memcached", p.down_s),
            "start memcached": (self.flap_mc.start, "stop memcached", p.stop_every_s - p.down_s),
            "freeze redis": (self.frozen.freeze, "thaw redis", p.freeze_s),
            "thaw redis": (self.frozen.thaw, "freeze redis", p.freeze_every_s - p.freeze_s),
        }
        while os.getppid() == parent and time.monotonic() - started < p.max_run_s:
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                _, name = heapq.heappop(heap)
                action, then, after = actions[name]
                try:
                    action()
                except (RuntimeError, OSError) as exc:  # a port taken meanwhile: try later
                    print(json.dumps({"event": f"{name} failed", "error": str(exc)}), flush=True)
                    heapq.heappush(heap, (time.monotonic() + 1.0, name))
                    continue
                heapq.heappush(heap, (time.monotonic() + max(0.5, after), then))
                print(json.dumps({"event": name, "t": round(now - started, 1)}), flush=True)
            time.sleep(0.2)

    def close(self) -> None:
        self.http.shutdown()
        for server in self.servers:
            server.close()


def sigkill(server: Any) -> None:
    """A crash, not a shutdown: no chance to close client connections politely."""
    server.proc.kill()
    server.proc.wait(5)
    server.proc = None


def fleet_child(plan_json: str, parent: int) -> None:
    plan = FaultPlan(**json.loads(plan_json))
    stop = threading.Event()
    fleet = Fleet(plan)
    try:
        ports = fleet.ports()
        redis_ports = [*ports["redis"], ports["flap_redis"]]
        threading.Thread(target=traffic, daemon=True, name="traffic", args=(
            redis_ports, [*ports["memcached"], ports["flap_memcached"]], plan.traffic_ops_s,
            stop)).start()
        print(json.dumps(ports), flush=True)
        fleet.run_faults(parent)
    finally:
        stop.set()
        fleet.close()


# -- targets -----------------------------------------------------------------------------------


def fleet_urls(n: int, ports: dict[str, Any], closed: list[int]) -> list[tuple[str, str]]:
    """(name, URL) for n targets: about a fifth fault targets, the rest on the shared servers
    (redis targets spread over db 0-15, each target its own connection)."""
    def share(divisor: int) -> int:
        return max(1, n // divisor)

    urls: list[tuple[str, str]] = []
    base = "redis://127.0.0.1:{}/{}"
    urls += [(f"flap-redis-{i}", base.format(ports["flap_redis"], i % 16))
             for i in range(share(25))]
    urls += [(f"flap-mc-{i}", f"memcached://127.0.0.1:{ports['flap_memcached']}")
             for i in range(share(25))]
    urls += [(f"frozen-{i}", base.format(ports["frozen_redis"], i % 16)) for i in range(share(33))]
    urls += [(f"closed-{i}", f"{('redis', 'memcached')[i % 2]}://127.0.0.1:{closed[i % 2]}")
             for i in range(share(50))]
    urls += [(f"endpoint-{i}", f"http://127.0.0.1:{ports['http']}/metrics?t={i}")
             for i in range(share(40))]
    urls += [(f"wrong-pw-{i}", f"redis://:{WRONG_PASSWORD}@127.0.0.1:{ports['auth_redis']}/{i}")
             for i in range(share(100))]
    rest = max(0, n - len(urls))
    for i in range(rest):
        if i % 2 == 0:
            port = ports["redis"][i // 2 % len(ports["redis"])]
            urls.append((f"redis-{i:03d}", base.format(port, i // 2 % 16)))
        else:
            port = ports["memcached"][i // 2 % len(ports["memcached"])]
            urls.append((f"mc-{i:03d}", f"memcached://127.0.0.1:{port}"))
    return urls


def fleet_targets(urls: list[tuple[str, str]]) -> list[Target]:
    return [parse_target_url(url, name=name) for name, url in urls]


# -- the measured process ----------------------------------------------------------------------


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_mb() -> tuple[float | None, float | None]:
    """glibc's heap: bytes in use and bytes free but kept (mallinfo2), to tell a leak in C
    (in use grows) from fragmentation (free grows); (None, None) off glibc 2.33+."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None, None
    fn.restype = _MallInfo2
    info = fn()
    return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20


def pymalloc_arenas_mb() -> float | None:
    """Memory in CPython's small-object arenas (freed only when wholly empty), read from
    sys._debugmallocstats(), which prints to the C stderr: fragmentation there grows RSS while
    the traced Python heap stays flat."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        found = re.search(rb"arenas \* \d+ bytes/arena\s*=\s*([\d,]+)", out.read())
    return int(found.group(1).replace(b",", b"")) / 2**20 if found else None


@dataclass
class Reading:
    """One sample of this process, and of the fleet's statuses."""

    t_s: float
    polls: int
    rss_mb: float
    traced_mb: float | None
    tracemalloc_own_mb: float | None
    malloc_used_mb: float | None
    malloc_free_mb: float | None
    pymalloc_mb: float | None
    objects: int
    threads: int
    fds: int
    sockets: int
    close_wait: int
    cpu_pct: float
    faults: int
    statuses: dict[str, int] = field(default_factory=dict)


class Probe:
    """Reads this process: gc first, so RSS and object counts do not swing with gc timing."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.cpu0, self.mono0 = sum(self.proc.cpu_times()[:2]), time.monotonic()

    def read(self, t_s: float, polls: int, faults: int, statuses: dict[str, int]) -> Reading:
        # Sockets and fds before gc: one that only the cyclic gc would close is held in real
        # use too. RSS and objects after it, so they do not swing with gc timing.
        conns, fds = self.proc.net_connections(kind="inet"), self.proc.num_fds()
        gc.collect()
        cpu, mono = sum(self.proc.cpu_times()[:2]), time.monotonic()
        cpu_pct = 100 * (cpu - self.cpu0) / max(1e-6, mono - self.mono0)
        self.cpu0, self.mono0 = cpu, mono
        tracing = tracemalloc.is_tracing()
        traced = tracemalloc.get_traced_memory()[0] / 2**20 if tracing else None
        own = tracemalloc.get_tracemalloc_memory() / 2**20 if tracing else None
        return Reading(t_s, polls, self.proc.memory_info().rss / 2**20, traced, own, *malloc_mb(),
                       pymalloc_arenas_mb(),
                       len(gc.get_objects()), threading.active_count(), fds,
                       len(conns), sum(1 for c in conns if c.status == "CLOSE_WAIT"), cpu_pct,
                       faults, statuses)


class FleetChild:
    """The child process: its ports, and the fault events it reports on stdout."""

    def __init__(self, plan: FaultPlan) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--fleet-child", json.dumps(plan.__dict__),
             str(os.getpid())], stdout=subprocess.PIPE,
            preexec_fn=die_with_parent)  # noqa: PLW1509 - only prctl, before exec
        assert self.proc.stdout is not None
        self.out = self.proc.stdout
        self.events: Counter[str] = Counter()
        ready, _, _ = select.select([self.out], [], [], 60)
        line = self.out.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("the fleet child did not start its servers within 60 s")
        self.ports: dict[str, Any] = json.loads(line)
        os.set_blocking(self.out.fileno(), False)
        self._partial = b""

    def drain(self) -> int:
        """Count the fault events printed so far; returns the total."""
        with suppress(BlockingIOError, TypeError):
            data = os.read(self.out.fileno(), 1 << 16)
            *lines, self._partial = (self._partial + data).split(b"\n")
            for line in lines:
                with suppress(ValueError, KeyError):
                    self.events[json.loads(line)["event"]] += 1
        return sum(self.events.values())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()


def auth_failures(port: int) -> int | None:
    """AUTH failures in the wrong-password server's ACL LOG (entries aggregate a `count`)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, password=RIGHT_PASSWORD, socket_timeout=2)
    try:
        return sum(int(e.get("count", 1)) for e in client.acl_log(128)
                   if e.get("reason") == "auth")
    except redis.RedisError:
        return None
    finally:
        client.close()


def slope_per_s(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, value)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / var if var else 0.0


# -- report ------------------------------------------------------------------------------------


METRICS: tuple[tuple[str, str, str], ...] = (  # attribute, label, format
    ("rss_mb", "RSS MB", "{:.1f}"), ("traced_mb", "tracemalloc MB", "{:.2f}"),
    ("tracemalloc_own_mb", "tracemalloc's own MB", "{:.2f}"),
    ("malloc_used_mb", "malloc in use MB", "{:.1f}"),
    ("malloc_free_mb", "malloc free MB", "{:.1f}"),
    ("pymalloc_mb", "pymalloc arenas MB", "{:.0f}"),
    ("objects", "gc objects", "{:.0f}"), ("threads", "threads", "{:.0f}"),
    ("fds", "open fds", "{:.0f}"), ("sockets", "inet sockets", "{:.0f}"),
    ("close_wait", "CLOSE_WAIT", "{:.0f}"),
)


def print_row(r: Reading, header: bool) -> None:
    cols = ["t s", "polls", "RSS MB", "traced MB", "objects", "threads", "fds", "sockets",
            "CLOSE_WAIT", "CPU %", "faults", "statuses"]
    row = [f"{r.t_s:.0f}", str(r.polls), f"{r.rss_mb:.1f}",
           "-" if r.traced_mb is None else f"{r.traced_mb:.2f}", str(r.objects), str(r.threads),
           str(r.fds), str(r.sockets), str(r.close_wait), f"{r.cpu_pct:.1f}", str(r.faults),
           " ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))]
    widths = [4, 7, 7, 9, 8, 7, 5, 7, 10, 6, 6, 0]
    if header:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)), flush=True)


@dataclass
class Summary:
    lines: list[list[str]]
    verdicts: list[str]  # one per failed check; empty: flat
    hard: list[str]  # clear leaks: reason to exit non-zero even in smoke mode


def summarise(before: Reading, readings: list[Reading], after: Reading, warm_s: float,
              n: int, rss_limit_mb: float) -> Summary:
    post = [r for r in readings if r.t_s >= warm_s]
    span = post[-1].t_s - post[0].t_s if len(post) > 1 else 0.0
    third = max(1, len(post) // 3)
    tol = max(2, n // 50)
    lines, soft, hard = [], [], []
    for attr, label, fmt in METRICS:
        if getattr(before, attr) is None:
            continue
        values = [(r.t_s, float(getattr(r, attr))) for r in post]
        slope = slope_per_s(values)
        early = [v for _, v in values[:third]]
        late = sorted(v for _, v in values[-third:])
        growth = slope * span
        lines.append([label, fmt.format(getattr(before, attr)), fmt.format(values[0][1]),
                      fmt.format(values[-1][1]), f"{fmt.format(min(v for _, v in values))}-"
                      f"{fmt.format(max(v for _, v in values))}", f"{slope * 3600:+.2f}",
                      f"{growth:+.2f}", fmt.format(getattr(after, attr))])
        counted = attr in ("threads", "fds", "sockets", "close_wait")
        if counted and (late[len(late) // 2] > max(early) + tol or growth > tol):
            soft.append(f"{label} grew: {max(early):.0f} early, {late[len(late) // 2]:.0f}"
                        f" late, fit {growth:+.1f} over {span:.0f} s")
    rss_growth = slope_per_s([(r.t_s, r.rss_mb) for r in post]) * span
    if rss_growth > rss_limit_mb:
        soft.append(f"RSS grew {rss_growth:+.1f} MB over {span:.0f} s (limit {rss_limit_mb:g})")
    if before.traced_mb is not None:
        heap_growth = slope_per_s([(r.t_s, r.traced_mb or 0.0) for r in post]) * span
        if heap_growth > HEAP_LIMIT_MB:
            soft.append(f"the Python heap (tracemalloc) grew {heap_growth:+.2f} MB over "
                        f"{span:.0f} s (limit {HEAP_LIMIT_MB:g})")
    halves = (post[: len(post) // 2 + 1], post[len(post) // 2:])
    lines.append(["RSS slope /h, 1st / 2nd half", "", "", "", "",
                  " / ".join(f"{3600 * slope_per_s([(r.t_s, r.rss_mb) for r in h]):+.1f}"
                             for h in halves), "", ""])
    peak = max(readings, key=lambda r: r.fds)
    if max(r.sockets for r in readings) > n + 10:
        hard.append(f"inet sockets reached {max(r.sockets for r in readings)} for {n} targets")
    if peak.fds > before.fds + 2 * n + 20:
        hard.append(f"fds reached {peak.fds} (before start {before.fds}, {n} targets)")
    if max(r.threads for r in readings) > before.threads + n + 5:
        hard.append(f"threads reached {max(r.threads for r in readings)} for {n} targets")
    if after.sockets > before.sockets or after.fds > before.fds + 2:
        hard.append(f"after stop: {after.sockets} sockets, {after.fds} fds "
                    f"(before start {before.sockets}, {before.fds})")
    if after.threads > before.threads + 1:
        hard.append(f"after stop: {after.threads} threads (before start {before.threads})")
    return Summary(lines, soft + hard, hard)


def by_line(snapshot: tracemalloc.Snapshot) -> dict[str, tuple[int, int]]:
    """Bytes and blocks allocated per source line, without tracemalloc's and this script's own;
    a small table, so the snapshot itself can go at once."""
    keep = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__),
            tracemalloc.Filter(False, "<frozen *>"), tracemalloc.Filter(False, "<unknown>")]
    out = {}
    for stat in snapshot.filter_traces(keep).statistics("lineno"):
        frame = stat.traceback[0]
        out[f"{os.path.relpath(frame.filename)}:{frame.lineno}"] = (stat.size, stat.count)
    return out


def print_tracemalloc_growth(first: dict[str, tuple[int, int]],
                             last: dict[str, tuple[int, int]]) -> None:
    growth = sorted(((size - first.get(where, (0, 0))[0], count - first.get(where, (0, 0))[1],
                      where) for where, (size, count) in last.items()), reverse=True)
    print("\n  tracemalloc: largest growth after the warm-up, by line")
    for size, count, where in growth[:8]:
        print(f"    {size / 1024:+9.1f} KiB {count:+7d} blocks  {where}")


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=15.0, help="length of the run")
    p.add_argument("--targets", type=int, default=200, help="targets in the fleet")
    p.add_argument("--interval", type=float, default=1.0, help="poll interval, seconds")
    p.add_argument("--sample", type=float, default=10.0, help="seconds between readings")
    p.add_argument("--warmup", type=float, default=0.2, help="share of the run before the fit")
    p.add_argument("--rss-limit-mb", type=float, default=5.0,
                   help="fitted RSS growth after the warm-up that still counts as flat")
    p.add_argument("--no-tracemalloc", action="store_true",
                   help="skip tracemalloc (it costs CPU on every allocation)")
    p.add_argument("--default-malloc", action="store_true",
                   help="glibc as it comes: no arena cap, no periodic malloc_trim (baseline)")
    p.add_argument("--default-gc", action="store_true",
                   help="CPython's GC thresholds, nothing frozen (baseline for settle_gc)")
    p.add_argument("--smoke", action="store_true", help="~20 s, 24 targets, faster faults (CI)")
    p.add_argument("--fleet-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        args.minutes, args.targets, args.sample = 20 / 60, 24, 2.0
    return args


def fault_plan(args: argparse.Namespace) -> FaultPlan:
    if args.smoke:
        return FaultPlan(shared_redis=1, shared_memcached=1, kill_every_s=7.0, stop_every_s=9.0,
                         down_s=3.0, freeze_every_s=6.0, freeze_s=2.5, traffic_ops_s=50.0,
                         max_run_s=120.0)
    return FaultPlan(max_run_s=args.minutes * 60 + 300)


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so every `finally` stops what this run started


class PollCounter:
    """A Monitor subscriber that counts applied results (the TUI posts a message instead)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self) -> None:
        with self._lock:
            self.count += 1


def make_monitor(args: argparse.Namespace, urls: list[tuple[str, str]],
                 warm_s: float) -> tuple[Monitor, PollCounter, float]:
    # History that fills within the warm-up, so its bounded growth is not read as a leak
    # (bench/history.py measures the store itself).
    history_s = max(10 * args.interval, min(600.0, warm_s))
    monitor = Monitor(make_collectors(fleet_targets(urls)), args.interval, history_s)
    if args.default_malloc:
        monitor._trim_at = float("inf")  # the baseline: glibc as it comes, no periodic trim
    counter = PollCounter()
    monitor.subscribe(counter)
    return monitor, counter, history_s


def describe(plan: FaultPlan, urls: list[tuple[str, str]], history_s: float) -> None:
    print(f"  fleet: {plan.shared_redis} redis + {plan.shared_memcached} memcached shared, "
          f"1 redis SIGKILLed every {plan.kill_every_s:g} s, 1 memcached stopped every "
          f"{plan.stop_every_s:g} s (down {plan.down_s:g} s), 1 redis SIGSTOPped "
          f"{plan.freeze_s:g} s every {plan.freeze_every_s:g} s, 2 closed ports, a metrics "
          f"endpoint ({plan.bad_http_share:.0%} 500 or HTML), a wrong password; "
          f"{plan.traffic_ops_s:g} ops/s of traffic; history {history_s:g} s")
    print("  kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(
        name.rsplit("-", 1)[0] for name, _ in urls).items())))


@dataclass
class Run:
    """What one soak measured, for the report."""

    before: Reading
    readings: list[Reading] = field(default_factory=list)
    after: Reading | None = None
    lines: list[dict[str, tuple[int, int]]] = field(default_factory=list)  # tracemalloc
    leaked: int = 0  # status lines that showed the password
    auth: int | None = None
    started: float = 0.0
    polls: int = 0


def soak(args: argparse.Namespace, monitor: Monitor, counter: PollCounter, probe: Probe,
         child: FleetChild, warm_s: float) -> Run:
    """Start the monitor, read every `--sample` seconds until the end, stop it, read again."""
    if not args.no_tracemalloc:
        tracemalloc.start(1)
    if not args.default_gc:
        settle_gc()  # as the engine process does once its collectors exist
    run = Run(probe.read(0.0, 0, 0, {}))
    print("\n  before the monitor starts")
    print_row(run.before, header=True)
    started = time.monotonic()
    monitor.start()
    print("\n  while polling")
    next_at, end_at = started, started + args.minutes * 60
    while next_at < end_at:
        next_at = min(next_at + args.sample, end_at)
        time.sleep(max(0.0, next_at - time.monotonic()))
        if not run.lines and next_at - started >= warm_s and tracemalloc.is_tracing():
            # Before this reading, so the memory of the table is in every fitted reading.
            run.lines.append(by_line(tracemalloc.take_snapshot()))
        targets = monitor.snapshot().targets
        run.leaked += sum(1 for t in targets if t.error and WRONG_PASSWORD in t.error)
        statuses = dict(Counter(t.status for t in targets))
        del targets
        run.readings.append(probe.read(time.monotonic() - started, counter.count,
                                       child.drain(), statuses))
        print_row(run.readings[-1], header=len(run.readings) == 1)
    if tracemalloc.is_tracing():
        run.lines.append(by_line(tracemalloc.take_snapshot()))
    monitor.stop()
    run.started, run.polls = started, counter.count
    return run


def main_run(args: argparse.Namespace) -> int:
    # What `cachetop` does first thing (cachetop.cli.main), so the soak measures the same process.
    arenas = "glibc default, no trim" if args.default_malloc else (
        f"capped at {ARENAS}, trimmed every {TRIM_EVERY_S:g} s" if limit_malloc_arenas()
        else "not capped")
    warm_s = args.warmup * args.minutes * 60
    plan = fault_plan(args)
    nofile = raise_nofile(2 * args.targets + 256)
    print(f"cachetop soak: {args.targets} targets, {args.minutes:g} min at a {args.interval:g} s"
          f" interval, readings every {args.sample:g} s, fit after {warm_s:.0f} s; "
          f"{os.cpu_count()} cores, nofile {nofile}, python {sys.version.split()[0]}, "
          f"malloc arenas {arenas}")
    probe = Probe()
    child = FleetChild(plan)
    monitor = None
    try:
        urls = fleet_urls(args.targets, child.ports, [free_port(), free_port()])
        monitor, counter, history_s = make_monitor(args, urls, warm_s)
        describe(plan, urls, history_s)
        run = soak(args, monitor, counter, probe, child, warm_s)
        monitor = None  # stopped: read the process once the monitor is gone too
        run.after = probe.read(time.monotonic() - run.started, run.polls, child.drain(), {})
        print("\n  after Monitor.stop()")
        print_row(run.after, header=True)
        run.auth = auth_failures(child.ports["auth_redis"])
    finally:
        if monitor is not None:
            monitor.stop()
        child.stop()
    return report(args, run, urls, child.events)


def print_per_poll(post: list[Reading], n: int) -> None:
    polls = post[-1].polls - post[0].polls
    if polls <= 0:
        return
    for attr, label in (("rss_mb", "RSS"), ("traced_mb", "tracemalloc")):
        if getattr(post[0], attr) is None:
            continue
        d = getattr(post[-1], attr) - getattr(post[0], attr)
        print(f"  {label} per 1,000 polls after the warm-up: {1024 * d / polls * 1000:+.2f}"
              f" KiB ({polls} polls, {polls / n / max(1.0, post[-1].t_s - post[0].t_s):.2f}"
              " polls/target/s)")


def report(args: argparse.Namespace, run: Run, urls: list[tuple[str, str]],
           events: Counter[str]) -> int:
    before, readings, after = run.before, run.readings, run.after
    assert after is not None
    n, run_s = args.targets, args.minutes * 60
    warm_s = args.warmup * run_s
    s = summarise(before, readings, after, warm_s, n, args.rss_limit_mb)
    print("\n  summary (fit over the readings after the warm-up)")
    print_table(["figure", "before start", "warm-up end", "end", "range after warm-up",
                 "slope /h", "fitted growth", "after stop"], s.lines)
    print_per_poll([r for r in readings if r.t_s >= warm_s], n)
    print(f"  RSS before the monitor started {before.rss_mb:.1f} MB; the monitor added "
          f"{readings[-1].rss_mb - before.rss_mb:+.1f} MB in all ({n} targets)")
    print("  fault events: " + (", ".join(f"{k} {v}" for k, v in sorted(events.items()))
                                or "none"))
    wrong = sum(1 for name, _ in urls if name.startswith("wrong-pw"))
    expected = wrong * (int(readings[-1].t_s // AUTH_RETRY_S) + 1)
    print(f"  wrong-password AUTH attempts (server ACL LOG): {run.auth}; at most {expected} "
          f"expected ({wrong} targets, one try per {AUTH_RETRY_S:g} s)")
    if run.auth is not None and run.auth > expected:
        s.verdicts.append(f"{run.auth} AUTH attempts for {expected} expected: a retry storm")
    if run.leaked:
        s.hard.append(f"the wrong password appeared in {run.leaked} status lines")
        s.verdicts.append(s.hard[-1])
    if len(run.lines) == 2:
        print_tracemalloc_growth(*run.lines)
    if s.verdicts:
        print("\nverdict: NOT FLAT: " + "; ".join(s.verdicts))
    else:
        print("\nverdict: flat: memory, threads, fds and sockets did not grow after the warm-up;"
              " threads, fds and sockets went back to their before-start values after stop")
    if s.hard:
        print("FAIL: clear leak: " + "; ".join(s.hard))
        return 1
    return 1 if s.verdicts and not args.smoke else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupted)
    if args.fleet_child:
        with suppress(KeyboardInterrupt):
            fleet_child(args.fleet_child[0], int(args.fleet_child[1]))
        return 0
    return main_run(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
