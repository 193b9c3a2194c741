"""Provides RemoteClient: the FleetSource of `cachetop --connect HOST:PORT`, a remote agent's
snapshot stream read exactly as EngineClient reads a local engine's.

It speaks the engine's protocol (JSON codec) over `GET /stream` upgraded to a raw stream, with
the bearer token in the request: a refused token ends the connection before any figure is
sent. The targets are the agent's, described without credentials; they are read-only here
(actions need the credentials, which stay with the agent). If the agent goes away the client
says so (`notice()`) and reconnects with a backoff.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any

from cachetop.agent.server import parse_listen
from cachetop.collectors.base import Target
from cachetop.engine.client import RESTART_BACKOFF_S, EngineClient
from cachetop.engine.protocol import FrameReader, ProtocolError
from cachetop.fleet import pending_figures

CODEC = "json"
CONNECT_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024


class ConnectError(Exception):
    """The agent could not be reached or refused the stream (one line, safe to print)."""


def parse_agent_address(text: str) -> tuple[str, int, bool]:
    """`HOST:PORT` or `https://HOST:PORT` (TLS): (host, port, tls); ValueError otherwise."""
    tls = text.startswith("https://")
    rest = text.removeprefix("https://").removeprefix("http://").rstrip("/")
    host, port = parse_listen(rest)
    if port == 0:
        raise ValueError(f"{text!r}: the port must not be 0")
    return host, port, tls


def open_stream(host: str, port: int, token: str | None, tls: ssl.SSLContext | None,
                timeout_s: float = CONNECT_TIMEOUT_S) -> tuple[socket.socket, bytes]:
    """Connect, ask for the stream, and return the socket and the bytes already read past
    the response's headers (the start of the first frames)."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        raise ConnectError(f"cannot connect to the agent at {where}: "
                           f"{exc.strerror or exc}") from None
    try:
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=host)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        sock.sendall((f"GET /stream HTTP/1.1\r\nHost: {where}\r\nUpgrade: cachetop-stream\r\n"
                      f"Connection: Upgrade\r\n{auth}\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk or len(data) > MAX_HEADER_BYTES:
                raise ConnectError(f"the agent at {where} closed the connection")
            data += chunk
    except (OSError, ConnectError) as exc:
        sock.close()
        if isinstance(exc, ConnectError):
            raise
        reason = exc.reason if isinstance(exc, ssl.SSLError) else exc.strerror or exc
        raise ConnectError(f"the agent at {where}: {reason}") from None
    head, _, rest = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ")
    code = status[1].decode("ascii", "replace") if len(status) > 1 else "?"
    if code != "101":
        sock.close()
        if code == "401":
            raise ConnectError(f"the agent at {where} refused the token" if token else
                               f"the agent at {where} needs a token (--bearer-token-file)")
        raise ConnectError(f"the agent at {where} answered HTTP {code} (not a cachetop agent?)")
    sock.settimeout(None)
    return sock, rest


class RemoteClient(EngineClient):
    """A FleetSource over a remote agent's stream (see the module's docstring)."""

    codec = CODEC  # JSON: never marshal from a process this one did not start

    def __init__(self, address: str, *, token: str | None = None,
                 tls: ssl.SSLContext | None = None, mode: str = "live",
                 caches_limit: int | None = None) -> None:
        host, port, use_tls = parse_agent_address(address)
        if use_tls and tls is None:
            tls = ssl.create_default_context()
        super().__init__([], 1.0, mode=mode, caches_limit=caches_limit)
        self.host, self.port = host, port
        self._token = token
        self._tls = tls if use_tls else None
        self._leftover = b""
        self.agent_actions = False

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> None:
        """Connect now: ConnectError if the agent cannot be reached or refuses the token."""
        if self._sock is None:
            self._spawn()

    def start(self) -> None:
        """Connect if not yet done (ConnectError as in connect()), then read on a thread."""
        self.connect()
        self._thread = threading.Thread(target=self._read_forever, name="agent-reader",
                                        daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        self._sock, self._leftover = open_stream(self.host, self.port, self._token, self._tls)
        self._started_at = time.monotonic()
        self._send({"t": "config", "caches_limit": self._caches_limit})
        for name in sorted(self._watched):
            self._send({"t": "watch", "name": name, "on": True})

    def _read_forever(self) -> None:
        backoff = 0
        while True:
            reason = self._read_until_gone()
            if self._stopping or self._mode != "live":
                self._done.set()
                return
            while not self._stopping:
                self._notice = (f"lost the agent at {self.where} ({reason}) at "
                                f"{time.strftime('%H:%M:%S')}; reconnecting")
                time.sleep(RESTART_BACKOFF_S[backoff])
                backoff = min(backoff + 1, len(RESTART_BACKOFF_S) - 1)
                try:
                    self._spawn()
                except ConnectError as exc:
                    reason = str(exc)
                    continue
                self.restarts += 1
                with self._lock:
                    self._history.clear()
                    self._details.clear()
                    self._version += 1
                backoff = 0
                break
            if self._stopping:
                return

    def _read_until_gone(self) -> str:
        sock = self._sock
        assert sock is not None
        reader = FrameReader(CODEC)
        data, self._leftover = self._leftover, b""
        reason = "it closed the connection"
        while True:
            try:
                for message in reader.feed(data):
                    self._handle(message)
            except (ProtocolError, KeyError, TypeError, ValueError) as exc:
                reason = f"it sent a message this cachetop does not understand: {exc}"
                break
            try:
                data = sock.recv(1 << 20)
            except OSError as exc:
                reason = str(exc.strerror or exc)
                break
            if not data:
                break
        with contextlib.suppress(OSError):
            sock.close()
        return reason

    def _handle(self, message: Mapping[str, Any]) -> None:
        kind = message["t"]
        if kind == "hello":
            self._adopt(message.get("agent") or {})
        elif kind == "refused":
            self._notice = f"the agent refused: {message.get('reason', '')}"
            return
        super()._handle(message)
        if kind == "snap" and self._notice and not self._notice.startswith("the agent refused"):
            self._notice = None  # figures again: the agent is back
        if kind == "snap" and self._mode == "once" and self._settled():
            self._done.set()

    def _adopt(self, agent: Mapping[str, Any]) -> None:
        """The agent's targets, read-only here; figures kept for the names it still has."""
        targets = [Target(name=str(t["name"]), kind=str(t["kind"]),
                          address=str(t["address"]), group=str(t.get("group", "")),
                          read_only=True)
                   for t in agent.get("targets", [])]
        now = time.time()
        with self._lock:
            old = {f.name: f for f in self._figures}
            self._targets = targets
            self._by_name = {t.name: t for t in targets}
            self._figures = [old.get(t.name) or pending_figures(t, now) for t in targets]
            self._version += 1
        self.agent_actions = bool(agent.get("actions"))

    def _settled(self) -> bool:
        """--once: every target has been polled, and every live one has an interval's rates."""
        with self._lock:
            figures = list(self._figures)
        return all(f.status != "pending" and (not f.live or f.interval_s is not None)
                   for f in figures)
