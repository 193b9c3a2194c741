"""Provides the TUI benchmark: time to the first frame, and the UI-thread cost of one refresh.

Each part sits beside baselines measured in the same run:

1. **Startup.** Processes run in a pseudo-terminal (140x45, TERM=xterm-256color) and the bench
   reads what they draw: the time from spawning to the first frame, to the targets' rows
   (the first frame says it is reading the config), to the first frame with figures and to
   the first frame with a rate, for `python -m cachetop` against a real
   redis-server and memcached, beside a bare Textual app showing one Static.
2. **Refresh.** Headless (`App.run_test`), one `FleetScreen.show_fleet` of a synthetic fleet
   whose targets' figures changed, at 10, 100 and 1,000 rows, beside a plain `DataTable` with
   the same cells and 16 columns, refilled with `clear()` + `add_rows()`, the same table with
   `update_cell` on every cell, and on one cell (the repaint every refresh pays).
3. **Live** (`--live N`, not in the default run). `cachetop` with N real targets on a
   pseudo-terminal: main-thread CPU and how often, and how long, `show_fleet` runs.

Starts and stops exactly its own server processes. Run `python bench/tui.py --help`; figures
and how to read them are in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import fcntl
import gc
import io
import json
import math
import os
import pstats
import re
import resource
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import textual  # noqa: E402
from installed import installed_env  # noqa: E402
from rich.text import Text  # noqa: E402
from textual._compositor import CompositorUpdate  # noqa: E402
from textual.app import App, ComposeResult  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from cachetop.config import Thresholds, load_config  # noqa: E402
from cachetop.demo.scripted import FIXED_WALL, ScriptedMonitor  # noqa: E402
from cachetop.demo.servers import MemcachedServer, RedisServer, free_port  # noqa: E402
from cachetop.fleet import FleetSnapshot, Latency, TargetFigures  # noqa: E402
from cachetop.metrics.series import History  # noqa: E402
from cachetop.tui.app import CachetopApp  # noqa: E402
from cachetop.tui.rows import row_cells  # noqa: E402
from cachetop.tui.table_model import COLUMNS, View, build_model  # noqa: E402
from cachetop.tui.widgets.fleet_table import FleetTable  # noqa: E402

# The DataTable baselines: the 16 columns the old fleet DataTable had, at their widths.
TABLE_COLUMNS = tuple(c for c in COLUMNS if c.key != "role")
Row = tuple[str, tuple[Text, ...]]


def fleet_rows(snap: FleetSnapshot, view: View, thresholds: Thresholds) -> list[Row]:
    """Every row's every cell, as the DataTable fleet table built them on each refresh."""
    out = []
    for row in build_model(snap, view).rows:
        cells = row_cells(row, thresholds, view.probe_only)
        out.append((row.key, tuple(cells[c.key] for c in TABLE_COLUMNS)))
    return out


def _same(a: Text, b: Text) -> bool:
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans

COLS, ROWS = 140, 45
BIG_CONFIG = 1000  # targets in the config whose first frame is timed beside the bare app
STARTUP_TIMEOUT_S = 20.0
SETTLE_S = 0.5  # between two timed starts
CACHETOP_INTERVAL_S = 0.5

BARE_APP = '''\
from textual.app import App
from textual.widgets import Static


class Bare(App):
    def compose(self):
        yield Static("bare textual ready")


Bare().run()
'''


# -- startup in a pseudo-terminal --------------------------------------------------------------

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and any other two-byte escape.
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")


def screen_text(raw: bytes) -> str:
    """What a terminal would show, as one string: escape sequences removed."""
    return _ESCAPES.sub(b"", raw).decode("utf-8", errors="replace")


