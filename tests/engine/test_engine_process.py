"""The engine process: it polls in its own process, dies with its front, and a front whose
engine dies says so and starts a new one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from cachetop.engine.client import EngineClient
from tests.integration.helpers import memcached_target, redis_target
from tests.servers import MemcachedServer, RedisServer


def wait_until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def statuses(client: EngineClient) -> dict[str, str]:
    return {t.name: t.status for t in client.snapshot().targets}


@pytest.fixture
def client(redis_server: RedisServer, memcached_server: MemcachedServer
           ) -> Iterator[EngineClient]:
    engine = EngineClient([redis_target(redis_server.port, "r", timeout_s=0.5),
                           memcached_target(memcached_server.port, "m", timeout_s=0.5)], 0.3)
    engine.start()
    yield engine
    engine.stop()


def test_polling_happens_in_the_engine_process_not_the_front(
        client: EngineClient, redis_server: RedisServer) -> None:
    wait_until(lambda: statuses(client) == {"r": "up", "m": "up"})
    engine = psutil.Process(client.pid)
    assert engine.ppid() == os.getpid()
    server_port = redis_server.port
    mine = [c for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == server_port]
    theirs = [c for c in engine.net_connections("tcp")
              if c.raddr and c.raddr.port == server_port]
    assert mine == [] and len(theirs) == 1  # the front never opens a monitoring socket
    assert engine.num_threads() <= 4


def test_a_killed_engine_is_said_and_replaced_and_figures_resume(client: EngineClient) -> None:
    wait_until(lambda: statuses(client) == {"r": "up", "m": "up"})
    first = client.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: client.pid != first and client.notice() is not None)
    notice = client.notice() or ""
    assert "killed by SIGKILL" in notice and "history before that is lost" in notice
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"
    before = {t.name: t.updated_at for t in client.snapshot().targets}
    wait_until(lambda: all(t.updated_at > before[t.name] and t.status == "up"
                           for t in client.snapshot().targets))
    assert client.restarts == 1


FRONT = textwrap.dedent("""
    import sys, time
    from cachetop.engine.client import EngineClient
    from tests.integration.helpers import redis_target
    client = EngineClient([redis_target(int(sys.argv[1]), "r")], 0.3)
    client.start()
    print(client.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_the_engine_never_outlives_its_front(redis_server: RedisServer,
                                            how: signal.Signals) -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    front = subprocess.Popen([sys.executable, "-c", FRONT, str(redis_server.port)],
                             stdout=subprocess.PIPE, text=True, cwd=root,
                             env={**os.environ, "PYTHONPATH": root})
    try:
        assert front.stdout is not None
        engine_pid = int(front.stdout.readline())
        engine = psutil.Process(engine_pid)
        assert engine.ppid() == front.pid
        front.send_signal(how)
        front.wait(10)
        engine.wait(10)  # raises psutil.TimeoutExpired if the engine is orphaned
    finally:
        if front.poll() is None:
            front.kill()
            front.wait()


def test_cli_batch_runs_the_engine_as_its_child_and_stops_it(redis_server: RedisServer) -> None:
    front = subprocess.Popen([sys.executable, "-m", "cachetop", "--batch", "--json",
                              "--interval", "0.3", redis_server.url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert front.stdout is not None
        front.stdout.readline()  # one snapshot printed: the engine is up
        (engine,) = psutil.Process(front.pid).children()
        assert "cachetop.engine" in " ".join(engine.cmdline())
        front.send_signal(signal.SIGINT)  # Ctrl-C
        assert front.wait(10) == 0
        engine.wait(5)
    finally:
        if front.poll() is None:
            front.kill()
            front.wait()


def test_the_dashboard_says_when_its_engine_died_and_recovers(
        redis_server: RedisServer) -> None:
    from cachetop.tui.app import CachetopApp
    from tests.core.test_secrets_never_leak import screen_text
    from tests.tui.pilot import config_for, wait_for

    async def scenario() -> None:
        app = CachetopApp(config_for(redis_server.url, names=["sessions"]))
        async with app.run_test(size=(140, 45), notifications=True) as pilot:
            # The engine's client is made after the first frame.
            await wait_for(pilot, lambda: isinstance(app.source, EngineClient))
            source = app.source
            assert isinstance(source, EngineClient)
            await wait_for(pilot, lambda: app.snapshot is not None and
                           app.snapshot.targets[0].status == "up")
            first = source.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            def shown() -> str:  # the toast wraps its lines inside a border
                return " ".join(screen_text(app.export_screenshot()).replace("▌", " ").split())

            await wait_for(pilot, lambda: "killed by SIGKILL" in shown())
            text = shown()
            assert "a new one was started" in text and "history before that is lost" in text
            version = app.snapshot.version if app.snapshot else 0
            await wait_for(pilot, lambda: app.snapshot is not None
                           and app.snapshot.version > version
                           and app.snapshot.targets[0].status == "up")
            assert source.pid != first

    import asyncio

    asyncio.run(scenario())


def test_a_fleet_larger_than_the_descriptor_limit_is_said(redis_server: RedisServer,
                                                         tmp_path: Path) -> None:
    """The engine raises its soft RLIMIT_NOFILE to the hard limit; past that it says so."""
    import resource

    config = tmp_path / "fleet.toml"
    config.write_text("".join(f'[[targets]]\nname = "t{i}"\n'
                              f'url = "redis://127.0.0.1:{redis_server.port}"\n'
                              for i in range(300)))

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 200))

    out = subprocess.run([sys.executable, "-m", "cachetop", "--once", "--json", "--config",
                          str(config)],
                         capture_output=True, text=True, timeout=60, preexec_fn=low_limit)
    every_up = all(t["status"] == "up" for t in json.loads(out.stdout)["targets"])
    assert out.returncode == (0 if every_up else 1), out.stderr
    warning = [line for line in out.stderr.splitlines() if "descriptors" in line]
    assert len(warning) == 1
    assert "the fleet has 300 targets but this process may open only 200" in warning[0]
    assert "raise the limit" in warning[0]


def test_a_target_named_by_host_name_is_resolved_and_polled(redis_server: RedisServer) -> None:
    """Names go through the engine's one resolver thread (getaddrinfo blocks), never the loop."""
    import dataclasses

    target = dataclasses.replace(redis_target(redis_server.port, "by-name"), host="localhost",
                                 address=f"localhost:{redis_server.port}")
    engine = EngineClient([target], 0.3)
    engine.start()
    try:
        wait_until(lambda: statuses(engine) == {"by-name": "up"})
        assert psutil.Process(engine.pid).num_threads() <= 4
    finally:
        engine.stop()


class _FrozenAtBirth(EngineClient):
    """An engine stopped (SIGSTOP) as soon as it is spawned: it cannot read its config yet,
    as a slow interpreter start could not."""

    def _spawn(self) -> None:
        super()._spawn()
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)


def test_start_does_not_wait_for_the_engine_to_read_a_large_config(
        redis_server: RedisServer) -> None:
    """A 2,000-target config is larger than the socket's buffer: start() (the UI thread,
    right after the first frame) returns anyway, and what the front asks meanwhile (a watch)
    reaches the engine after the config."""
    import threading

    targets = [redis_target(redis_server.port, f"t{i}", timeout_s=2.0) for i in range(2000)]
    client = _FrozenAtBirth(targets, 1.0)
    started = threading.Thread(target=client.start, daemon=True)
    try:
        started.start()
        started.join(5.0)
        assert not started.is_alive(), "start() blocked on the config"
        client.watch("t7")
        assert client.pid is not None
        os.kill(client.pid, signal.SIGCONT)
        wait_until(lambda: statuses(client).get("t7") == "up", 30.0)
        wait_until(lambda: next(t for t in client.snapshot().targets
                                if t.name == "t7").detail is not None, 30.0)
    finally:
        if client.pid is not None:
            os.kill(client.pid, signal.SIGCONT)
        client.stop()
