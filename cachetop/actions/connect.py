"""Provides redis_client() and McConnection: action connections with explicit timeouts, no retries.

An action must never repeat a write behind the operator's back, nor wait forever on a hung
server: redis-py gets `retry=None` (0 retries) and socket timeouts; memcached gets a small
text-protocol client of our own, because pymemcache's raw_command waits for its end token and
only times out when a reply is an ERROR line (reliability.md section 2, row 10).
"""

from __future__ import annotations

import socket
import time
from typing import Any

import redis

from cachetop.actions.plan import ActionArgumentError, ActionError
from cachetop.actions.safety import describe_error
from cachetop.collectors import memcached_wire
from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.redis_unix import check_is_redis
from cachetop.collectors.tls import TlsConnection, client_context, tls_error

# An action's round trips are short (a SCAN page, one UNLINK batch), but a server under load
# may answer slowly: give each one at least this long, whatever the poll timeout is.
MIN_OP_TIMEOUT_S = 2.0


def op_timeout_s(target: Target) -> float:
    return max(target.timeout_s, MIN_OP_TIMEOUT_S)


def redis_client(target: Target, db: int | None = None) -> redis.Redis:
    """A single-connection redis-py client for `target` (bytes replies, RESP2, no retries)."""
    if target.kind != "redis":
        raise ActionArgumentError(f"{target.name} is a {target.kind} target, not redis")
    kwargs: dict[str, Any] = {
        "db": target.db if db is None else db,
        "username": target.username,
        "password": target.password.reveal() if target.password else None,
        "socket_timeout": op_timeout_s(target),
        "socket_connect_timeout": target.timeout_s,
        "retry": None,
        "single_connection_client": True,
        "client_name": "cachetop-action",
    }
    if target.socket_path:
        kwargs["unix_socket_path"] = target.socket_path
        if target.password is not None:
            try:
                check_is_redis(target.socket_path, target.timeout_s)
            except (CollectError, OSError) as exc:
                raise ActionError(f"{target.name}: {exc}") from None
    else:
        kwargs.update(host=target.host, port=target.port, socket_keepalive=True)
    try:
        if target.tls is not None:
            return _tls_redis(target, kwargs)
        return redis.Redis(**kwargs)  # single_connection_client connects here
    except (redis.RedisError, OSError) as exc:
        raise ActionError(f"{target.name}: {_tls_or_described(exc)}") from None


def _tls_redis(target: Target, kwargs: dict[str, Any]) -> redis.Redis:
    """redis.Redis over cachetop.collectors.tls.TlsConnection: redis-py's own SSLConnection
    cannot send another name than the host (tls_server_name), so the pool is built here."""
    assert target.tls is not None
    single = kwargs.pop("single_connection_client")
    pool = redis.ConnectionPool(connection_class=TlsConnection, tls=target.tls, **kwargs)
    try:
        client = redis.Redis(connection_pool=pool, single_connection_client=single)
    except BaseException:
        pool.disconnect()
        raise
    client.auto_close_connection_pool = True  # the pool is this client's alone: close() ends it
    return client


def _tls_or_described(exc: BaseException) -> str:
    """describe_error(), except that a TLS failure gets tls_error()'s line (with its fix)."""
    tls = tls_error(exc)
    return f"TLS: {tls.message}" if tls is not None else describe_error(exc)


class McError(ActionError):
    """A memcached reply was an error line (ERROR, CLIENT_ERROR, SERVER_ERROR) or malformed."""


class McConnection:
    """A blocking memcached text-protocol connection; every read is bounded by a deadline."""

    def __init__(self, target: Target) -> None:
        if target.kind != "memcached":
            raise ActionArgumentError(f"{target.name} is a {target.kind} target, not memcached")
        self.timeout_s = op_timeout_s(target)
        if target.socket_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(target.timeout_s)
            sock.connect(target.socket_path)
        else:
            sock = socket.create_connection((target.host, target.port), timeout=target.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.tls is not None:
            sock = _wrap_tls(sock, target)  # closes sock on failure
        self._sock = sock
        self._buf = bytearray()
        if target.password is not None:
            try:
                self.send(memcached_wire.auth_request(target))
                if check_reply(self.read_line()) != b"STORED":
                    raise McError("memcached did not accept the authentication")
            except BaseException:
                sock.close()
                raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> McConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self._sock.settimeout(self.timeout_s)
        self._sock.sendall(data)

    def read_line(self, deadline: float | None = None) -> bytes:
        """One reply line without its line ending ('\\r\\n', or '\\n' as metadump uses)."""
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout_s
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end]).removesuffix(b"\r")
                del self._buf[: end + 1]
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("memcached did not answer in time")
            self._sock.settimeout(left)
            chunk = self._sock.recv(256 * 1024)
            if not chunk:
                raise ConnectionError("memcached closed the connection")
            self._buf += chunk

    def command(self, line: bytes) -> bytes:
        """Send one command line and return its one-line reply; error lines raise McError."""
        self.send(line + b"\r\n")
        return check_reply(self.read_line())

    def stats(self) -> dict[str, str]:
        self.send(b"stats\r\n")
        out: dict[str, str] = {}
        while (line := check_reply(self.read_line())) != b"END":
            parts = line.split(b" ", 2)
            if len(parts) == 3 and parts[0] == b"STAT":
                out[parts[1].decode("ascii", "replace")] = parts[2].decode("ascii", "replace")
        return out


def check_reply(line: bytes) -> bytes:
    if line == b"ERROR" or line.startswith((b"ERROR ", b"CLIENT_ERROR", b"SERVER_ERROR")):
        raise McError(line.decode("utf-8", "backslashreplace")[:200])
    return line


def _wrap_tls(sock: socket.socket, target: Target) -> socket.socket:
    """The TLS socket (SNI and name check use tls_server_name when set), or ActionError with
    tls_error()'s one line; the plain socket is closed either way on failure."""
    assert target.tls is not None
    try:
        return client_context(target.tls).wrap_socket(sock, server_hostname=target.host)
    except OSError as exc:
        sock.close()
        raise ActionError(f"{target.name}: {_tls_or_described(exc)}") from None


def valid_memcached_key(key: bytes) -> str | None:
    """Why `key` cannot be sent in the text protocol (None if it can): a space or control byte
    would end the key early, or inject a command after it."""
    if not key:
        return "empty key"
    if len(key) > 250:
        return "memcached keys are at most 250 bytes"
    if any(b <= 0x20 or b == 0x7F for b in key):
        return "memcached keys cannot contain spaces or control characters"
    return None