@dataclass
class Spawned:
    """One process start: seconds from spawn to each marker, and the process at the last one."""

    found_s: dict[str, float]
    peak_rss_mb: float | None = None
    threads: int | None = None
    cpu_s: float | None = None


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's peak resident set (Linux)."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def stop_child(child: subprocess.Popen[bytes], master: int, quit_keys: bytes) -> None:
    """Quit the way a user would, then SIGTERM, then SIGKILL; keep draining the terminal.
    Then wait for the processes it started (cachetop's engine) to be gone too: one still
    closing its 1,000 connections slowed the next start timed by ~20 ms."""
    try:
        descendants = psutil.Process(child.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        _stop(child, master, quit_keys)
    finally:
        psutil.wait_procs(descendants, timeout=10)


def _stop(child: subprocess.Popen[bytes], master: int, quit_keys: bytes) -> None:
    with suppress(OSError):
        os.write(master, quit_keys)
    for stop, wait_s in ((None, 3.0), (child.terminate, 2.0), (child.kill, 2.0)):
        if stop is not None and child.poll() is None:
            stop()
        deadline = time.monotonic() + wait_s
        while child.poll() is None and time.monotonic() < deadline:
            read_some(master, 0.05)
        if child.poll() is not None:
            return
    child.wait(2)


def spawn_in_pty(argv: list[str], cwd: Path = REPO, env: dict[str, str] | None = None,
                 ) -> tuple[subprocess.Popen[bytes], int]:
    """argv on a fresh 140x45 pseudo-terminal; returns the child and the terminal's master."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {**(os.environ if env is None else env), "TERM": "xterm-256color",
           "COLUMNS": str(COLS), "LINES": str(ROWS)}
    try:
        child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                 cwd=cwd, start_new_session=True, close_fds=True)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return child, master


def read_some(master: int, timeout_s: float) -> bytes | None:
    """What the child wrote within timeout_s (b"" if nothing); None once it closed the pty."""
    readable, _, _ = select.select([master], [], [], timeout_s)
    if not readable:
        return b""
    try:
        return os.read(master, 65536)
    except OSError:  # EIO: the child closed the terminal
        return None


def run_in_pty(argv: list[str], markers: dict[str, re.Pattern[str]], quit_keys: bytes,
               *, inspect: bool = False, env: dict[str, str] | None = None) -> Spawned:
    """Spawn argv on a fresh 140x45 pseudo-terminal and time each marker's first appearance
    in what it drew (escapes stripped). With `inspect`, read the child's peak RSS, threads and
    CPU once every marker was seen."""
    started = time.perf_counter()
    child, master = spawn_in_pty(argv, env=env)
    raw, found = bytearray(), {}
    result = Spawned(found)
    try:
        deadline = started + STARTUP_TIMEOUT_S
        while len(found) < len(markers) and time.perf_counter() < deadline:
            chunk = read_some(master, 0.05)
            if chunk is None or (not chunk and child.poll() is not None):
                break
            if not chunk:
                continue
            now = time.perf_counter() - started
            raw += chunk
            text = screen_text(bytes(raw))
            for name, marker in markers.items():
                if name not in found and marker.search(text):
                    found[name] = now
        if inspect and child.poll() is None:
            proc = psutil.Process(child.pid)
            cpu = proc.cpu_times()
            result.peak_rss_mb = peak_rss_mb(child.pid)
            result.threads = proc.num_threads()
            result.cpu_s = cpu.user + cpu.system
    finally:
        stop_child(child, master, quit_keys)
        os.close(master)
    missing = set(markers) - set(found)
    if missing:
        tail = screen_text(bytes(raw))[-400:]
        raise RuntimeError(f"{argv[1:]}: never drew {sorted(missing)}; last output: {tail!r}")
    return result


def run_to_exit(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, cwd=REPO, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


@contextmanager
def servers_started() -> Iterator[tuple[RedisServer, MemcachedServer]]:
    started: list[Any] = []
    try:
        redis_server, memcached_server = RedisServer(), MemcachedServer()
        for server in (redis_server, memcached_server):
            started.append(server)
            server.start()
        yield redis_server, memcached_server
    finally:
        for server in started:
            server.close()


@dataclass
class StartupRow:
    label: str
    runs: list[Spawned] = field(default_factory=list)

    def median(self, name: str) -> float | None:
        values = [r.found_s[name] for r in self.runs if name in r.found_s]
        return statistics.median(values) if values else None

    def median_of(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return statistics.median(values) if values else None


def startup(reps: int) -> list[StartupRow]:
    """`reps` starts of each, taking turns so the machine's noise falls on every row alike;
    one untimed start of each first, so every row finds its .pyc files and pages warm."""
    py = sys.executable
    floor = StartupRow("python -c pass (to exit)")
    imp_textual = StartupRow("import textual.app + widgets (to exit)")
    imp_cachetop = StartupRow("import cachetop: cli, tui.app, 2 collectors (to exit)")
    bare = StartupRow("bare Textual app (one Static)")
    top = StartupRow("cachetop, redis + memcached")
    big = StartupRow(f"cachetop, {BIG_CONFIG:,}-target config")
    frame = re.compile(r"NAME|bare textual ready")
    raise_nofile(BIG_CONFIG)
    with tempfile.TemporaryDirectory(prefix="cachetop-bench-") as tmp, \
            servers_started() as (redis_server, memcached_server):
        bare_py = Path(tmp) / "bare_app.py"
        bare_py.write_text(BARE_APP)
        top_argv = [py, "-m", "cachetop", "--interval", f"{CACHETOP_INTERVAL_S:g}",
                    redis_server.url, memcached_server.url]
        big_config = Path(tmp) / "fleet.toml"
        write_fleet_config(big_config, BIG_CONFIG, [redis_server, memcached_server])
        big_argv = [py, "-m", "cachetop", "--config", str(big_config)]
        top_markers = {
            "frame": frame,
            # A target's row (the first frame says "reading the config…" instead).
            "rows": re.compile(r"127\.0\.0\.1:\d+ +(redis|memc)"),
            "figures": re.compile(r"2/2 up"),  # the header, once both first polls landed
            "rate": re.compile(r"ops/s \d"),  # the header's fleet ops/s: a second poll landed
        }
        env = installed_env(Path(tmp) / "pycache")
        jobs: list[tuple[StartupRow, Callable[[], Spawned]]] = [
            (floor, lambda: Spawned({"exit": run_to_exit([py, "-c", "pass"], env)})),
            (imp_textual, lambda: Spawned({"exit": run_to_exit(
                [py, "-c", "import textual.app, textual.widgets"], env)})),
            (imp_cachetop, lambda: Spawned({"exit": run_to_exit(
                [py, "-c", "import cachetop.cli.dashboard, cachetop.tui.app, "
                 "cachetop.collectors.redis_info, cachetop.collectors.memcached_stats"], env)})),
            (bare, lambda: run_in_pty([py, str(bare_py)], {"frame": frame}, b"\x11",
                                      inspect=True, env=env)),
            (top, lambda: run_in_pty(top_argv, top_markers, b"q", inspect=True, env=env)),
            (big, lambda: run_in_pty(big_argv, {"frame": frame, "rows": re.compile(r"t0000 ")},
                                     b"q", inspect=True, env=env)),
        ]
        for _, job in jobs:
            job()
        for rep in range(reps):
            for row, job in jobs:
                # Each start on a settled machine: the previous one's engine may still be
                # exiting (a 1,000-target one takes a moment) when its front has gone.
                time.sleep(SETTLE_S)
                row.runs.append(job())
            print(f"  startup {rep + 1}/{reps} done", file=sys.stderr)
    return [floor, imp_textual, imp_cachetop, bare, top, big]


# -- a live fleet (--live N) -------------------------------------------------------------------

# Runs cachetop's own CLI with FleetScreen.show_fleet wrapped to note each call's time, then
# writes them as JSON when the process exits. Clocks are CLOCK_MONOTONIC on both sides.
LIVE_LAUNCHER = """\
import atexit, json, sys, time
from cachetop.tui.screens.fleet import FleetScreen

out, sys.argv = sys.argv[1], ["cachetop", *sys.argv[2:]]
calls = []
original = FleetScreen.show_fleet


def show_fleet(self, snap, **kwargs):
    t0, cpu0 = time.monotonic(), time.thread_time()
    original(self, snap, **kwargs)
    calls.append((t0, time.monotonic() - t0, time.thread_time() - cpu0))


def dump():
    with open(out, "w") as f:
        json.dump(calls, f)


FleetScreen.show_fleet = show_fleet
atexit.register(dump)
from cachetop.cli import main
raise SystemExit(main())
"""


def raise_nofile(targets: int) -> None:
    """The child inherits it: a socket per target, and some."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * targets + 256
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY
                                                    else min(needed, hard), hard))


