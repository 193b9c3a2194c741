"""Provides Conn, one non-blocking connection of the event-loop poller, and the operations a
poll script yields to the loop (Connect, Request) with the Reply it gets back.

A reply's arrival time is the kernel's receive timestamp of its last segment (`SO_TIMESTAMPNS`),
taken when the packet reached this host, not when the loop got round to reading it: a busy
loop or a UI rendering in the same process can delay the read, never the figure (issue 7,
engine.md). The send time is read just before `send()`, on the same clock (CLOCK_REALTIME).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cachetop.collectors.base import Target
from cachetop.collectors.tls import TlsError, client_context

# Linux's SO_TIMESTAMPNS (the 64-bit timespec form on 64-bit kernels); Python 3.11 lacks it.
SO_TIMESTAMPNS = int(getattr(socket, "SO_TIMESTAMPNS", 35))
_TIMESPEC = struct.Struct("@qq")
_ANC_BUF = socket.CMSG_SPACE(_TIMESPEC.size)
READ_CHUNK = 256 * 1024


class Framing(Protocol):
    """Cuts one reply out of a byte stream. `feed` returns INCOMPLETE until the reply is whole,
    then the reply's value; it raises on a protocol error or a reply over its cap."""

    def feed(self, data: bytes) -> Any: ...

    def eof(self) -> Any:
        """The connection closed: the value of a reply delimited by the close, or raise."""
        ...


class _Incomplete:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INCOMPLETE"


INCOMPLETE: Any = _Incomplete()


# Made and dropped several times per poll on the loop's thread, never shared: plain slots
# classes (a frozen dataclass's __init__ costs an object.__setattr__ per field).
@dataclass(slots=True)
class Connect:
    """Open the connection (TCP or unix socket; TLS handshake when the conn has a context)."""

    conn: Conn


@dataclass(slots=True)
class Request:
    """Send `data` on `conn` and wait for one reply cut by `framing`. Empty `data` reads the
    next reply of commands sent together before (a pipeline)."""

    conn: Conn
    data: bytes
    framing: Framing


@dataclass(slots=True)
class Reply:
    """A reply and its timing: `sent_ns`/`arrived_ns` are CLOCK_REALTIME nanoseconds."""

    value: Any
    sent_ns: int
    arrived_ns: int

    @property
    def rtt_s(self) -> float:
        return max(0, self.arrived_ns - self.sent_ns) / 1e9

    @property
    def arrived_monotonic(self) -> float:
        """The arrival on the monotonic clock, for rates: Δt between two replies' arrivals."""
        return time.monotonic() - max(0, time.time_ns() - self.arrived_ns) / 1e9


Address = tuple[str, int] | str  # (host, port) for TCP, a path for a unix socket


