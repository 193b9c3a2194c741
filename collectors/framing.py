"""Provides the framings the poll loop cuts replies with: RESP (hiredis's C reader), memcached's
text lines, and one bounded line. Each caps the bytes one reply may take: a reply from a port
that is not what the URL said must not grow without bound in memory."""

from __future__ import annotations

from typing import Any

import hiredis

from cachetop.collectors.base import CollectError
from cachetop.collectors.memcached_wire import ERROR_PREFIXES, MAX_REPLY_BYTES, ReplyError
from cachetop.collectors.wire import INCOMPLETE

MAX_RESP_REPLY_BYTES = 64 * 1024 * 1024


class RespError(Exception):
    """An error reply (`-ERR ...`, `-NOAUTH ...`): the server's words, first line only."""


class RespProtocolError(Exception):
    """Bytes that are not RESP (a memcached or HTTP port behind a redis:// URL)."""


def foreign_protocol(first: bytes) -> str | None:
    """What a reply's first bytes say the server is, when it is not what the URL said."""
    if first.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR", b"VERSION ", b"STAT ")):
        return "memcached"
    if first.startswith(b"HTTP/"):
        return "an HTTP server"
    if first.startswith((b"-ERR", b"-NOAUTH", b"-WRONGPASS", b"+PONG", b"$", b"*")):
        return "Redis"
    return None


def pack_command(*args: str | bytes | int) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespFraming:
    """One RESP reply per request, parsed by hiredis; an error reply is raised as RespError.

    One instance per connection: hiredis keeps a partial reply between reads.
    """

    __slots__ = ("_reader", "_fed", "_first")

    def __init__(self) -> None:
        self._reader = hiredis.Reader(protocolError=RespProtocolError, replyError=RespError)
        self._fed = 0
        self._first = b""

    def feed(self, data: bytes) -> Any:
        if not self._fed:
            self._first = data[:16]
        self._fed += len(data)
        if self._fed > MAX_RESP_REPLY_BYTES:
            raise CollectError("too-large", f"reply over {MAX_RESP_REPLY_BYTES >> 20} MiB")
        self._reader.feed(data)
        try:
            reply = self._reader.gets()
        except RespProtocolError:
            other = foreign_protocol(self._first)
            if other is not None and other != "Redis":
                scheme = "memcached://" if other == "memcached" else "http(s)://"
                raise CollectError("bad-data", f"this looks like {other}, not Redis "
                                               f"(its answer was not RESP; use {scheme})") from None
            raise
        if reply is False:
            return INCOMPLETE
        self._fed = 0
        if isinstance(reply, RespError):
            raise reply
        return reply

    def eof(self) -> Any:
        raise ConnectionError("connection closed by the server")


class MemcachedFraming:
    """A memcached text reply ending with `end` (b"END\\r\\n" for stats, b"\\r\\n" for one
    line), or the one error line that replaces it (an auth-required server answers
    `CLIENT_ERROR unauthenticated` instead of stats)."""

    __slots__ = ("end", "_buf")

    def __init__(self, end: bytes) -> None:
        self.end = end
        self._buf = bytearray()

    def feed(self, data: bytes) -> Any:
        buf = self._buf
        buf += data
        if buf.startswith((b"-", b"+", b"H")) and b"\r\n" in buf:
            other = foreign_protocol(bytes(buf[:16]))
            if other is not None and other != "memcached":
                buf.clear()
                scheme = "redis://" if other == "Redis" else "http(s)://"
                raise CollectError("bad-data", f"this looks like {other}, not memcached (use "
                                               f"{scheme})")
        if buf.startswith(ERROR_PREFIXES) and b"\r\n" in buf:
            line = bytes(buf[: buf.index(b"\r\n")])
            buf.clear()
            raise ReplyError(line)
        if buf.endswith(self.end):
            reply = bytes(buf)
            buf.clear()
            return reply
        if len(buf) > MAX_REPLY_BYTES:
            buf.clear()
            raise CollectError("too-large", f"reply over {MAX_REPLY_BYTES // 1024 // 1024} MiB")
        return INCOMPLETE

    def eof(self) -> Any:
        raise ConnectionError("connection closed by the server")


class LineFraming:
    """One line ending in `\\n`, at most `max_bytes` (a probe of what a port speaks)."""

    __slots__ = ("max_bytes", "_buf")

    def __init__(self, max_bytes: int = 512) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> Any:
        self._buf += data
        if b"\n" in self._buf or len(self._buf) >= self.max_bytes:
            line = bytes(self._buf[: self.max_bytes])
            self._buf.clear()
            return line
        return INCOMPLETE

    def eof(self) -> Any:
        line = bytes(self._buf)
        self._buf.clear()
        return line