def write_fleet_config(path: Path, n: int, servers: list[Any]) -> None:
    """n targets named t0000.. taking turns over the servers, polled every second."""
    path.write_text("interval = 1.0\n" + "".join(
        f'[[targets]]\nname = "t{i:04d}"\nurl = "{servers[i % len(servers)].url}"\n'
        for i in range(n)))


@contextmanager
def fleet_servers() -> Iterator[list[Any]]:
    """2 redis-server and 2 memcached that a thousand targets can share (like bench/poll.py)."""
    servers: list[Any] = []
    try:
        for server in (RedisServer("--maxclients", "4000"), RedisServer("--maxclients", "4000"),
                       MemcachedServer("-c", "4096"), MemcachedServer("-c", "4096")):
            servers.append(server)
            server.start()
        yield servers
    finally:
        for server in servers:
            server.close()


BARE_KEYS_APP = '''\
from textual.app import App
from textual.widgets import Static


class Bare(App):
    """A bare Textual app whose Down key rewrites one line, as cachetop's selection line."""

    BINDINGS = [("down", "next", "")]
    n = 0

    def compose(self):
        yield Static("t0000  redis  ready")

    def action_next(self):
        self.n += 1
        self.query_one(Static).update(f"t{self.n:04d}  redis  ready")


Bare().run()
'''


@dataclass
class KeySubject:
    """One program on its own pseudo-terminal, Down pressed in turns with the others."""

    label: str
    argv: list[str]
    ready: re.Pattern[str]
    cwd: Path = REPO
    # Whether the raw output since Down k shows its effect: by default the selection line
    # naming row k (`tNNNN  redis …`).
    drawn: Callable[[int, bytes], bool] = field(default=lambda k, out: _selection_drawn(k, out))
    latencies_s: list[float] = field(default_factory=list)
    missed: int = 0
    child: subprocess.Popen[bytes] | None = None
    master: int = -1


def _wait_ready(subject: KeySubject, timeout_s: float) -> None:
    seen = bytearray()
    deadline = time.monotonic() + timeout_s
    while not subject.ready.search(screen_text(bytes(seen[-20000:]))):
        chunk = read_some(subject.master, 0.1)
        if chunk is None or time.monotonic() > deadline:
            tail = screen_text(bytes(seen[-3000:]))[-600:]
            raise RuntimeError(f"{subject.label}: never showed {subject.ready.pattern}; "
                               f"last output: {tail!r}")
        seen += chunk


def _selection_drawn(k: int, out: bytes) -> bool:
    return re.search(rf"t{k:04d}  (?:redis|memcached) ", screen_text(out)) is not None


def _press(subject: KeySubject, k: int) -> None:
    """Down, then read until the subject shows row k (2 s at most: a miss)."""
    out = bytearray()
    started = time.perf_counter()
    os.write(subject.master, b"\x1b[B")
    while time.perf_counter() - started < 2.0:
        chunk = read_some(subject.master, 0.01)
        if chunk is None:
            raise RuntimeError(f"{subject.label} exited")
        out += chunk
        if chunk and subject.drawn(k, bytes(out)):
            subject.latencies_s.append(time.perf_counter() - started)
            return
    subject.missed += 1


