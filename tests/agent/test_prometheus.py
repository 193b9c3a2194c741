"""`cachetop --prometheus`: two sharded agents and a redis_exporter scraped every second by a
real Prometheus, all started here on loopback; the fleet read back through its API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cachetop.demo.servers import free_port
from cachetop.prometheus.api import PrometheusApi
from tests.agent.helpers import ROOT, AgentProcess, by_target, get, require_tool, write_config
from tests.servers import MemcachedServer, RedisServer
from tests.wait import wait_until

CYCLES_PER_S = 20  # 5 GETs a cycle: 100 GETs/s on every server
# The rate window cachetop asks for at --interval 10: long beside the agents' 1 s polls, whose
# counters Prometheus samples every 1 s (a window of 3 scrapes could see one poll twice).
WINDOW_S = 10.0


@dataclass
class Stack:
    servers: list[RedisServer | MemcachedServer]
    names: list[str]
    exporter_redis: RedisServer
    agents: list[AgentProcess]
    prometheus_url: str
    api: PrometheusApi


class Workload:
    """Four hits then one miss on every server, CYCLES_PER_S times a second: a hit ratio of
    exactly 0.80."""

    def __init__(self, servers: list[RedisServer | MemcachedServer]) -> None:
        self.clients = [s.client() for s in servers]
        for client in self.clients:
            client.set("present", "v")
        self.stop = threading.Event()
        self.started_at = time.time()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            for client in self.clients:
                for _ in range(4):
                    client.get("present")
                client.get("absent")
            next_at += 1 / CYCLES_PER_S  # paced: a known rate, caught up after a stall
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Workload:
        self.started_at = time.time()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def start_process(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_tool("prometheus")
    exporter = require_tool("prometheus-redis-exporter")
    tmp = tmp_path_factory.mktemp("stack")
    servers: list[RedisServer | MemcachedServer] = [RedisServer() for _ in range(3)]
    servers += [MemcachedServer() for _ in range(3)]
    exporter_redis = RedisServer()
    started: list[RedisServer | MemcachedServer] = []
    procs: list[subprocess.Popen[bytes]] = []
    agents: list[AgentProcess] = []
    try:
        for server in [*servers, exporter_redis]:
            server.start()
            started.append(server)
        names = [f"cache-{i}" for i in range(len(servers))]
        config = write_config(tmp / "fleet.toml",
                              list(zip(names, [s.url for s in servers], strict=True)), 1.0)
        agents = [AgentProcess("--config", str(config), "--shard", f"{i}/2").wait_ready()
                  for i in (1, 2)]
        exporter_port = free_port()
        procs.append(start_process([exporter, "-redis.addr", exporter_redis.url,
                                    "-web.listen-address", f"127.0.0.1:{exporter_port}"],
                                   tmp / "exporter.log"))
        prom_port = free_port()
        agent_targets = ", ".join(f'"127.0.0.1:{a.port}"' for a in agents)
        (tmp / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: cachetop
    static_configs: [{{targets: [{agent_targets}]}}]
  - job_name: redis
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
""")
        procs.append(start_process([prometheus, f"--config.file={tmp / 'prometheus.yml'}",
                                    f"--storage.tsdb.path={tmp / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{prom_port}"],
                                   tmp / "prometheus.log"))
        url = f"http://127.0.0.1:{prom_port}"
        wait_until(lambda: get(f"{url}/-/ready", timeout_s=2)[0] == 200 if _listening(
            prom_port) else False, "Prometheus ready", timeout_s=60)
        api = PrometheusApi(url)
        wait_until(lambda: len(api.query('cachetop_target_up{cache=""} == 1')) == 6
                   and len(api.query("redis_up == 1")) == 1,
                   "Prometheus scraping six agents' targets and the exporter", timeout_s=60)
        yield Stack(servers, names, exporter_redis, agents, url, api)
    finally:
        for agent in agents:
            agent.stop()
        for proc in procs:
            stop_process(proc)
        for server in started:
            server.close()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def cachetop_json(*args: str) -> dict[str, dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "cachetop", *args, "--once", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return {t["name"]: t for t in json.loads(done.stdout)["targets"]}


def test_the_shards_cover_each_target_once(stack: Stack) -> None:
    seen: list[str] = []
    for agent in stack.agents:
        seen += by_target(get(f"{agent.url}/metrics")[1].decode(), "cachetop_target_up")
    assert sorted(seen) == sorted(stack.names)


def test_prometheus_shows_every_target_with_the_known_hit_ratio(stack: Stack) -> None:
    with Workload([*stack.servers, stack.exporter_redis]) as work:
        # Prometheus has a whole rate window of the workload once every target's latest
        # scrape is WINDOW_S + 1 s past its start.
        wait_until(lambda: min((v for _, v in stack.api.query("timestamp(up)")),
                               default=0) > work.started_at + WINDOW_S + 1.0,
                   "a rate window of the workload in Prometheus", timeout_s=60)
        seen = cachetop_json("--prometheus", stack.prometheus_url, "--interval", str(WINDOW_S))
        direct = cachetop_json(*[s.url for s in stack.servers], "--interval", "1")
    exporter_name = next(n for n in seen if n not in stack.names)
    assert sorted(seen) == sorted([*stack.names, exporter_name])
    assert seen[exporter_name]["kind"] == "redis"
    for name, target in seen.items():
        assert target["status"] == "up", name
        assert target["hit_ratio"] == pytest.approx(0.80, abs=0.03), name
    for name, server in zip(stack.names, stack.servers, strict=True):
        polled = direct[f"127.0.0.1:{server.port}"]
        assert polled["hit_ratio"] == pytest.approx(0.80, abs=0.03)
        assert seen[name]["keys"] == polled["keys"] == 1
        assert seen[name]["kind"] == polled["kind"]
        assert seen[name]["memory_max_bytes"] == polled["memory_max_bytes"]
        # Both near the known pace (a loaded machine makes a 1 s interval bursty).
        for figures in (seen[name], polled):
            assert figures["ops_per_sec"] == pytest.approx(5 * CYCLES_PER_S, rel=0.5)


def test_a_selector_narrows_the_fleet(stack: Stack) -> None:
    seen = cachetop_json("--prometheus", stack.prometheus_url, "--match", '{job="redis"}')
    assert len(seen) == 1 and next(iter(seen.values()))["kind"] == "redis"


def test_an_unreachable_api_says_so_in_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "cachetop", "--prometheus",
                           f"http://u:S3cretPw@127.0.0.1:{free_port()}", "--once"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert "S3cretPw" not in done.stderr and "Traceback" not in done.stderr
    assert "127.0.0.1" in done.stderr
