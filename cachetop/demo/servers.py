"""Provides RedisServer and MemcachedServer: real server processes on free loopback ports.

The demo and the tests start exactly the processes they use, never on the standard ports, and
stop only what they started. A missing binary raises MissingBinaryError with how to install it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from cachetop.parent_death import die_with_parent

STANDARD_PORTS = {6379, 11211}


_HANDED_OUT: set[int] = set()  # ports free_port() returned in this process


def free_port(max_port: int = 65535) -> int:
    """A loopback port nobody listens on now (never a standard cache port), at most max_port,
    and never one this process was already given: the kernel may hand a port just closed out
    again, and a fixture that picks several ports before starting its servers got the same
    one twice (CI: memcached found its port taken by the redis-server started just before)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in STANDARD_PORTS and port <= max_port and port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class MissingBinaryError(RuntimeError):
    """A server binary is not installed; the message says how to install it."""


INSTALL_HINT = {"redis-server": "apt-get install redis-server (or brew install redis)",
                "memcached": "apt-get install memcached (or brew install memcached)"}


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingBinaryError(f"{name} is not installed: {INSTALL_HINT.get(name, name)}, "
                            "or run `make setup`")
    return path


class PortTakenError(RuntimeError):
    """Another process listens on the port free_port() chose (it was free when chosen)."""


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` itself has a listening TCP socket on `port`."""
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
               for c in conns)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Return once `proc` listens on `port`. A port that answers is not enough: between
    free_port() and the bind, another process may take it (seen under a concurrent test run:
    the demo app died on "Address already in use" while its port answered for someone else,
    and the dashboard showed the app down and no traffic)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answered = False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                answered = True
        except OSError:
            pass
        if answered and listens(proc.pid, port):
            return
        if proc.poll() is not None:
            if answered:
                raise PortTakenError(f"port {port} was taken by another process; server exited "
                                f"with {proc.returncode}")
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        time.sleep(0.02)
    raise RuntimeError(f"server on port {port} did not start in {timeout_s}s")


class _Process:
    """A server process on one port that can be stopped, restarted, frozen and thawed."""

    binary = ""

    max_port = 65535
    port_tries = 3  # a first start whose port another process took moves to another one

    def __init__(self) -> None:
        self.port = free_port(self.max_port)
        self.dir = Path(tempfile.mkdtemp(prefix=f"cachetop-{self.binary}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._started = False

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        """Start on self.port; a restart keeps the port (tests restart a server where its
        clients expect it), a first start whose port was taken tries another."""
        for attempt in range(1, self.port_tries + 1):
            log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - owned by the process
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.dir,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, before exec
            )
            log.close()
            try:
                wait_port(self.port, self.proc)
            except PortTakenError:
                if self._started or attempt == self.port_tries:
                    raise
                self.port = free_port(self.max_port)
                continue
            self._started = True
            return

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """Stop the server, and return only once every thread of it is stopped: SIGSTOP is
        delivered asynchronously, and a worker thread already running could otherwise still
        answer the next request (memcached did, under load)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 5.0
        while not _all_threads_stopped(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.001)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class RedisServer(_Process):
    """redis-server with no persistence; `args` are extra `--name value` options."""

    binary = "redis-server"

    def __init__(self, *args: str, acl: list[str] | None = None) -> None:
        super().__init__()
        self.path = require_binary("redis-server")
        self.args = list(args)
        self.acl = acl
        if "--cluster-enabled" in self.args:  # the cluster bus listens on port + 10000
            self.max_port = 65535 - 10000
            self.port = free_port(self.max_port)

    def argv(self) -> list[str]:
        # A master sends its first full sync to a replica at once, not after the default 5 s
        # wait for more replicas (a replica, a cluster or a sentinel set starts 5 s sooner).
        argv = [self.path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
                "--repl-diskless-sync-delay", "0"]
        if self.acl is not None:
            aclfile = self.dir / "users.acl"
            aclfile.write_text("\n".join(self.acl) + "\n")
            argv += ["--aclfile", str(aclfile)]
        return argv + self.args

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, **kwargs: object):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]


class MemcachedServer(_Process):
    """memcached on loopback TCP only, `memory_mb` of cache."""

    binary = "memcached"

    def __init__(self, *args: str, memory_mb: int = 64) -> None:
        super().__init__()
        self.path = require_binary("memcached")
        self.args = list(args)
        self.memory_mb = memory_mb

    def argv(self) -> list[str]:
        argv = [self.path, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0",
                "-m", str(self.memory_mb), "-t", "1"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        return argv + self.args

    @property
    def url(self) -> str:
        return f"memcached://127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        from pymemcache.client.base import Client

        return Client(("127.0.0.1", self.port), connect_timeout=2, timeout=2)


def _all_threads_stopped(pid: int) -> bool:
    """Every thread of `pid` in state T (stopped), read from /proc; True off Linux."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return True
    for task in tasks.iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        if stat[stat.rindex(")") + 2] not in "Tt":
            return False
    return True