def key_latency(n: int, presses: int, other_python: str | None = None) -> list[KeySubject]:
    """cachetop with n live targets (polled every second) on a 140x45 pseudo-terminal, beside
    a bare Textual app on its own: the time from writing Down to the terminal receiving the
    selection line of the next row (`tNNNN  redis …`). The programs take turns, so the
    machine's load falls on each alike; presses are 0.1-0.35 s apart, so they land anywhere
    in the refresh cycle. `other_python`: also another checkout's cachetop (its venv's
    python, run from that checkout), e.g. the version before a change."""
    raise_nofile(2 * n)
    with tempfile.TemporaryDirectory(prefix="cachetop-bench-") as tmp, \
            fleet_servers() as servers:
        config = Path(tmp) / "fleet.toml"
        write_fleet_config(config, n, servers)
        bare_py = Path(tmp) / "bare_keys.py"
        bare_py.write_text(BARE_KEYS_APP)
        # The header's first fleet rate: every target polled twice (a loaded machine may
        # leave a few timing out, so "N/N up" is not waited for).
        up = re.compile(r"ops/s \d")
        subjects = [KeySubject("bare Textual app, one line rewritten", [sys.executable,
                                                                          str(bare_py)],
                               re.compile("ready")),
                    KeySubject(f"cachetop, {n:,} live targets",
                               [sys.executable, "-m", "cachetop", "--config", str(config)], up)]
        if other_python:
            subjects.append(KeySubject(f"{other_python}: cachetop, {n:,} live targets",
                                       [other_python, "-m", "cachetop", "--config",
                                        str(config)], up,
                                       cwd=Path(other_python).absolute().parents[2]))
        _run_presses(subjects, presses)
    return subjects


def _run_presses(subjects: list[KeySubject], presses: int) -> None:
    """Start every subject on its own pseudo-terminal, wait until each is ready, then press
    Down `presses` times in each, in turns, 0.1-0.35 s apart; stop them all."""
    try:
        for subject in subjects:
            subject.child, subject.master = spawn_in_pty(subject.argv, cwd=subject.cwd)
        for subject in subjects:
            _wait_ready(subject, 120.0)
        settle = time.monotonic() + 5.0  # a few refreshes with every figure in
        while time.monotonic() < settle:
            for subject in subjects:
                read_some(subject.master, 0.02)
        for k in range(1, presses + 1):
            for subject in subjects:
                _press(subject, k)
                gap = time.monotonic() + 0.1 + 0.25 * ((k * 7) % 11) / 10
                while time.monotonic() < gap:
                    for other in subjects:
                        read_some(other.master, 0.01)
    finally:
        for subject in subjects:
            if subject.child is not None:
                stop_child(subject.child, subject.master, b"\x11" if "bare" in
                           subject.label else b"q")
                os.close(subject.master)


def endpoint_key_latency(caches: int, presses: int) -> list[KeySubject]:
    """Issue 18: cachetop polling, every second, one metrics endpoint (`python3 -m
    http.server` serving a file) with `caches` caches, 2 samples each; Down through its
    child rows, timed to the drawing of the cursor on row k (`└ tenant-NNNNN` in the
    cursor's colours: the counters never change, so the rows stay in name order). Beside the
    bare Textual app, in turns."""
    with tempfile.TemporaryDirectory(prefix="cachetop-bench-") as tmp:
        names = [f"tenant-{i:05d}" for i in range(caches)]
        text = "# TYPE cache_hits_total counter\n" + "".join(
            f'cache_hits_total{{cache="{n}"}} {i * 37 + 11}\n' for i, n in enumerate(names))
        text += "# TYPE cache_misses_total counter\n" + "".join(
            f'cache_misses_total{{cache="{n}"}} {i * 13 + 5}\n' for i, n in enumerate(names))
        (Path(tmp) / "metrics").write_text(text)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                                   "127.0.0.1"], cwd=tmp, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        bare_py = Path(tmp) / "bare_keys.py"
        bare_py.write_text(BARE_KEYS_APP)
        subjects = [KeySubject("bare Textual app, one line rewritten",
                               [sys.executable, str(bare_py)], re.compile("ready")),
                    KeySubject(f"cachetop, one endpoint of {caches:,} caches",
                               [sys.executable, "-m", "cachetop", "--interval", "1",
                                f"http://127.0.0.1:{port}/metrics"],
                               re.compile("tenant-00000"),
                               drawn=lambda k, out: f"48;5;32m  \u2514 tenant-{k - 1:05d} "
                               .encode() in out)]
        try:
            _run_presses(subjects, presses)
        finally:
            server.terminate()
            server.wait(10)
    return subjects


def print_keys(subjects: list[KeySubject], presses: int) -> None:
    print(f"\nkey press to screen, {COLS}x{ROWS} pseudo-terminal, Down x{presses} each, "
          "in turns (ms)")
    rows = []
    for s in subjects:
        ms_ = sorted(1e3 * v for v in s.latencies_s) or [math.nan]
        rows.append([s.label, f"{statistics.median(ms_):.0f}",
                     f"{ms_[int(0.9 * (len(ms_) - 1))]:.0f}", f"{ms_[-1]:.0f}", str(s.missed)])
    print_table(["what", "median", "p90", "worst", "missed (> 2 s)"], rows)


@dataclass
class LiveRun:
    n: int
    window_s: float
    main_pct: float
    process_pct: float
    threads: int
    calls: list[tuple[float, float, float]]  # (started, wall s, main-thread CPU s) in window

    @property
    def calls_per_s(self) -> float:
        return len(self.calls) / self.window_s

    def gaps_s(self) -> list[float]:
        starts = [c[0] for c in self.calls]
        return [b - a for a, b in zip(starts, starts[1:], strict=False)]


