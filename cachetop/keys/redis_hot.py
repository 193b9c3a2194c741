"""Provides hot-key discovery on Redis: HOTKEYS (8.6+), else LFU counters, else why not.

cachetop never uses MONITOR (it doubles the server's work and shows values). HOTKEYS tracks
CPU time and network bytes per key in a session the server keeps: cachetop reads a session
someone else left, or runs its own for a few seconds *before* scanning (its own scan would
otherwise be the hottest thing it measured) and resets it after. Without HOTKEYS, OBJECT FREQ
gives each key's logarithmic access counter, which Redis keeps only under an LFU
maxmemory-policy; the scan reads it for every key it describes.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

import redis

from cachetop.actions.redis_wire import Wire
from cachetop.keys.model import HotKey

LFU_POLICIES = frozenset({"allkeys-lfu", "volatile-lfu"})
HOTKEYS_WINDOW_S = 5.0


def lfu_reason(policy: str, has_hotkeys: bool) -> str | None:
    """Why OBJECT FREQ cannot rank keys by use (None when it can)."""
    if policy in LFU_POLICIES or has_hotkeys:
        return None
    shown = policy or "unknown"
    return (f"hot keys need HOTKEYS (Redis 8.6+) or an LFU maxmemory-policy (allkeys-lfu or "
            f"volatile-lfu) for OBJECT FREQ; this server has maxmemory-policy {shown} and no "
            "HOTKEYS (cachetop never uses MONITOR)")


def has_hotkeys(client: redis.Redis) -> bool:
    """Whether the server knows the HOTKEYS command (COMMAND INFO answers nil otherwise)."""
    (reply,) = Wire(client).call((b"COMMAND", b"INFO", b"HOTKEYS"))  # raw: redis-py's
    if isinstance(reply, redis.ResponseError):                      # parser fails on nil
        return False
    if isinstance(reply, Mapping):
        return any(v for v in reply.values())
    return bool(reply) and any(entry for entry in reply)


def _pairs(value: Any) -> list[tuple[bytes, float]]:
    items = list(value or [])
    out: list[tuple[bytes, float]] = []
    for key, score in zip(items[0::2], items[1::2], strict=False):
        if isinstance(key, bytes | str) and isinstance(score, int | float):
            out.append((key.encode() if isinstance(key, str) else key, float(score)))
    return out


def parse_hotkeys(reply: Any) -> dict[str, Any] | None:
    """HOTKEYS GET as a dict of str -> value (RESP2 flat pairs, a RESP3 map, or either
    wrapped in a one-element array); None when no session exists."""
    if reply is None:
        return None
    if isinstance(reply, list | tuple) and len(reply) == 1 and isinstance(reply[0],
                                                                          list | tuple | dict):
        reply = reply[0]
    if isinstance(reply, Mapping):
        items = list(reply.items())
    else:
        flat = list(reply)
        items = list(zip(flat[0::2], flat[1::2], strict=False))
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in items}


def hot_from_session(fields: Mapping[str, Any], top: int) -> tuple[HotKey, ...]:
    """The session's keys: by CPU time first, then by network bytes, each key once."""
    out: dict[bytes, HotKey] = {}
    for name, measure in (("by-cpu-time-us", "cpu_us"), ("by-net-bytes", "net_bytes")):
        for key, score in _pairs(fields.get(name)):
            out.setdefault(key, HotKey(key, score, measure))
    return tuple(sorted(out.values(), key=lambda h: (h.measure != "cpu_us", -h.score))[:top])


def hotkeys_session(client: redis.Redis, top: int, window_s: float,
                    cancel: threading.Event) -> tuple[tuple[HotKey, ...], str]:
    """Read a HOTKEYS session: an existing one as it is, or one of `window_s` seconds that
    cachetop starts, waits for (cancellable) and resets. Returns the keys and their source."""
    fields = parse_hotkeys(client.execute_command("HOTKEYS", "GET"))
    if fields is not None:
        return hot_from_session(fields, top), "HOTKEYS (a session already on the server)"
    client.execute_command("HOTKEYS", "START", "METRICS", 2, "CPU", "NET", "COUNT",
                           max(10, top), "DURATION", max(1, round(window_s)))
    try:
        cancel.wait(window_s)
        fields = parse_hotkeys(client.execute_command("HOTKEYS", "GET")) or {}
    finally:
        # It may have stopped by itself at the end of its DURATION.
        with contextlib.suppress(redis.ResponseError):
            client.execute_command("HOTKEYS", "STOP")
        client.execute_command("HOTKEYS", "RESET")
    return hot_from_session(fields, top), f"HOTKEYS over {window_s:g}s before the scan"
