"""Provides the two memcached text-protocol exchanges pymemcache gets wrong for a poller.

`raw_command(b"stats", b"END\\r\\n")` waits for END even when the server answers with one error
line instead (an auth-required server says `CLIENT_ERROR unauthenticated`), so a poll looked like
a hang and ended as a timeout. And pymemcache has no ASCII authentication (memcached -Y): the
protocol's "fake set" of `username password` (protocol.txt), re-sent on every new socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from cachetop.collectors.base import CollectError, Target

ERROR_PREFIXES = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")
MAX_REPLY_BYTES = 4 * 1024 * 1024  # `stats` is ~3 KB; anything near this is not memcached
_AUTH_KEY = b"cachetop-auth"


class ReplyError(Exception):
    """The server answered with an error line; `line` is that line, decoded and cut short."""

    def __init__(self, line: bytes) -> None:
        self.line = line[:200].decode("utf-8", "backslashreplace")
        super().__init__(self.line)


def request(sock: socket.socket, command: bytes, end: bytes,
            time_left: Callable[[], float]) -> bytes:
    """Send `command` and read the reply up to `end`, or up to the error line replacing it.

    `time_left` is asked before every read, so the whole exchange fits the poll's deadline.
    """
    sock.settimeout(time_left())
    sock.sendall(command)
    buf = bytearray()
    while True:
        sock.settimeout(time_left())
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk
        if buf.startswith(ERROR_PREFIXES) and b"\r\n" in buf:
            raise ReplyError(bytes(buf[: buf.index(b"\r\n")]))
        if buf.endswith(end):
            return bytes(buf)
        if len(buf) > MAX_REPLY_BYTES:
            raise CollectError("too-large", f"reply over {MAX_REPLY_BYTES // 1024 // 1024} MiB")


def auth_request(target: Target) -> bytes:
    """The ASCII-auth "set" carrying `username password` (memcached >= 1.5.15 with -Y)."""
    if target.password is None:
        raise ValueError("no password to authenticate with")
    payload = f"{target.username or ''} {target.password.reveal()}".encode()
    return b"set %s 0 0 %d\r\n%s\r\n" % (_AUTH_KEY, len(payload), payload)


def authenticate(sock: socket.socket, target: Target, time_left: Callable[[], float]) -> None:
    """Authenticate a new socket; a refusal is `auth-failed` with the server's words only."""
    try:
        reply = request(sock, auth_request(target), b"\r\n", time_left)
    except ReplyError as exc:
        raise CollectError("auth-failed", f"memcached refused the credentials: {exc.line}") \
            from None
    if reply != b"STORED\r\n":
        raise CollectError("bad-data", "memcached answered the authentication with "
                                       f"{reply[:60].decode('ascii', 'backslashreplace')!r}")


def error_status(exc: ReplyError) -> CollectError:
    """An error line in place of a reply, as a status: auth first, else the server's words."""
    if "unauthenticated" in exc.line.lower():
        return CollectError("auth-failed", "memcached requires authentication (-Y): give the "
                                           "target a username and password")
    if "authentication" in exc.line.lower():
        return CollectError("auth-failed", exc.line)
    return CollectError("bad-data", f"memcached answered {exc.line}")