def live(n: int, warmup_s: float, window_s: float) -> LiveRun:
    """cachetop on a pseudo-terminal with n real targets (2 redis-server + 2 memcached shared
    by them, like bench/poll.py) at a 1 s interval: main-thread and process CPU over a window,
    and every show_fleet call in it."""
    raise_nofile(n)
    with tempfile.TemporaryDirectory(prefix="cachetop-bench-") as tmp, \
            fleet_servers() as servers:
        config = Path(tmp) / "fleet.toml"
        write_fleet_config(config, n, servers)
        launcher, out = Path(tmp) / "launch.py", Path(tmp) / "calls.json"
        launcher.write_text(LIVE_LAUNCHER)
        child, master = spawn_in_pty([sys.executable, str(launcher), str(out), "--config",
                                      str(config)])
        try:
            proc = psutil.Process(child.pid)

            def cpu() -> tuple[float, float, float]:
                main = sum(t.user_time + t.system_time for t in proc.threads()
                           if t.id == child.pid)
                times = proc.cpu_times()
                return time.monotonic(), main, times.user + times.system

            started = time.monotonic()
            while time.monotonic() < started + warmup_s:
                read_some(master, 0.05)
            (t0, main0, proc0), threads = cpu(), proc.num_threads()
            while time.monotonic() < t0 + window_s:
                read_some(master, 0.05)
            t1, main1, proc1 = cpu()
        finally:
            stop_child(child, master, b"q")
            os.close(master)
        calls = [tuple(c) for c in json.loads(out.read_text()) if t0 <= c[0] < t1]
    wall = t1 - t0
    return LiveRun(n, wall, 100 * (main1 - main0) / wall, 100 * (proc1 - proc0) / wall,
                   threads, calls)  # type: ignore[arg-type]


def print_live(run: LiveRun) -> None:
    print(f"\nlive: {run.n} real targets at 1 s, {run.window_s:.0f} s window")
    gaps = run.gaps_s()
    walls = [1e3 * c[1] for c in run.calls]
    cpus = [1e3 * c[2] for c in run.calls]
    print(f"  main thread {run.main_pct:.0f}% of a core, process {run.process_pct:.0f}%, "
          f"{run.threads} threads; show_fleet {run.calls_per_s:.1f} calls/s")
    if run.calls:
        print(f"  show_fleet wall ms median {statistics.median(walls):.0f}, worst "
              f"{max(walls):.0f}; main-thread CPU ms median {statistics.median(cpus):.0f}")
    if gaps:
        print(f"  seconds between calls: median {statistics.median(gaps):.2f}, worst "
              f"{max(gaps):.2f}")


# -- refresh cost on the UI thread -------------------------------------------------------------

# One block of 10 rows: 4 redis, 3 memcached, 1 application endpoint with 2 caches (3 rows).
BLOCK = ("redis", "redis", "memcached", "redis", "memcached", "redis", "memcached", "metrics")


def _wave(i: int, step: int) -> float:
    """1.0 .. 1.5 in 11 steps; consecutive steps always differ, so every figure changes."""
    return 1 + 0.05 * ((7 * i + 3 * step) % 11)


def synthetic_target(i: int, kind: str, step: int) -> TargetFigures:
    w = _wave(i, step)
    base = TargetFigures(
        name=f"{kind[:5]}-{i:04d}", kind=kind, address=f"10.0.{i // 250}.{i % 250}:6379",
        group=("sessions", "catalog", "api")[i % 3], status="up", version="7.0.15",
        role="master", interval_s=1.0, ops_per_s=1800.0 * w * (1 + i % 5),
        hit_ratio=0.99 - 0.3 * (w - 1), lifetime_hit_ratio=0.9, hits_delta=1500 * w,
        misses_delta=150 * w, evictions_per_s=40.0 * (w - 1) if i % 4 == 0 else 0.0,
        expirations_per_s=12.0 * w, memory_used_bytes=1.1e9 * w, memory_max_bytes=2.0e9,
        connections=round(300 * w), max_connections=10000, keys=round(2_450_000 * w),
        server_latency=Latency(0.0000041 * w, 0.0000128 * w, 0.000031 * w, "interval"),
        probe_latency=Latency(0.00018 * w, 0.00031 * w, 0.00052 * w, "probe 60s"),
        status_since=FIXED_WALL, updated_at=FIXED_WALL + step, last_success=FIXED_WALL + step)
    if kind == "memcached":
        return replace(base, version="1.6.18", role="", server_latency=Latency())
    if kind == "metrics":
        caches = tuple(replace(base, name=name, kind="metrics", ops_per_s=share *
                               (base.ops_per_s or 0)) for name, share in (("local-lru", 0.8),
                                                                          ("redis-l2", 0.2)))
        return replace(base, address=f"http://10.1.0.{i % 250}:8000/metrics", version="",
                       role="", memory_max_bytes=None, caches=caches)
    return base


def synthetic_fleet(n_rows: int, step: int, changing: int = 1) -> list[TargetFigures]:
    """Targets whose rows (an endpoint's caches are rows too) number exactly n_rows. From one
    step to the next, one target in `changing` gets new figures; the others keep theirs."""
    targets: list[TargetFigures] = []
    rows = 0
    while rows < n_rows:
        i = len(targets)
        kind = BLOCK[i % len(BLOCK)]
        if kind == "metrics" and n_rows - rows < 3:
            kind = "redis"
        targets.append(synthetic_target(i, kind, step - (step - i) % changing))
        rows += 3 if kind == "metrics" else 1
    return targets


