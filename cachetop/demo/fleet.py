"""Provides DemoFleet: a small local fleet of real servers and a demo application using them.

    sessions          redis-server, plain
    sessions-replica  redis-server, replica of sessions (the application reads profiles there)
    catalog           redis-server, 2 MB maxmemory allkeys-lru: the second cache layer, evicts
    pages             memcached -m 2: a full-page cache, evicts
    fragments         memcached -m 16: tagged page fragments
    app               the demo application (cachetop.demo.app): /metrics in the cachetop convention

Everything runs on free loopback ports; files live under temp dirs removed by stop(). Every
child asks the kernel for SIGTERM when this process dies (die_with_parent), so even a SIGKILL
leaves no server behind.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cachetop.demo.servers import (
    INSTALL_HINT,
    MemcachedServer,
    MissingBinaryError,
    PortTakenError,
    RedisServer,
    free_port,
    wait_port,
)
from cachetop.parent_death import die_with_parent

BINARIES = ("redis-server", "memcached")
APP_PORT_TRIES = 3  # the app's metrics port can be taken between free_port() and its bind


@dataclass(frozen=True, slots=True)
class DemoTarget:
    name: str
    group: str
    url: str


def check_binaries() -> None:
    """Raise MissingBinaryError, one line saying how to install them, when a server is missing."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        hints = "; ".join(INSTALL_HINT[b] for b in missing)
        raise MissingBinaryError(f"{' and '.join(missing)} not found on PATH: install with "
                                 f"{hints}, or run `make setup`")


class DemoFleet:
    """Three redis-server, two memcached and the demo application, started and stopped together."""

    def __init__(self, rate: float = 150.0, cold_start_s: float = 20.0) -> None:
        check_binaries()
        self.rate, self.cold_start_s = rate, cold_start_s
        self.sessions = RedisServer()
        self.replica = RedisServer("--replicaof", "127.0.0.1", str(self.sessions.port))
        self.catalog = RedisServer("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")
        self.pages = MemcachedServer(memory_mb=2)
        self.fragments = MemcachedServer(memory_mb=16)
        self.app_port = free_port()
        self.app_dir = Path(tempfile.mkdtemp(prefix="cachetop-demo-app-"))
        self.app: subprocess.Popen[bytes] | None = None

    @property
    def servers(self) -> list[RedisServer | MemcachedServer]:
        return [self.sessions, self.replica, self.catalog, self.pages, self.fragments]

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}/metrics"

    @property
    def targets(self) -> list[DemoTarget]:
        return [DemoTarget("sessions", "sessions", self.sessions.url),
                DemoTarget("sessions-replica", "sessions", self.replica.url),
                DemoTarget("catalog", "catalog", self.catalog.url),
                DemoTarget("pages", "web", self.pages.url),
                DemoTarget("fragments", "web", self.fragments.url),
                DemoTarget("app", "app", self.app_url)]

    @property
    def pids(self) -> list[int]:
        procs = [s.proc for s in self.servers] + [self.app]
        return [p.pid for p in procs if p is not None]

    def start(self) -> None:
        try:
            for server in self.servers:
                server.start()
            self._start_app()
        except BaseException:
            self.stop()
            raise

    def _start_app(self) -> None:
        argv = [sys.executable, "-m", "cachetop.demo.app", "--metrics-port", str(self.app_port),
                "--sessions", self.sessions.url, "--replica", self.replica.url,
                "--catalog", self.catalog.url, "--pages", self.pages.url,
                "--fragments", self.fragments.url, "--rate", str(self.rate),
                "--cold-start", str(self.cold_start_s)]
        for attempt in range(APP_PORT_TRIES):
            with open(self.app_dir / "app.log", "ab") as log:
                self.app = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.app_dir, preexec_fn=die_with_parent)  # noqa: PLW1509 - prctl only
            try:
                wait_port(self.app_port, self.app, timeout_s=20.0)
                return
            except PortTakenError:
                if attempt + 1 == APP_PORT_TRIES:
                    raise
                self.app_port = free_port()  # taken since it was chosen: another one
                argv[argv.index("--metrics-port") + 1] = str(self.app_port)

    def exited(self) -> list[str]:
        """Names of the processes that are no longer running (a crashed server or app)."""
        procs = {"app": self.app, "sessions": self.sessions.proc,
                 "sessions-replica": self.replica.proc, "catalog": self.catalog.proc,
                 "pages": self.pages.proc, "fragments": self.fragments.proc}
        return [name for name, proc in procs.items() if proc is None or proc.poll() is not None]

    def app_log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join((self.app_dir / "app.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the application first (it uses the servers), then every server; remove files."""
        if self.app is not None:
            if self.app.poll() is None:
                self.app.terminate()
                try:
                    self.app.wait(5)
                except subprocess.TimeoutExpired:
                    self.app.kill()
                    self.app.wait(5)
            self.app = None
        for server in reversed(self.servers):
            server.close()
        shutil.rmtree(self.app_dir, ignore_errors=True)

    def __enter__(self) -> DemoFleet:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def run_headless(fleet: DemoFleet, poll_s: float = 1.0) -> int:
    """`cachetop demo --no-tui`: print each target's name and URL, one per line, then wait for
    Ctrl-C or SIGTERM (raised as KeyboardInterrupt by the caller); 1 when a child dies."""
    width = max(len(t.name) for t in fleet.targets) + 2
    for t in fleet.targets:
        print(f"{t.name:<{width}}{t.url}", flush=True)
    print("cachetop demo: fleet running; watch it with `cachetop URL...`; Ctrl-C (or SIGTERM) "
          "stops it and everything it started", file=sys.stderr, flush=True)
    while True:
        time.sleep(poll_s)
        exited = fleet.exited()
        if exited:
            print(f"cachetop demo: {', '.join(exited)} exited; stopping the demo fleet",
                  file=sys.stderr, flush=True)
            tail = fleet.app_log_tail()
            if tail:
                print(tail, file=sys.stderr, flush=True)
            return 1
