"""Test helpers: a real `cachetop agent` process on a free loopback port, and its /metrics."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from tests.ci import missing
from tests.servers import MemcachedServer, RedisServer

ROOT = Path(__file__).resolve().parents[2]


def require_tool(name: str) -> str:
    """The path of a tool the test needs; fails under CI, skips elsewhere, when it is missing."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (scripts/setup.sh installs it)")
    assert path is not None
    return path


class AgentProcess:
    """`python -m cachetop agent ARGS --listen 127.0.0.1:0`: started, its port read from the line
    it prints, stopped with SIGTERM (SIGKILL after a while), its stderr kept."""

    def __init__(self, *args: str, env: dict[str, str] | None = None,
                 listen: str = "127.0.0.1:0") -> None:
        argv = [sys.executable, "-m", "cachetop", "agent", *args]
        if "--listen" not in args:
            argv += ["--listen", listen]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                     env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self.port = 0
        self.scheme = "http"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            found = re.search(r"serving (https?)://\S+:(\d+)/metrics", line)
            if found and not self._ready.is_set():
                self.scheme, self.port = found.group(1), int(found.group(2))
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout_s: float = 30.0) -> AgentProcess:
        assert self._ready.wait(timeout_s), "the agent printed no serving line"
        assert self.port, f"the agent did not start: {self.stderr()}"
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(5)
        return self.proc.returncode


def get(url: str, token: str | None = None, timeout_s: float = 10.0,
        context: object = None) -> tuple[int, bytes]:
    """GET `url`: (status, body), an HTTP error status included rather than raised."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s,
                                    context=context) as response:  # type: ignore[arg-type]
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric in exposition text, by their sorted label pairs (a small
    reading of the format, independent of the code under test)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def by_target(text: str, name: str, cache: str = "") -> dict[str, float]:
    """One metric's values by target, for the target rows (or one endpoint cache's)."""
    return {dict(labels)["target"]: value for labels, value in samples(text, name).items()
            if dict(labels).get("cache", "") == cache}


def write_config(path: Path, targets: Sequence[tuple[str, str]], interval_s: float = 0.5,
                 extra: str = "") -> Path:
    """A TOML config of (name, url) targets."""
    lines = [f"interval = {interval_s}", extra, ""]
    for name, url in targets:
        lines += ["[[targets]]", f'name = "{name}"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines))
    return path


PASSWORD = "S3cr#t-p@ss/word"


def credential_forms(password: str) -> list[str]:
    """The password as it could leak: raw, percent-encoded, base64 (alone and as userinfo)."""
    return [password, quote(password, safe=""), quote(password),
            base64.b64encode(password.encode()).decode(),
            base64.b64encode(f":{password}".encode()).decode()]


def redis_workload(server: RedisServer, hits: int, misses: int, **kwargs: object) -> None:
    """Exactly `hits` hits and `misses` misses (and one SET)."""
    client = server.client(**kwargs)
    client.set("present", "v")
    for _ in range(hits):
        client.get("present")
    for i in range(misses):
        client.get(f"absent:{i}")


def memcached_workload(server: MemcachedServer, hits: int, misses: int) -> None:
    client = server.client()
    client.set("present", "v")
    for _ in range(hits):
        client.get("present")
    for i in range(misses):
        client.get(f"absent:{i}")


@contextmanager
def agent_of_a_password_redis() -> Iterator[tuple[AgentProcess, RedisServer]]:
    """A Redis with `requirepass PASSWORD`, some traffic, and an agent given its URL."""
    server = RedisServer("--requirepass", PASSWORD)
    server.start()
    try:
        redis_workload(server, hits=10, misses=1, password=PASSWORD)
        url = f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{server.port}"
        agent = AgentProcess(url, "--interval", "0.3").wait_ready()
        try:
            yield agent, server
        finally:
            agent.stop()
    finally:
        server.close()