class SyntheticMonitor(ScriptedMonitor):
    """ScriptedMonitor serving a synthetic fleet of n_rows rows whose figures change on every
    step; no pre-filled history (the fleet screen only seeds its sparklines from it)."""

    def __init__(self, n_rows: int, interval_s: float = 1.0, changing: int = 1) -> None:
        self.n_rows, self.interval_s, self.version, self.step = n_rows, interval_s, 1, 0
        self.changing = changing
        self.history = History(600, 1.0)
        self.targets = synthetic_fleet(n_rows, 0, changing)

    def snapshot(self) -> FleetSnapshot:
        return FleetSnapshot.build(self.targets, self.interval_s, FIXED_WALL + self.step,
                                   self.version)

    def advance(self) -> FleetSnapshot:
        """The next interval's snapshot. The version is left alone, so the app's own 0.2 s
        timer sees nothing new and only the bench's calls place snapshots."""
        self.step += 1
        self.targets = synthetic_fleet(self.n_rows, self.step, self.changing)
        return self.snapshot()


class FrameClock:
    """Wraps `App._display`, which a headless app calls with each compositor update but does
    not turn into terminal output: this does that too (`render_segments`), as a terminal run
    would, and notes when each frame was done."""

    def __init__(self, app: App[Any]) -> None:
        self.frames, self.last_done = 0, 0.0
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count:
                return
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)
            self.frames += 1
            self.last_done = time.perf_counter()

        app._display = display  # type: ignore[method-assign]


class GcClock:
    """Wall time spent in the cyclic garbage collector, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.total_s, self._started = 0.0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._started

    @contextmanager
    def installed(self) -> Iterator[GcClock]:
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


GC = GcClock()


@dataclass
class Refresh:
    """One refresh: the call itself (wall), UI-thread CPU until the frame is drawn and the
    loop is idle again, the garbage collector's share of that, and wall time until that
    frame was done."""

    call_ms: float
    cpu_ms: float
    to_frame_ms: float
    frames: int
    gc_ms: float = 0.0


async def one_refresh(app: App[Any], pilot: Any, clock: FrameClock,
                      update: Callable[[], None]) -> Refresh:
    await pilot.pause()  # nothing left over from the last one
    frames0, gc0 = clock.frames, GC.total_s
    cpu0, t0 = time.thread_time(), time.perf_counter()
    with app.batch_update():  # as CachetopApp.refresh_figures does
        update()
    t1 = time.perf_counter()
    await pilot.pause()  # handlers, idle work (DataTable measures new rows), layout, paint
    await pilot.pause()
    cpu = time.thread_time() - cpu0
    frames = clock.frames - frames0
    to_frame = (clock.last_done - t0) if frames else float("nan")
    return Refresh(1e3 * (t1 - t0), 1e3 * cpu, 1e3 * to_frame, frames,
                   1e3 * (GC.total_s - gc0))


class TableApp(App[None]):
    """A plain DataTable with the fleet table's 16 fixed-width columns and its height."""

    def __init__(self, height: int) -> None:
        super().__init__()
        self.table_height = height

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(cursor_type="row", cell_padding=0)
        table.styles.height = self.table_height
        yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for c in TABLE_COLUMNS:
            table.add_column(c.label, width=c.width, key=c.key)


def changed_cells(before: list[Row], after: list[Row]) -> int:
    return sum(not _same(a, b) for r0, r1 in zip(before, after, strict=True)
               for a, b in zip(r0[1], r1[1], strict=True))


@dataclass
class Variant:
    label: str
    samples: list[Refresh] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)

    def worst(self, attr: str) -> float:
        return max(getattr(s, attr) for s in self.samples)


@dataclass
class SizeRun:
    n_rows: int
    n_targets: int
    changed: dict[str, int] = field(default_factory=dict)
    table_height: int = 0
    variants: dict[str, Variant] = field(default_factory=dict)

    def variant(self, key: str, label: str) -> Variant:
        return self.variants.setdefault(key, Variant(label))


def bench_config() -> Any:
    return dataclasses.replace(load_config(None, {}), targets=())


# How `CachetopApp` sees a 1 s interval: every target's figures changed (one refresh per
# interval), or one in five (its 0.2 s timer finds a new Monitor.version on every tick once
# polls are spread over the interval, as they are at hundreds of targets).
CACHETOP_VARIANTS = {
    "cachetop": ("cachetop show_fleet, every target changed", 1),
    "cachetop_tick": ("cachetop show_fleet, 1 target in 5 changed", 5),
    "cachetop_sorted": ("cachetop, sorted by OPS/s, every target changed", 1),
}


async def cachetop_refreshes(run: SizeRun, warmup: int, count: int, key: str,
                             profiler: cProfile.Profile | None = None) -> None:
    """`show_fleet` of a new snapshot. Then, for the first variant, in the same app (so the
    same heap for the collector to walk) `build_model` alone (filter, sort, group: the part
    that grows with the fleet; cells are made only for the lines painted)."""
    label, changing = CACHETOP_VARIANTS[key]
    sorted_by_ops = key == "cachetop_sorted"
    monitor = SyntheticMonitor(run.n_rows, changing=changing)
    app = CachetopApp(bench_config(), source=monitor)  # type: ignore[arg-type]
    variant = run.variant(key, label)
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        screen = app.fleet_screen
        if sorted_by_ops:
            screen.view = replace(View(), sort_column="ops", reverse=True)
        clock = FrameClock(app)
        await pilot.pause()
        table = screen.query_one(FleetTable)
        run.table_height = table.size.height
        assert table.row_count == run.n_rows, (table.row_count, run.n_rows)
        for i in range(warmup + count):
            snap = monitor.advance()
            if profiler is not None and i >= warmup:
                profiler.enable()
            sample = await one_refresh(app, pilot, clock, lambda snap=snap: screen.show_fleet(
                snap, new_interval=True, paused=False))
            if profiler is not None:
                profiler.disable()
            if i >= warmup:
                variant.samples.append(sample)
        previous = fleet_rows(monitor.snapshot(), screen.view, screen.thresholds)
        run.changed[key] = changed_cells(
            previous, fleet_rows(monitor.advance(), screen.view, screen.thresholds))
        if key != "cachetop":
            return
        rows_only = run.variant("rows", "  of which build_model() (rows, pure)")
        for _ in range(count):
            snap = monitor.advance()
            await pilot.pause()
            gc0, cpu0 = GC.total_s, time.thread_time()
            build_model(snap, screen.view)
            rows_ms = 1e3 * (time.thread_time() - cpu0)
            rows_only.samples.append(Refresh(rows_ms, rows_ms, float("nan"), 0,
                                             1e3 * (GC.total_s - gc0)))


