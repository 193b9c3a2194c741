"""Provides fetch(): one bounded HTTP(S) GET of a metrics endpoint, returning the decoded body.

Library timeouts are per socket operation, so a server that drips a byte just inside each
timeout can hold a scrape open for minutes (reliability.md section 2 row 15). Here every raw
socket read gets only what is left of the poll's Deadline, which makes the deadline total. The
body is capped after decoding (a gzip bomb is small on the wire) and per line, before parsing.
"""

from __future__ import annotations

import base64
import functools
import http.client
import io
import socket
import ssl
import zlib
from typing import Any
from urllib.parse import urlsplit

from collectors.base import CollectError, Deadline, Target, TlsOptions
from collectors.tls import TLS_ERROR, TlsError, client_context, tls_error

MAX_LINE_BYTES = 64 * 1024
_READ_CHUNK = 64 * 1024
_ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"
_NOT_EXPOSITIONS = {
    "text/html": "text/html",
    "application/xhtml+xml": "text/html",
    "application/json": "application/json",
    "application/vnd.google.protobuf": "protobuf",
}
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def fetch(target: Target, deadline: Deadline) -> str:
    """GET `target.http_url` and return the body as text, within the deadline and the caps.

    Args:
        target: a metrics target; `http_url` carries no credentials, `username`/`password` are
            sent as HTTP basic auth, `tls` applies to https URLs.
        deadline: bounds the connect, the TLS handshake and every read, in total.

    Returns:
        The body decoded as UTF-8 (invalid bytes replaced).

    Raises:
        CollectError: "down" (refused, unreachable, non-2xx), "auth-failed" (401/403),
            "timeout", "tls-error" (any TLS failure: collectors.tls), "too-large" (body or a
            line over its cap) or "bad-data" (not an exposition). The message is one line
            and never contains the password.
    """
    secret = target.password.reveal() if target.password else ""
    try:
        return _fetch(target, deadline)
    except CollectError as exc:
        raise CollectError(exc.status, _scrub(exc.message, secret)) from None
    except TimeoutError:
        raise CollectError("timeout", f"timeout after {deadline.budget_s:g}s") from None
    except ConnectionRefusedError:
        raise CollectError("down", "connection refused") from None
    except (ssl.SSLError, TlsError) as exc:  # before OSError: TLS failures have their status
        tls = tls_error(exc) or CollectError(TLS_ERROR, "TLS error")
        raise CollectError(tls.status, _scrub(tls.message, secret)) from None
    except (OSError, http.client.HTTPException) as exc:
        status, message = _classify(exc)
        raise CollectError(status, _scrub(message, secret)) from None


def _fetch(target: Target, deadline: Deadline) -> str:
    url = urlsplit(target.http_url or "")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CollectError("down", f"not an http(s) URL: {url.scheme or '?'}://{url.hostname}")
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise CollectError("down", "invalid port in the URL") from None
    conn = _connection(url.scheme, url.hostname, port, target.tls, deadline)
    conn.response_class = functools.partial(_DeadlineResponse, deadline=deadline)  # type: ignore[assignment]
    try:
        conn.connect()
        conn.putrequest("GET", _path(url.path, url.query), skip_accept_encoding=True)
        for name, value in _headers(target).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        try:
            _check_response(response, target.max_body_bytes)
            return _read_body(response, _decoder(response), target.max_body_bytes, deadline)
        finally:
            # With HTTP/1.0 the socket belongs to the response: conn.close() alone leaves it
            # open (CLOSE_WAIT) until the response is collected.
            response.close()
    finally:
        conn.close()


def _connection(
    scheme: str, host: str, port: int, tls: TlsOptions | None, deadline: Deadline
) -> http.client.HTTPConnection:
    timeout = deadline.left_s()
    if scheme == "http":
        return http.client.HTTPConnection(host, port, timeout=timeout)
    options = tls or TlsOptions()
    return _TlsConnection(
        host,
        port,
        timeout=timeout,
        context=tls_context(options),
        server_name=options.server_name,
        deadline=deadline,
    )


def tls_context(options: TlsOptions) -> ssl.SSLContext:
    """An SSLContext for the options: CA file, client cert/key, or no verification at all; an
    unreadable file raises TlsError (status tls-error), as for Redis and memcached."""
    return client_context(options)


