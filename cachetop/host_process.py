"""Provides process_for_port() and host_memory(): the local process behind a port, via psutil.

Headless and blocking (psutil reads /proc): call it from a worker thread, never the UI thread.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process listening on a port. `cpu_percent` is None on the first reading (psutil
    needs two readings to measure), and may exceed 100 on several cores."""

    pid: int
    name: str
    port: int
    cpu_percent: float | None
    rss_bytes: float
    threads: int
    connections: int
    started_at: float  # wall clock
    read_at: float  # wall clock


@dataclass(frozen=True, slots=True)
class HostMemory:
    total_bytes: float
    available_bytes: float
    used_ratio: float  # 0..1
    swap_used_bytes: float


def is_local(host: str | None) -> bool:
    """True for loopback addresses and names that mean this host."""
    if not host:
        return False
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Process objects are kept between calls: psutil's cpu_percent() measures since the last call
# on the same object. Keyed by port; touched by worker threads, hence the lock.
_watched: dict[int, psutil.Process] = {}
_lock = threading.Lock()


def _connections(proc: psutil.Process) -> list[Any]:
    # psutil < 6 names it connections(); 6.0 renamed it net_connections().
    read = getattr(proc, "net_connections", None) or proc.connections
    return list(read(kind="inet"))


def _listens_on(proc: psutil.Process, port: int) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                   for c in _connections(proc))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _find_listener(port: int) -> int | None:
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        # macOS and some BSDs need root for the system-wide table: ask each visible process.
        for proc in psutil.process_iter():
            if _listens_on(proc, port):
                return proc.pid
        return None
    for c in conns:
        # Another user's socket has pid None on Linux without root: nothing to show then.
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            return int(c.pid)
    return None


def process_for_port(port: int) -> ProcessInfo | None:
    """The process listening on TCP `port` on this host, or None when none is visible.

    Args:
        port: the TCP port the cache listens on.

    Returns:
        Its figures, or None when no process (visible to this user) listens on the port.
    """
    with _lock:
        proc = _watched.get(port)
        fresh = False
        if proc is None or not proc.is_running() or not _listens_on(proc, port):
            pid = _find_listener(port)
            if pid is None:
                _watched.pop(port, None)
                return None
            try:
                proc = psutil.Process(pid)
            except psutil.NoSuchProcess:
                return None
            _watched[port] = proc
            fresh = True
        try:
            with proc.oneshot():
                cpu = proc.cpu_percent(None)
                return ProcessInfo(
                    pid=proc.pid, name=proc.name(), port=port,
                    cpu_percent=None if fresh else cpu,
                    rss_bytes=float(proc.memory_info().rss), threads=proc.num_threads(),
                    connections=sum(1 for c in _connections(proc)
                                    if c.status == psutil.CONN_ESTABLISHED),
                    started_at=proc.create_time(), read_at=time.time())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            _watched.pop(port, None)
            return None


def host_memory() -> HostMemory:
    """This host's memory: total, available, used share and swap in use."""
    vm = psutil.virtual_memory()
    return HostMemory(total_bytes=float(vm.total), available_bytes=float(vm.available),
                      used_ratio=vm.percent / 100.0,
                      swap_used_bytes=float(psutil.swap_memory().used))