TABLE_MAX_ROWS = 1000
TABLE_VARIANTS = {
    "clear": "DataTable clear() + add_rows()",
    "update_cell": "DataTable update_cell, every cell",
    "one_cell": "DataTable update_cell, one cell (repaint floor)",
}


async def table_refreshes(run: SizeRun, warmup: int, count: int, how: str) -> None:
    """The same rows in a plain DataTable: cachetop's own cells, built by `fleet_rows` inside
    the clock as cachetop builds them, then `clear()` + `add_rows()`, or `update_cell` on every
    one of the 16 x n cells. `one_cell` builds nothing and updates one cell: any change makes a
    DataTable render every visible cell again, so that is the floor of any refresh."""
    monitor = SyntheticMonitor(run.n_rows)
    thresholds, view = Thresholds(), View()
    app = TableApp(run.table_height)
    variant = run.variant(how, TABLE_VARIANTS[how])

    def every_cell(snap: FleetSnapshot) -> None:
        for key, cells in fleet_rows(snap, view, thresholds):
            for column, cell in zip(TABLE_COLUMNS, cells, strict=True):
                table.update_cell(key, column.key, cell)

    def refill(snap: FleetSnapshot) -> None:
        table.clear()
        table.add_rows(cells for _, cells in fleet_rows(snap, view, thresholds))

    def one_cell(snap: FleetSnapshot) -> None:
        key = snap.targets[0].name
        table.update_cell(key, "ops", Text(f"{snap.targets[0].ops_per_s:.0f}", justify="right"))

    update = {"clear": refill, "update_cell": every_cell, "one_cell": one_cell}[how]
    async with app.run_test(size=(COLS, ROWS)) as pilot:
        clock = FrameClock(app)
        table = app.query_one(DataTable)
        for key, cells in fleet_rows(monitor.snapshot(), view, thresholds):
            table.add_row(*cells, key=key)
        await pilot.pause()
        for i in range(warmup + count):
            snap = monitor.advance()
            sample = await one_refresh(app, pilot, clock, lambda snap=snap: update(snap))
            if i >= warmup:
                variant.samples.append(sample)


async def refresh_costs(sizes: list[int], warmup: int, count: int,
                        slices: int) -> list[SizeRun]:
    """Each size's variants take turns, `slices` times, `count / slices` refreshes each."""
    runs = []
    for n in sizes:
        run = SizeRun(n, len(synthetic_fleet(n, 0)))
        per_slice = max(1, count // slices)
        for _ in range(slices):
            await cachetop_refreshes(run, warmup, per_slice, "cachetop")
            await cachetop_refreshes(run, warmup, per_slice, "cachetop_tick")
            if n <= TABLE_MAX_ROWS:  # a DataTable of 10,000 rows takes seconds a refresh
                for how in TABLE_VARIANTS:
                    await table_refreshes(run, warmup, per_slice, how)
            await cachetop_refreshes(run, warmup, per_slice, "cachetop_sorted")
        runs.append(run)
        print(f"  refresh {n} rows done", file=sys.stderr)
    return runs


async def profile_show_fleet(n: int, count: int) -> str:
    profiler = cProfile.Profile()
    run = SizeRun(n, len(synthetic_fleet(n, 0)))
    await cachetop_refreshes(run, 2, count, "cachetop", profiler=profiler)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)
    return out.getvalue()


# -- report ------------------------------------------------------------------------------------


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                           for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for row in rows:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def ms(value: float | None) -> str:
    return "" if value is None else f"{1e3 * value:.0f}"