class Conn:
    """One connection: a non-blocking socket, optional TLS through memory BIOs (so every raw
    read keeps its kernel timestamp), an output buffer, and the framing of the awaited reply.

    Owned by one collector; the loop drives it. `phase` is "closed", "resolving",
    "connecting", "handshake" or "open".
    """

    __slots__ = ("address", "tls_context", "server_hostname", "sock", "fd", "phase", "out",
                 "framing", "sent_ns", "arrived_ns", "_tls", "_in_bio", "_out_bio", "job",
                 "resolved", "tls_context_factory", "on_close", "mask", "replied")

    def __init__(self, address: Address,
                 tls_context_factory: Callable[[], ssl.SSLContext] | None = None,
                 server_hostname: str | None = None) -> None:
        self.address = address
        self.tls_context_factory = tls_context_factory
        self.server_hostname = server_hostname
        self.sock: socket.socket | None = None
        self.fd = -1
        self.phase = "closed"
        self.out = bytearray()
        self.framing: Framing | None = None
        self.sent_ns = 0
        self.arrived_ns = 0
        self.job: Any = None  # the loop's job using this conn, None when idle
        self.resolved: tuple[Any, ...] | None = None  # (family, sockaddr) once resolved
        self.on_close: Callable[[Conn], None] | None = None  # set by the loop that drives it
        self.mask = 0  # epoll events the loop registered for this conn
        self.replied = False  # a reply was read on this connection (not just a handshake)
        self._tls: ssl.SSLObject | None = None
        self._in_bio: ssl.MemoryBIO | None = None
        self._out_bio: ssl.MemoryBIO | None = None

    @property
    def is_open(self) -> bool:
        return self.phase == "open"

    # -- connecting -------------------------------------------------------------------------

    def start_connect(self, family: int, sockaddr: Any) -> bool:
        """Begin a non-blocking connect; True when it completed at once (unix sockets)."""
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            # Without kernel timestamps, arrival is read at recv time instead.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            code = sock.connect_ex(sockaddr)
        except BaseException:
            sock.close()
            raise
        self.sock, self.fd = sock, sock.fileno()
        if code == 0:
            self.phase = "connecting"
            return True
        if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            self.phase = "connecting"
            return False
        self.close()
        raise OSError(code, _strerror(code))

    def finish_connect(self) -> None:
        """The socket became writable: raise if the connect failed, else set up TLS."""
        assert self.sock is not None
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, _strerror(code))
        if self.tls_context_factory is None:
            self.phase = "open"
            return
        context = self.tls_context_factory()
        self._in_bio, self._out_bio = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in_bio, self._out_bio,
                                     server_hostname=self.server_hostname)
        self.phase = "handshake"

    def handshake(self) -> bool:
        """Advance the TLS handshake; True once it is done. Raises ssl errors as they come."""
        assert self._tls is not None
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_tls()
            return False
        self._flush_tls()
        self.phase = "open"
        return True

    # -- sending ----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue `data` and write what the socket takes now; the rest waits for writability."""
        if self._tls is not None:
            self._tls.write(data)
            self._flush_tls()
        elif not self.out:
            # The common case, a small request on an idle socket: one send, no buffer copy.
            assert self.sock is not None
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent < len(data):
                self.out += data[sent:]
            return
        else:
            self.out += data
        self.write_pending()

    def write_pending(self) -> None:
        assert self.sock is not None
        if not self.out:
            return
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._raise_tls_reason(exc)
            raise
        del self.out[:sent]

    def _flush_tls(self) -> None:
        assert self._out_bio is not None
        pending = self._out_bio.read()
        if pending:
            self.out += pending

    # -- receiving --------------------------------------------------------------------------

    def receive(self) -> bytes | None:
        """Read what has arrived: plaintext bytes (possibly empty while a TLS record is
        incomplete), or None at end of stream. Records the kernel's arrival time."""
        assert self.sock is not None
        try:
            data, ancdata, _, _ = self.sock.recvmsg(READ_CHUNK, _ANC_BUF)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            self._raise_tls_reason(exc)
            raise
        arrived = 0
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and \
                    len(payload) >= _TIMESPEC.size:
                seconds, nanos = _TIMESPEC.unpack_from(payload)
                arrived = seconds * 1_000_000_000 + nanos
        self.arrived_ns = arrived or time.time_ns()
        if self._tls is None:
            return data if data else None
        assert self._in_bio is not None
        if data:
            self._in_bio.write(data)
        else:
            self._in_bio.write_eof()
        if self.phase == "handshake":
            return b""
        plain = bytearray()
        while True:
            try:
                chunk = self._tls.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return bytes(plain) if plain else None
            if not chunk:
                return bytes(plain) if plain else None
            plain += chunk
        self._flush_tls()  # TLS 1.3 may answer (key updates, session tickets need nothing)
        if not data and not plain:
            return None
        return bytes(plain)

    def _raise_tls_reason(self, exc: OSError) -> None:
        """Say why a TLS connection failed where the socket error alone would not: an alert
        already in the BIO, or a reset before any reply. A TLS 1.3 server checks the client's
        certificate after the client considers the handshake done, and drops the connection
        at its first request."""
        if self._tls is None:
            return
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
            self._tls.read(READ_CHUNK)
        if not self.replied:
            raise TlsError("the server closed the TLS connection after the handshake (does it "
                           "require a client certificate? set tls_cert_file and tls_key_file)"
                           ) from exc

    def close(self) -> None:
        if self.sock is not None:
            if self.on_close is not None:
                self.on_close(self)  # the loop forgets the fd before the number can be reused
            self.sock.close()
        self.sock, self.fd, self.phase, self.replied = None, -1, "closed", False
        self.out.clear()
        self.framing = None
        self._tls = self._in_bio = self._out_bio = None


def _strerror(code: int) -> str:
    try:
        import os

        return os.strerror(code)
    except ValueError:
        return f"error {code}"


def is_ip_literal(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return True
    return False


def target_conn(target: Target, node: tuple[str, int] | None = None) -> Conn:
    """A connection to `target` (or to `node`, one of its topology's nodes) with the target's
    TLS options: the server name checked is the options' own, else the host connected to."""
    tls = target.tls
    address: Address = node or target.socket_path or (target.host or "", target.port or 0)
    if tls is None:
        return Conn(address)
    return Conn(address, lambda: client_context(tls),
                tls.server_name or (node[0] if node else target.host))
