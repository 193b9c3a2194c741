"""Provides discover_local(): the Redis, Valkey and memcached servers running on this host.

Only this host is looked at: the process table (psutil) and two connect() calls to loopback's
standard ports. No network is scanned, and no credential is attached to what is found.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import psutil

from cachetop.collectors.base import Target
from cachetop.errors import ConfigError
from cachetop.target_url import parse_target_url

# Process name -> (word shown in the target name, Target kind). Valkey speaks the Redis protocol.
SERVERS = {"redis-server": ("redis", "redis"), "valkey-server": ("valkey", "redis"),
           "memcached": ("memcached", "memcached")}
STANDARD_PORTS = {6379: "redis", 11211: "memcached"}
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}
# redis-server rewrites its argv to a title such as "redis-server *:6379" or "127.0.0.1:6379".
_TITLE_RE = re.compile(r"\s(\S+):(\d{1,5})(?:\s|$)")


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket of a cache server: TCP (`host`, `port`) or unix (`socket_path`).

    `pid` is None when only a probe of a standard port saw it.
    """

    server: str
    kind: str
    pid: int | None
    host: str | None = None
    port: int | None = None
    socket_path: str | None = None


def discover_local(timeout_s: float = 0.3) -> list[Target]:
    """Cache servers listening on this host, as Targets named like "redis 127.0.0.1:6379".

    Processes named redis-server, valkey-server or memcached are asked for their listening
    sockets (TCP, and unix sockets for Redis); processes we may not inspect or that exit
    meanwhile are skipped. Then 127.0.0.1:6379 and 127.0.0.1:11211 are tried, in parallel,
    for servers we could not see (another user's, or a container's published port).

    Args:
        timeout_s: Connect timeout of each standard-port probe; the whole call takes about
            the process scan plus at most this.

    Returns:
        One Target per server socket, deduplicated: wildcard listeners become loopback, and a
        server listening on several addresses of one port appears once.
    """
    listeners = list(process_listeners())
    listeners += probe_standard_ports(listeners, timeout_s)
    return targets_from_listeners(listeners)


def process_listeners() -> Iterator[Listener]:
    """Listening sockets of the cache server processes that are visible to us."""
    for proc in psutil.process_iter(["name"]):
        name = proc.info.get("name") or ""
        if name not in SERVERS:
            continue
        try:
            yield from _sockets_of(proc, *SERVERS[name])
        except psutil.AccessDenied:
            yield from _sockets_from_title(proc, *SERVERS[name])
        except psutil.Error:  # NoSuchProcess, ZombieProcess: it exited while we looked
            continue


def _sockets_of(proc: psutil.Process, server: str, kind: str) -> list[Listener]:
    found = [Listener(server, kind, proc.pid, conn.laddr.ip, conn.laddr.port)
             for conn in proc.net_connections(kind="tcp")
             if conn.status == psutil.CONN_LISTEN and conn.laddr]
    if kind == "redis":
        # Accepted unix connections may repeat the listening path; dedupe happens later.
        found += [Listener(server, kind, proc.pid, socket_path=conn.laddr)
                  for conn in proc.net_connections(kind="unix")
                  if isinstance(conn.laddr, str) and conn.laddr.startswith("/")]
    return found


def _sockets_from_title(proc: psutil.Process, server: str, kind: str) -> list[Listener]:
    """Another user's redis-server: its process title still names its TCP address."""
    if kind != "redis":
        return []
    try:
        title = " ".join(proc.cmdline())
    except psutil.Error:
        return []
    match = _TITLE_RE.search(title)
    if match is None:
        return []
    return [Listener(server, kind, proc.pid, match.group(1), int(match.group(2)))]


def probe_standard_ports(known: Iterable[Listener], timeout_s: float) -> list[Listener]:
    """Standard loopback ports that accept a connection and no known listener explains."""
    seen = {(_loopback(k.host), k.port) for k in known if k.host is not None}
    ports = [port for port in STANDARD_PORTS if ("127.0.0.1", port) not in seen]
    if not ports:
        return []
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:  # in parallel: one timeout in all
        accepted = list(pool.map(lambda port: _accepts(port, timeout_s), ports))
    return [Listener(STANDARD_PORTS[port], STANDARD_PORTS[port], None, "127.0.0.1", port)
            for port, ok in zip(ports, accepted, strict=True) if ok]


def _accepts(port: int, timeout_s: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def targets_from_listeners(listeners: Iterable[Listener]) -> list[Target]:
    """One Target per server socket: wildcards become loopback, each (server, port) once.

    A server listening on 127.0.0.1 and ::1 (Redis's default bind) is one server, so of the
    addresses of one process and port only the most local one is kept.
    """
    best: dict[object, Listener] = {}
    for listener in listeners:
        if listener.socket_path is not None:
            key: object = listener.socket_path
        else:
            if listener.host is None or "%" in listener.host:  # skip scoped link-local
                continue
            listener = dataclasses.replace(listener, host=_loopback(listener.host))
            key = (listener.pid, listener.port) if listener.pid else (listener.host, listener.port)
        if key not in best or _rank(listener) < _rank(best[key]):
            best[key] = listener
    targets = {t.address: t for t in map(_target, best.values()) if t is not None}
    return sorted(targets.values(), key=lambda t: (t.kind != "redis", t.port or 0, t.address))


def _loopback(host: str | None) -> str | None:
    """Wildcard and IPv4-mapped addresses -> the loopback address that reaches them."""
    if host is None:
        return None
    host = _WILDCARDS.get(host, host)
    if host.startswith("::ffff:") and "." in host:
        return host.removeprefix("::ffff:")
    return host


def _rank(listener: Listener) -> int:
    if listener.host == "127.0.0.1":
        return 0
    try:
        return 1 if ipaddress.ip_address(listener.host or "").is_loopback else 2
    except ValueError:
        return 3


def _target(listener: Listener) -> Target | None:
    if listener.socket_path is not None:
        url = "unix://" + quote(listener.socket_path, safe="/")
    else:
        host = f"[{listener.host}]" if ":" in (listener.host or "") else listener.host
        url = f"{'redis' if listener.kind == 'redis' else 'memcached'}://{host}:{listener.port}"
    try:
        target = parse_target_url(url)
    except ConfigError:  # an odd socket path or address: not something we could poll
        return None
    return dataclasses.replace(target, name=f"{listener.server} {target.address}")
