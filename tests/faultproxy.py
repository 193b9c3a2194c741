"""Provides FaultProxy: a loopback TCP proxy in front of a real server that injects network faults.

Faults a real redis-server or memcached cannot produce on demand (reliability.md section 6.2):
a blackholed port, connections reset mid-stream, latency, rewritten replies (DataDog's
`redisdb/tests/proxy/inject.go` re-frames INFO the same way) and canned error replies. Toggles
take effect at once, from any thread, while clients are connected. Debian has no toxiproxy, and
a Python proxy the test starts itself leaves nothing behind: `close()` joins every thread and
closes every socket it opened.

Each accepted connection gets an upstream connection and two pump threads (one per direction).
A pump owns nothing: the last of the two to finish closes both sockets, so no thread ever
touches a file descriptor another thread has closed (and the kernel may have reused).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

CHUNK = 64 * 1024
Rewrite = Callable[[bytes], bytes | None]
Framer = Callable[[bytes], int | None]

_LINE_TYPES = frozenset(b"+-:_#,(")
_BULK_TYPES = frozenset(b"$=!")
_ARRAY_TYPES = frozenset(b"*~>")
_MAP_TYPES = frozenset(b"%|")


def resp_frame_end(buf: bytes, pos: int = 0) -> int | None:
    """End offset of the complete RESP2/RESP3 value starting at `pos`, None if incomplete.

    Raises:
        ValueError: the bytes are not RESP (the caller then forwards them untouched).
    """
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None
    kind, head, nxt = buf[pos], buf[pos + 1:eol], eol + 2
    if kind in _LINE_TYPES:
        return nxt
    if kind not in _BULK_TYPES | _ARRAY_TYPES | _MAP_TYPES:
        raise ValueError(f"not RESP: type byte {kind!r}")
    size = int(head)
    if kind in _BULK_TYPES:
        end = nxt + size + 2
        return nxt if size < 0 else (end if len(buf) >= end else None)
    count = size * 2 if kind in _MAP_TYPES else size
    count += 1 if kind == ord("|") else 0  # an attribute map precedes the value it annotates
    for _ in range(max(0, count)):
        end_or_none = resp_frame_end(buf, nxt)
        if end_or_none is None:
            return None
        nxt = end_or_none
    return nxt


def info_rewriter(edit: Callable[[bytes], bytes]) -> Rewrite:
    """A rewrite_reply function that applies `edit` to the body of every INFO reply (a bulk or
    verbatim string holding `redis_version:`) and re-frames its length; other replies pass."""

    def rewrite(reply: bytes) -> bytes:
        if reply[:1] not in (b"$", b"=") or b"redis_version:" not in reply:
            return reply
        body = reply[reply.index(b"\r\n") + 2:-2]
        prefix = b""
        if reply[:1] == b"=":  # RESP3 verbatim string: "txt:" then the text
            prefix, body = body[:4], body[4:]
        new = prefix + edit(body)
        return reply[:1] + str(len(new)).encode() + b"\r\n" + new + b"\r\n"

    return rewrite


class _Link:
    """One proxied connection: the client's socket, the upstream's, and their two pumps."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.send_lock = threading.Lock()  # the client socket has two writers (reply, inject)
        self.dead = threading.Event()
        self.threads: list[threading.Thread] = []
        self._running = 2
        self._lock = threading.Lock()

    def abort(self) -> None:
        """Reset both sides now: SO_LINGER 0 makes the final close send RST, and SHUT_RD wakes
        a pump blocked in recv (closing a socket does not) so it can do that close."""
        if self.dead.is_set():
            return
        self.dead.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)

    def pump_done(self) -> None:
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.abort()
            self.client.close()
            self.upstream.close()


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `upstream_host`:`upstream_port`, with fault toggles.

    Counters: `accepted` (client connections accepted so far, i.e. reconnects) and
    `open_connections()`.
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)  # the accept loop notices close() within this
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._closed = threading.Event()
        self.heal()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}",
                                          daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- toggles ----------------------------------------------------------------------------

    def heal(self) -> None:
        """Forward byte for byte again: every toggle off (open connections stay open)."""
        with self._lock:
            self._blackholed = False
            self._latency_s = 0.0
            self._reset_budget: int | None = None
            self._rewrite: Rewrite | None = None
            self._framer: Framer | None = None
            self._injections: list[bytes] = []

    def blackhole(self) -> None:
        """Accept connections and read requests, but forward nothing either way."""
        with self._lock:
            self._blackholed = True

    def latency(self, ms: float) -> None:
        """Hold every server->client chunk `ms` before forwarding it (+ms per round trip)."""
        with self._lock:
            self._latency_s = ms / 1000

    def reset_after(self, n_bytes: int) -> None:
        """Forward `n_bytes` more server->client bytes (over all connections), then reset the
        connection that reached the budget, both sides. One shot."""
        with self._lock:
            self._reset_budget = n_bytes

    def rewrite_reply(self, fn: Rewrite | None, framer: Framer | None = resp_frame_end) -> None:
        """Pass each complete server->client reply (as cut by `framer`; with None, each chunk)
        through `fn`; forward what it returns, or reset the connection if it returns None."""
        with self._lock:
            self._rewrite, self._framer = fn, (framer if fn is not None else None)

    def inject(self, data: bytes, times: int = 1) -> None:
        """Answer the next `times` requests (one read from a client each) with `data` instead
        of forwarding them: the server never sees those requests."""
        with self._lock:
            self._injections += [data] * times

    def cut(self) -> None:
        """Reset every open connection now, both sides (RST to the client and the server)."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.abort()
        for link in links:
            self._join(link)

    def open_connections(self) -> int:
        with self._lock:
            return sum(not link.dead.is_set() for link in self._links)

    def close(self) -> None:
        """Stop accepting, reset every connection, join every thread, close every socket."""
        self._closed.set()
        self._acceptor.join(5)
        self._listener.close()
        self.cut()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _join(link: _Link) -> None:
        for thread in link.threads:
            if thread is not threading.current_thread():
                thread.join(5)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._open_link(client)

    def _open_link(self, client: socket.socket) -> None:
        client.settimeout(None)
        try:
            upstream = socket.create_connection(self.upstream, timeout=2)
        except OSError:  # the server is down: the client sees a reset, as without a proxy
            with contextlib.suppress(OSError):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream)
        link.threads = [threading.Thread(target=self._pump, args=(link, up), daemon=True,
                                         name=f"faultproxy-{self.port}-{'up' if up else 'down'}")
                        for up in (True, False)]
        with self._lock:  # a cut() sees the link with its pumps started, or not at all
            self.accepted += 1
            # Forget finished links only: close() must still join a dying link's threads.
            self._links = [lk for lk in self._links
                           if any(t.is_alive() for t in lk.threads)] + [link]
            for thread in link.threads:
                thread.start()

    def _pump(self, link: _Link, up: bool) -> None:
        source = link.client if up else link.upstream
        buf = b""
        try:
            while not link.dead.is_set():
                chunk = source.recv(CHUNK)
                if not chunk or link.dead.is_set():
                    break
                if up:
                    self._forward_request(link, chunk)
                else:
                    buf = self._forward_reply(link, buf + chunk)
        except OSError:
            pass
        finally:
            link.abort()  # one side ended: end the other too, as a reset
            link.pump_done()

    def _forward_request(self, link: _Link, chunk: bytes) -> None:
        with self._lock:
            blackholed = self._blackholed
            injected = self._injections.pop(0) if self._injections and not blackholed else None
        if blackholed or link.dead.is_set():
            return
        if injected is not None:
            with link.send_lock:
                link.client.sendall(injected)
            return
        link.upstream.sendall(chunk)

    def _forward_reply(self, link: _Link, buf: bytes) -> bytes:
        """Forward what of `buf` is ready; returns the bytes held back (an incomplete reply)."""
        with self._lock:
            blackholed, latency_s = self._blackholed, self._latency_s
            rewrite, framer = self._rewrite, self._framer
        if blackholed:
            return b""
        out, rest = buf, b""
        if rewrite is not None:
            out, rest = self._rewritten(link, buf, rewrite, framer)
        if latency_s and link.dead.wait(latency_s):
            return b""  # cut while held: the reply is lost with the connection
        self._send_reply(link, out)
        return rest

    @staticmethod
    def _rewritten(link: _Link, buf: bytes, rewrite: Rewrite,
                   framer: Framer | None) -> tuple[bytes, bytes]:
        if framer is None:
            replaced = rewrite(buf)
            if replaced is None:
                link.abort()
            return replaced or b"", b""
        out: list[bytes] = []
        while buf:
            try:
                end = framer(buf)
            except ValueError:
                end = len(buf)
            if end is None:
                break
            replaced = rewrite(buf[:end])
            buf = buf[end:]
            if replaced is None:
                link.abort()
                return b"".join(out), b""
            out.append(replaced)
        return b"".join(out), buf

    def _send_reply(self, link: _Link, data: bytes) -> None:
        if link.dead.is_set():
            return
        with self._lock:
            budget = self._reset_budget
            if budget is not None:
                self._reset_budget = max(0, budget - len(data))
        if budget is not None and len(data) >= budget:
            with link.send_lock:
                link.client.sendall(data[:budget])
            with self._lock:
                self._reset_budget = None
            link.abort()
            return
        if data:
            with link.send_lock:
                link.client.sendall(data)