def print_startup(rows: list[StartupRow], reps: int) -> None:
    print(f"\nstartup, {COLS}x{ROWS} pseudo-terminal, median of {reps} (ms from spawn)")
    table = []
    for r in rows:
        exit_s = r.median("exit")
        table.append([r.label, ms(r.median("frame")), ms(r.median("rows")),
                      ms(r.median("figures")),
                      ms(r.median("rate")), ms(exit_s),
                      "" if r.median_of("peak_rss_mb") is None
                      else f"{r.median_of('peak_rss_mb'):.0f}",
                      "" if r.median_of("threads") is None
                      else f"{r.median_of('threads'):.0f}",
                      ms(r.median_of("cpu_s"))])
    print_table(["what", "first frame", "rows", "figures", "first rate", "exit", "peak RSS MB",
                 "threads", "CPU ms"], table)
    spread = [f"{r.label.split(',')[0]} {min(s.found_s['frame'] for s in r.runs) * 1e3:.0f}-"
              f"{max(s.found_s['frame'] for s in r.runs) * 1e3:.0f}"
              for r in rows if r.median("frame") is not None]
    print("  first frame, min-max ms: " + "; ".join(spread))
    bare = next((r for r in rows if r.label.startswith("bare")), None)
    if bare is not None and bare.median("frame"):
        # Also the median of each round's own ratio: the starts of one round run seconds
        # apart, so a slow spell of this shared machine falls on both sides of a ratio.
        def per_round(r: StartupRow) -> float:
            return statistics.median(
                s.found_s["frame"] / b.found_s["frame"] for s, b in zip(r.runs, bare.runs,
                                                                        strict=True)
                if "frame" in s.found_s and "frame" in b.found_s)

        print("  first frame / bare app's (goal <= 1.2), ratio of medians; median of each "
              "round's ratio: " + "; ".join(
                  f"{r.label} {r.median('frame') / bare.median('frame'):.2f}x; "
                  f"{per_round(r):.2f}x" for r in rows
                  if r.label.startswith("cachetop") and r.median("frame") is not None))


def print_refresh(runs: list[SizeRun], count: int) -> None:
    print(f"\nrefresh on the UI thread, headless {COLS}x{ROWS}, median of {count} refreshes"
          " after warm-up")
    print("  call: wall ms of the call (build_model alone: CPU); UI CPU: main-thread CPU ms "
          "from the call until its frame is drawn and the loop idle (median and worst); GC: "
          "ms of it in the garbage collector (median and worst); to frame: wall ms until "
          "that frame was done")
    table = []
    for run in runs:
        base = run.variants["clear"].median("cpu_ms") if "clear" in run.variants else None
        for key in ("cachetop", "rows", "cachetop_tick", "cachetop_sorted", *TABLE_VARIANTS):
            v = run.variants.get(key)
            if v is None:
                continue
            to_frame = v.median("to_frame_ms")
            table.append([f"{run.n_rows}", v.label, f"{v.median('call_ms'):.2f}",
                          f"{v.median('cpu_ms'):.1f}", f"{v.worst('cpu_ms'):.0f}",
                          f"{v.median('gc_ms'):.1f}", f"{v.worst('gc_ms'):.0f}",
                          "" if to_frame != to_frame else f"{to_frame:.1f}",
                          f"{v.median('cpu_ms') / base:.2f}x" if base else ""])
    print_table(["rows", "what", "call ms", "UI CPU ms", "worst", "GC ms", "worst",
                 "to frame ms", "CPU vs clear"], table)
    for run in runs:
        tick = run.variants["cachetop_tick"].median("cpu_ms")
        print(f"  {run.n_rows} rows = {run.n_targets} targets, table height "
              f"{run.table_height} lines; cells changed per refresh: every target "
              f"{run.changed.get('cachetop', 0)}, 1 in 5 {run.changed.get('cachetop_tick', 0)}"
              f" (of {16 * run.n_rows}); UI CPU per second at a 1 s interval: "
              f"{run.variants['cachetop'].median('cpu_ms'):.0f} ms if one refresh, "
              f"{5 * tick:.0f} ms if five 0.2 s ticks")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="10 and 100 rows, 2 startups each, a few refreshes (CI, < 60 s)")
    p.add_argument("--sizes", default="10,100,1000,10000", help="fleet rows, comma-separated")
    p.add_argument("--reps", type=int, default=5, help="process starts per startup row")
    p.add_argument("--refreshes", type=int, default=20, help="measured refreshes per variant")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured refreshes per app")
    p.add_argument("--slices", type=int, default=2,
                   help="times the variants take turns at each size")
    p.add_argument("--no-startup", action="store_true", help="skip the startup part")
    p.add_argument("--no-refresh", action="store_true", help="skip the refresh part")
    p.add_argument("--live", type=int, default=0, metavar="N",
                   help="also run cachetop with N real targets and time its refreshes")
    p.add_argument("--keys", type=int, default=0, metavar="N",
                   help="also time key press to screen with N live targets")
    p.add_argument("--presses", type=int, default=40, help="Down presses for --keys")
    p.add_argument("--endpoint-keys", type=int, default=0, metavar="CACHES",
                   help="key press to screen with one metrics endpoint of CACHES caches "
                        "(issue 18: 20000)")
    p.add_argument("--other-python", metavar="PYTHON",
                   help="--keys: also another checkout's cachetop, run by its venv's python")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile show_fleet at the largest size")
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.reps, args.refreshes, args.warmup, args.slices = "10,100", 2, 4, 1, 1
    return args


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so every `finally` stops what this run started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupted)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"cachetop TUI bench: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"textual {textual.__version__}, TERM=xterm-256color {COLS}x{ROWS}")
    if not args.no_startup:
        print_startup(startup(args.reps), args.reps)
    if not args.no_refresh:
        with GC.installed():
            runs = asyncio.run(refresh_costs(sizes, args.warmup, args.refreshes, args.slices))
        print_refresh(runs, args.refreshes)
    if args.live:
        print_live(live(args.live, warmup_s=10.0, window_s=20.0))
    if args.keys:
        print_keys(key_latency(args.keys, args.presses, args.other_python), args.presses)
    if args.endpoint_keys:
        print_keys(endpoint_key_latency(args.endpoint_keys, args.presses), args.presses)
    if args.profile:
        print(f"\ncProfile of show_fleet at {max(sizes)} rows, 10 refreshes")
        print(asyncio.run(profile_show_fleet(max(sizes), 10)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
