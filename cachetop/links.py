"""Provides server_resolver(): which fleet target an application cache lives on, from the
address its metrics endpoint gives (`cache_server_info{cache=..., server="host:port"}`).

Matching is by host and port as written, with the loopback names taken as one; no DNS is done
(the engine's loop must not block), so an endpoint that names a server differently from the
config is linked with `[targets.caches]` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from cachetop.collectors.base import Target

SERVER_KINDS = frozenset({"redis", "memcached"})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def host_port(address: str) -> tuple[str, int] | None:
    """("host", port) of "host:port", "[v6]:port" or a URL; None without a port."""
    text = address.strip()
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    host = parts.hostname.lower().rstrip(".")
    return ("localhost" if host in _LOOPBACK else host), port


def server_resolver(targets: Sequence[Target]) -> Callable[[str], str]:
    """A function from an address to the name of the server target at it ("" if none)."""
    index: dict[tuple[str, int], str] = {}
    for t in targets:
        if t.kind in SERVER_KINDS and t.host and t.port:
            key = host_port(f"{t.host}:{t.port}" if ":" not in t.host else f"[{t.host}]:{t.port}")
            if key is not None:
                index.setdefault(key, t.name)

    def resolve(address: str) -> str:
        key = host_port(address)
        return index.get(key, "") if key is not None else ""

    return resolve
