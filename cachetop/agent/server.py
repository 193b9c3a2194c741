"""Provides AgentServer: the agent's one HTTP port (`/metrics`, and the snapshot stream).

The routes are fixed: nothing in a request names a target or an address to connect to (an
exporter that polls what a request names leaks its credentials to whoever asks; see
redis_exporter #1104). A bearer token, when the agent has one, is checked before anything is
read or sent, in constant time. TLS handshakes happen on the connection's own thread, so a slow
or hostile client never holds the accepting thread.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cachetop.agent.exposition import CONTENT_TYPE, FleetExposition

log = logging.getLogger("cachetop.agent")

REQUEST_TIMEOUT_S = 30.0
INDEX = (b"cachetop agent\n\nGET /metrics  Prometheus text exposition of every target\n"
         b"GET /stream   the snapshot stream (cachetop --connect)\n")

StreamHandler = Callable[[socket.socket, Any], None]


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[v6]:PORT` or `:PORT` (loopback); ValueError with the reason."""
    host, colon, port_text = text.rpartition(":")
    if not colon:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9470)")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r}: the port is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: the port must be 0..65535")
    return host or "127.0.0.1", port


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (a name is resolved)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback
                               for info in infos)


def bearer_ok(header: str | None, token: bytes | None) -> bool:
    """The request's Authorization header carries `token` (always true without a token)."""
    if token is None:
        return True
    given = (header or "").encode("utf-8", "surrogateescape")
    # compare_digest takes as long for a wrong token of any length as for a right one of
    # the same length: nothing to learn from timing but the length.
    return hmac.compare_digest(given, b"Bearer " + token)


class _Handler(BaseHTTPRequestHandler):
    server: AgentServer
    timeout = REQUEST_TIMEOUT_S
    protocol_version = "HTTP/1.1"
    server_version = "cachetop-agent"
    sys_version = ""

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not bearer_ok(self.headers.get("Authorization"), self.server.token):
            self._reply(401, b"a bearer token is required (Authorization: Bearer ...)\n",
                        extra={"WWW-Authenticate": 'Bearer realm="cachetop"'})
            return
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, self.server.exposition.render(), CONTENT_TYPE)
        elif path == "/":
            self._reply(200, INDEX)
        elif path == "/stream" and self.server.stream is not None:
            if self.headers.get("Upgrade", "").lower() != "cachetop-stream":
                self._reply(426, b"the stream needs Upgrade: cachetop-stream\n",
                            extra={"Upgrade": "cachetop-stream"})
                return
            self.send_response(101)
            self.send_header("Upgrade", "cachetop-stream")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            self.server.stream(self.connection, self.rfile)
        else:
            self._reply(404, b"not found: the routes are / /metrics /stream\n")

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply(405, b"")

    def _reply(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
               extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        log.debug("%s %s", self.address_string(), format % args)


class AgentServer(ThreadingHTTPServer):
    """The HTTP server: one thread per connection, daemon threads (a stuck reader never holds
    the agent's exit)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, exposition: FleetExposition, *,
                 token: bytes | None = None, tls: ssl.SSLContext | None = None,
                 stream: StreamHandler | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.exposition = exposition
        self.token = token
        self.tls = tls
        self.stream = stream
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line, no traceback on stderr: a client that hung up or spoke no TLS is the
        client's trouble."""
        import sys

        log.info("connection from %s ended: %s", client_address[0], sys.exc_info()[1])


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