class _TlsConnection(http.client.HTTPSConnection):
    """HTTPS whose SNI and certificate name check may use a name other than the URL's host,
    for endpoints reached by IP; the Host header still carries the URL's host."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        context: ssl.SSLContext,
        server_name: str | None,
        deadline: Deadline,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls_context = context
        self._server_name = server_name or host
        self._deadline = deadline

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock.settimeout(self._deadline.left_s())
        self.sock = self._tls_context.wrap_socket(self.sock, server_hostname=self._server_name)


class _DeadlineReader(io.RawIOBase):
    """Wraps the socket's reader so that each raw read gets only the time left on the deadline."""

    def __init__(self, raw: Any, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__()
        self._raw, self._sock, self._deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._deadline.left_s())
        count: int | None = self._raw.readinto(buffer)
        return count

    def close(self) -> None:
        self._raw.close()  # releases the socket reference makefile() took
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """HTTPResponse reading through _DeadlineReader: status line, headers, chunk sizes and body
    all share the one deadline."""

    def __init__(self, sock: socket.socket, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        # detach(), not close(): the makefile() reader holds the reference that keeps the socket
        # open after the connection hands it over to the response.
        raw = self.fp.detach()
        self.fp = io.BufferedReader(_DeadlineReader(raw, sock, deadline))


def _path(path: str, query: str) -> str:
    return (path or "/") + (f"?{query}" if query else "")


def _headers(target: Target) -> dict[str, str]:
    headers = {"Accept": _ACCEPT, "Accept-Encoding": "identity", "User-Agent": "cachetop"}
    if target.username or target.password:
        password = target.password.reveal() if target.password else ""
        token = base64.b64encode(f"{target.username or ''}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    return headers


def _check_response(response: http.client.HTTPResponse, max_body_bytes: int) -> None:
    """Refuse before reading the body: errors, redirects (not followed), non-expositions."""
    status = response.status
    if not 200 <= status < 300:
        line = f"HTTP {status} {_one_line(response.reason)}".rstrip()
        if 300 <= status < 400:
            line += " (redirects are not followed)"
        raise CollectError("auth-failed" if status in (401, 403) else "down", line)
    mime = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if mime in _NOT_EXPOSITIONS:
        raise CollectError("bad-data", f"not a Prometheus exposition ({_NOT_EXPOSITIONS[mime]})")
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > max_body_bytes:
        raise CollectError("too-large", _too_large(max_body_bytes))


def _decoder(response: http.client.HTTPResponse) -> Any:
    """A zlib decompressor for a gzip/deflate body (sent despite Accept-Encoding: identity)."""
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding not in _DECODERS:
        raise CollectError("bad-data", f"unsupported Content-Encoding {_one_line(encoding)}")
    return zlib.decompressobj(_DECODERS[encoding])


def _read_body(
    response: http.client.HTTPResponse, decoder: Any, max_bytes: int, deadline: Deadline
) -> str:
    body = bytearray()
    wire_bytes = 0
    open_line, lines_done = 0, 0  # length of the unfinished last line; newlines seen so far
    while chunk := response.read1(_READ_CHUNK):
        deadline.left_s()
        wire_bytes += len(chunk)
        data = _decode(decoder, chunk, max_bytes - len(body)) if decoder else chunk
        if len(body) + len(data) > max_bytes or wire_bytes > max_bytes:
            raise CollectError("too-large", _too_large(max_bytes))
        open_line, lines_done = _check_lines(data, open_line, lines_done)
        body += data
    if decoder is not None and not decoder.eof:
        raise CollectError("bad-data", "truncated compressed body")
    return body.decode("utf-8", errors="replace")


def _decode(decoder: Any, chunk: bytes, room: int) -> bytes:
    """Decompress at most room + 1 bytes: one byte over is enough to know the cap is exceeded,
    and a bomb never expands past it in memory."""
    data: bytes = decoder.decompress(chunk, max(room, 0) + 1)
    return data


def _check_lines(data: bytes, open_line: int, lines_done: int) -> tuple[int, int]:
    """Enforce MAX_LINE_BYTES across chunk boundaries.

    Returns:
        The length of the line left open at the end of data, and the newlines seen so far.
    """
    parts = data.split(b"\n")
    lengths = [open_line + len(parts[0]), *(len(p) for p in parts[1:])]
    for offset, length in enumerate(lengths):
        if length > MAX_LINE_BYTES:
            number = lines_done + offset + 1
            raise CollectError("too-large", f"line {number} longer than {MAX_LINE_BYTES} bytes")
    return lengths[-1], lines_done + len(parts) - 1


def _too_large(max_bytes: int) -> str:
    return f"body larger than {max_bytes} bytes"


def _one_line(text: str, max_chars: int = 80) -> str:
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:max_chars]


def _classify(exc: BaseException) -> tuple[str, str]:
    """Status and one-line reason for a network or protocol error, without any request data."""
    if isinstance(exc, socket.gaierror):
        return "down", f"name resolution failed: {_one_line(str(exc.strerror))}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "down", "connection closed by the server before a response"
    if isinstance(exc, http.client.IncompleteRead):
        return "down", "connection closed mid-body"
    if isinstance(exc, ssl.SSLError):
        return TLS_ERROR, f"TLS error: {_one_line(exc.reason or str(exc))}"
    if isinstance(exc, http.client.LineTooLong):
        return "too-large", "HTTP header line too long"
    if isinstance(exc, http.client.HTTPException):
        # e.g. a cache port answering in its own protocol: BadStatusLine.
        return "bad-data", f"not an HTTP response ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return "down", _one_line(exc.strerror).lower()
    return "down", f"{type(exc).__name__}: {_one_line(str(exc))}".rstrip(": ")


def _scrub(message: str, secret: str) -> str:
    # Defence in depth: no path above formats the password, but no message may ever carry it.
    return message.replace(secret, "***") if secret else message
