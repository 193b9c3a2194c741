"""Provides StreamHub: the agent's end of the snapshot stream (`cachetop --connect`).

After `GET /stream` with `Upgrade: cachetop-stream` (and the bearer token, checked before
this runs), the connection carries the engine's frames (cachetop.engine.protocol, JSON codec,
never marshal: the reader is not a process the agent started). The agent says hello with the
targets' public description (name, kind, address, group: never a credential), then sends each
reader what its own Publisher finds: deltas, and detail and history of what it watches.

Each reader has one thread that both reads and writes (an ssl socket must not be read and
written from two threads at once). Readers share the agent's polling: a reader cannot change
the interval or pause it, and an action request is refused unless the agent was started with
--allow-actions (actions over the stream are not carried yet: refused with the reason).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cachetop.collectors.base import Target
from cachetop.engine.protocol import PROTOCOL, FrameReader, ProtocolError, frame
from cachetop.engine.publish import Publisher
from cachetop.monitor import Monitor

log = logging.getLogger("cachetop.agent")

FLUSH_S = 0.1
SEND_TIMEOUT_S = 30.0  # a reader that takes no bytes for this long is dropped
CODEC = "json"
# Extra messages for every reader (events, later): a hook called each tick with the send.
Extra = Callable[[Callable[[Mapping[str, Any]], None]], None]


def public_target(target: Target) -> dict[str, Any]:
    """What a reader may know of a target: no username, password, TLS files or URL."""
    return {"name": target.name, "kind": target.kind, "address": target.address,
            "group": target.group}


class StreamHub:
    """Serves every stream reader of one agent."""

    def __init__(self, monitor: Monitor, targets: Sequence[Target], *,
                 allow_actions: bool = False) -> None:
        self.monitor = monitor
        self.targets = list(targets)
        self.allow_actions = allow_actions
        self.readers = 0
        self.extras: list[Extra] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchers: dict[str, int] = {}

    def watch(self, name: str, on: bool) -> None:
        """The monitor fetches a target's detail while any reader's screen shows it."""
        with self._lock:
            count = self._watchers.get(name, 0) + (1 if on else -1)
            if count > 0:
                self._watchers[name] = count
            else:
                self._watchers.pop(name, None)
        if count == (1 if on else 0):
            self.monitor.watch(name, on)

    def stop(self) -> None:
        self._stopping.set()

    def serve(self, sock: socket.socket, rfile: Any) -> None:
        """Run one reader's stream until it hangs up, stalls, or the agent stops."""
        with self._lock:
            self.readers += 1
        session = _Session(self, sock)
        try:
            session.run()
        except (OSError, ProtocolError) as exc:
            log.info("a stream reader went away: %s", exc)
        finally:
            session.close()
            with self._lock:
                self.readers -= 1


class _Session:
    def __init__(self, hub: StreamHub, sock: socket.socket) -> None:
        self.hub = hub
        self.sock = sock
        self.publisher = Publisher(hub.monitor, watch=hub.watch)
        self.reader = FrameReader(CODEC)
        self.closed = False

    def send(self, message: Mapping[str, Any]) -> None:
        self.sock.settimeout(SEND_TIMEOUT_S)
        self.sock.sendall(frame(message, CODEC))

    def run(self) -> None:
        hub = self.hub
        self.send({"t": "hello", "v": PROTOCOL, "pid": os.getpid(),
                   "interval_s": hub.monitor.interval_s, "warning": None,
                   "agent": {"targets": [public_target(t) for t in hub.targets],
                             "actions": hub.allow_actions}})
        next_tick = time.monotonic()
        while not self.closed and not hub._stopping.is_set():
            self.sock.settimeout(max(0.0, next_tick - time.monotonic()) or 0.001)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                data = None
            if data == b"":
                return  # the reader hung up
            if data:
                for message in self.reader.feed(data):
                    self.on_message(message)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + FLUSH_S
                self.publisher.tick(self.send)
                for extra in hub.extras:
                    extra(self.send)

    def on_message(self, message: Mapping[str, Any]) -> None:
        kind = message.get("t")
        if kind == "config":
            limit = message.get("caches_limit")
            self.publisher.caches_limit = int(limit) if limit is not None else None
        elif kind == "watch":
            name = str(message.get("name"))
            if any(t.name == name for t in self.hub.targets):
                self.publisher.watch(name, bool(message.get("on")))
        elif kind == "action":
            reason = ("this agent was started without --allow-actions" if not
                      self.hub.allow_actions else "actions through an agent are not carried "
                      "yet: run them where the agent runs (cachetop flush ...)")
            self.send({"t": "refused", "what": "action", "reason": reason})
        elif kind == "stop":
            self.closed = True
        # interval, pause, poll_now: the agent's polling is shared by every reader; ignored.

    def close(self) -> None:
        for name in list(self.publisher.watched):
            self.publisher.watch(name, False)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
