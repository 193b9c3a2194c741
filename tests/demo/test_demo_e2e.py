"""`cachetop demo` end to end: the real fleet and application, their figures as `cachetop --once
--json` reads them, the dashboard in a 140x45 pseudo-terminal, and no process or file left
behind however the demo ends (q, SIGTERM, SIGKILL). The cold start is cut to 3 s."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from tests.ci import missing
from tests.demo.terminal import PtyProgram

NAMES = ("sessions", "sessions-replica", "catalog", "pages", "fragments", "app")
APP_CACHES = {"local-lru", "redis-l2", "session-store", "page-cache", "fragment-cache"}
EVICTING = ("catalog", "pages")
CHILDREN = 6  # five servers and the application (the dashboard adds its engine)
DEMO = [sys.executable, "-m", "cachetop", "demo", "--cold-start", "3"]

pytestmark = pytest.mark.slow


@pytest.fixture
def _servers_installed() -> None:
    absent = [b for b in ("redis-server", "memcached") if shutil.which(b) is None]
    if absent:
        missing(f"{', '.join(absent)} not installed")


@pytest.fixture
def demo_tmp(tmp_path: Path) -> Path:
    """The demo's TMPDIR: everything it writes must be under it, and gone after a clean exit."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def demo_env(tmpdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    env.update(TMPDIR=str(tmpdir), PYTHONUNBUFFERED="1", TERM="xterm-256color",
               COLUMNS="140", LINES="45")
    return env


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie waiting for a reaper has stopped)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def assert_all_gone(procs: list[psutil.Process], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(procs)
    for p in left:
        p.kill()  # never leave them to the next test; the assert below still fails
    assert not left, f"survived: {[(p.pid, p.name()) for p in left]}"


def demo_children(pid: int, engines: int = 0) -> list[psutil.Process]:
    children = psutil.Process(pid).children(recursive=True)
    assert len(children) == CHILDREN + engines, [c.cmdline() for c in children]
    return children


class HeadlessDemo:
    """`cachetop demo --no-tui`, its printed targets, and its children."""

    def __init__(self, tmpdir: Path) -> None:
        self.proc = subprocess.Popen([*DEMO, "--no-tui"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=demo_env(tmpdir))
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None

        def read() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        self.urls: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while len(self.urls) < len(NAMES) and time.monotonic() < deadline:
            try:
                name, url = lines.get(timeout=0.5).split()
            except queue.Empty:
                assert self.proc.poll() is None, self.proc.stderr.read()  # type: ignore[union-attr]
                continue
            self.urls[name] = url
        assert tuple(self.urls) == NAMES
        self.children = demo_children(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        assert_all_gone(self.children)


@pytest.fixture
def headless(_servers_installed: None, demo_tmp: Path) -> Iterator[HeadlessDemo]:
    demo = HeadlessDemo(demo_tmp)
    yield demo
    demo.close()


def poll_once(urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    """One `cachetop --once --json` over the demo's URLs; target documents by demo name."""
    import json

    out = subprocess.run([sys.executable, "-m", "cachetop", "--once", "--json", "--interval",
                          "2", *urls.values()], capture_output=True, text=True, timeout=30)
    docs = json.loads(out.stdout)["targets"]
    every_up = all(d["status"] in ("up", "restarted") for d in docs)
    assert out.returncode == (0 if every_up else 1), out.stderr  # README's exit codes
    by_name = {}
    for name, url in urls.items():
        port = re.compile(rf":{urlsplit(url).port}(?!\d)")
        (doc,) = [d for d in docs if port.search(d["address"] + " " + d["name"])]
        by_name[name] = doc
    return by_name


def figure_problems(docs: dict[str, dict[str, Any]]) -> list[str]:
    """What is not yet as a live demo must look; empty when every figure is there."""
    problems = []

    def check(name: str, doc: dict[str, Any]) -> None:
        if doc["status"] != "up":
            problems.append(f"{name}: {doc['status']} {doc['error']}")
            return
        if not doc["ops_per_sec"]:
            problems.append(f"{name}: ops/s {doc['ops_per_sec']}")
        ratio = doc["hit_ratio"]
        if ratio is None or not 0.05 <= ratio <= 0.99:
            problems.append(f"{name}: hit ratio {ratio}")

    for name, doc in docs.items():
        check(name, doc)
    for name in EVICTING:
        if not docs[name]["evictions_per_sec"]:
            problems.append(f"{name}: evictions/s {docs[name]['evictions_per_sec']}")
    if docs["sessions-replica"]["role"] not in ("slave", "replica"):
        problems.append(f"sessions-replica: role {docs['sessions-replica']['role']}")
    app = docs["app"]
    server = app["latency_ms"]["server"]
    if not all(server[q] for q in ("p50", "p95", "p99")):
        problems.append(f"app: percentiles {server}")
    caches = {c["name"]: c for c in app["caches"]}
    if set(caches) != APP_CACHES:
        problems.append(f"app: caches {sorted(caches)}")
    for name, doc in caches.items():
        check(f"app/{name}", doc)
    return problems


def test_demo_fleet_has_live_figures_and_sigterm_stops_everything(
        headless: HeadlessDemo, demo_tmp: Path) -> None:
    deadline = time.monotonic() + 40
    problems = ["not polled yet"]
    while problems and time.monotonic() < deadline:
        problems = figure_problems(poll_once(headless.urls))
    assert not problems

    headless.proc.send_signal(signal.SIGTERM)
    assert headless.proc.wait(15) == 0
    assert_all_gone(headless.children, timeout_s=2)
    assert list(demo_tmp.iterdir()) == []


def test_sigkill_of_cachetop_still_stops_every_child(headless: HeadlessDemo) -> None:
    headless.proc.kill()
    headless.proc.wait(5)
    assert_all_gone(headless.children)  # PR_SET_PDEATHSIG: the kernel sends them SIGTERM


def _row_up(text: str, name: str) -> bool:
    """The row of `name` says up, with a number of ops/s and a hit ratio (after the ROLE
    column's text, which the table shows when the fleet has a replica). A name may be followed
    by its link: `catalog ← app/redis-l2`, `redis-l2 → catalog` (README, fleet totals)."""
    row = re.compile(rf"^\s*(?:└ )?{re.escape(name)}(?: [←→] \S+)?\s+\S+\s+● up\s+"
                     r"(?:[a-z][^\n]*?\s+)?"
                     r"[0-9][0-9.]*[kM]?\s+[0-9.]+%", re.MULTILINE)
    return row.search(text) is not None


@pytest.mark.usefixtures("_servers_installed")
def test_dashboard_shows_every_target_up_and_q_stops_everything(demo_tmp: Path) -> None:
    program = PtyProgram(DEMO, demo_env(demo_tmp), rows=45, cols=140)
    children: list[psutil.Process] = []
    try:
        rows = (*NAMES, *APP_CACHES)
        text = program.wait_for(lambda t: all(_row_up(t, n) for n in rows), timeout_s=45)
        assert program.proc.poll() is None, text
        assert [n for n in rows if not _row_up(text, n)] == [], text
        children = demo_children(program.proc.pid, engines=1)
        program.send(b"q")
        assert program.proc.wait(15) == 0
        assert_all_gone(children, timeout_s=2)
        assert list(demo_tmp.iterdir()) == []
    finally:
        program.close()
        assert_all_gone(children)


@pytest.mark.parametrize("installed", [(), ("redis-server",)])
def test_missing_server_binary_says_how_to_install(tmp_path: Path,
                                                   installed: tuple[str, ...]) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in installed:
        (bin_dir / name).symlink_to(shutil.which(name) or "/bin/true")
    env = demo_env(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    env["PATH"] = str(bin_dir)
    out = subprocess.run([*DEMO, "--no-tui"], capture_output=True, text=True, env=env,
                         timeout=30)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    absent = [b for b in ("redis-server", "memcached") if b not in installed]
    assert lines[0].startswith(f"cachetop demo: {' and '.join(absent)} not found")
    assert "apt-get install" in lines[0] and "brew install" in lines[0]
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.usefixtures("_servers_installed")
def test_a_port_taken_after_it_was_chosen_is_never_mistaken_for_the_server() -> None:
    """free_port() answers a port that is free now; another process may bind it before the
    server does. The server then exits on "Address already in use" while the port answers for
    the other process: that is never a started server (a demo showed its app down and no
    traffic that way). A first start moves to another port; a restart, which must keep its
    port, says the port was taken."""
    from cachetop.demo.servers import PortTakenError, RedisServer, listens

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    server = RedisServer()
    server.port = taken
    second = socket.socket()
    try:
        server.start()
        assert server.port != taken and listens(server.pid, server.port)
        server.stop()
        second.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        second.bind(("127.0.0.1", server.port))
        second.listen()
        with pytest.raises(PortTakenError):
            server.start()
    finally:
        server.close()
        squatter.close()
        second.close()


@pytest.mark.usefixtures("_servers_installed")
def test_the_demo_app_moves_to_another_port_when_its_own_was_taken() -> None:
    from urllib.request import urlopen

    from cachetop.demo.fleet import DemoFleet

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    fleet = DemoFleet(rate=50, cold_start_s=0.0)
    fleet.app_port = taken
    try:
        fleet.start()
        assert fleet.app_port != taken
        assert urlsplit(fleet.app_url).port == fleet.app_port
        with urlopen(fleet.app_url, timeout=5) as reply:  # the app's own metrics
            assert b"cache_" in reply.read()
    finally:
        fleet.stop()
        squatter.close()
