"""Provides the scrape of a metrics endpoint: fetch_script() for the poll loop (one bounded
HTTP(S) GET over a fresh connection, returning the decoded body) and fetch(), the same run to
completion on a private loop.

The loop's deadline bounds the connect, the TLS handshake and every read in total, so a server
that drips a byte just inside each per-read timeout cannot hold a scrape open (reliability.md
section 2 row 15); http_wire caps the body after decoding and per line.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

from cachetop.collectors.base import CollectError, Deadline, Target, TlsOptions
from cachetop.collectors.http_wire import HttpFraming, http_request, one_line
from cachetop.collectors.tls import TLS_ERROR, TlsError, client_context, tls_error
from cachetop.collectors.wire import Conn, Connect, Request

Script = Generator[Any, Any, Any]


def fetch_script(target: Target) -> Script:
    """GET `target.http_url` and return `(body text, reply)`; the connection is closed after.

    Raises (into the loop, which hands it to classify()): CollectError "down" (non-2xx),
    "auth-failed" (401/403), "too-large", "bad-data" (not an exposition); socket and TLS
    errors as they come.
    """
    url = urlsplit(target.http_url or "")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CollectError("down", f"not an http(s) URL: {url.scheme or '?'}://{url.hostname}")
    try:
        default = 443 if url.scheme == "https" else 80
        port = url.port or default
    except ValueError:
        raise CollectError("down", "invalid port in the URL") from None
    host = url.hostname
    factory = None
    server_name = None
    if url.scheme == "https":
        options = target.tls or TlsOptions()
        factory = lambda: client_context(options)  # noqa: E731 - built at connect time
        server_name = options.server_name or host
    conn = Conn((host, port), factory, server_name)
    try:
        yield Connect(conn)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        reply = yield Request(conn, http_request(target, host, port, default, path),
                              HttpFraming(target.max_body_bytes))
    finally:
        # The body is whole or refused; a fresh connection per scrape means nothing lingers
        # in CLOSE_WAIT (the soak found HTTP/1.0 responses holding theirs until gc).
        conn.close()
    return reply.value, reply


def classify(exc: BaseException, target: Target, timeout_s: float) -> CollectError:
    """Status and one-line reason for a failed scrape, never carrying the password."""
    secret = target.password.reveal() if target.password else ""
    error = _classify(exc, timeout_s)
    return CollectError(error.status, _scrub(error.message, secret))


def _classify(exc: BaseException, timeout_s: float) -> CollectError:
    if isinstance(exc, CollectError):
        return exc
    if isinstance(exc, TimeoutError):
        return CollectError("timeout", f"timeout after {timeout_s:g}s")
    if isinstance(exc, ConnectionRefusedError):
        return CollectError("down", "connection refused")
    if isinstance(exc, ssl.SSLError | TlsError):  # before OSError: TLS failures have their status
        return tls_error(exc) or CollectError(TLS_ERROR, "TLS error")
    if isinstance(exc, socket.gaierror):
        return CollectError("down", f"name resolution failed: {one_line(str(exc.strerror))}")
    if isinstance(exc, OSError) and exc.strerror:
        return CollectError("down", one_line(exc.strerror).lower())
    if isinstance(exc, ConnectionError):
        return CollectError("down", one_line(str(exc), 200))
    return CollectError("down", f"{type(exc).__name__}: {one_line(str(exc))}".rstrip(": "))


def fetch(target: Target, deadline: Deadline) -> str:
    """Blocking: one scrape within the deadline; the body text. Raises CollectError."""
    from cachetop.collectors.driver import run_blocking

    class _Fetch:
        def poll(self) -> Script:
            body, _ = yield from fetch_script(target)
            return body

        def classify(self, exc: BaseException, timeout_s: float) -> CollectError:
            return classify(exc, target, timeout_s)

        def connections(self) -> tuple[Conn, ...]:
            return ()

    return str(run_blocking(_Fetch(), deadline))  # type: ignore[arg-type]


def _scrub(message: str, secret: str) -> str:
    # Defence in depth: no path above formats the password, but no message may ever carry it.
    return message.replace(secret, "***") if secret else message
