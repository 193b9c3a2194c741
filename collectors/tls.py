"""Provides TLS for Redis and memcached targets: a client context, a redis-py connection, and
tls_error(), which turns any TLS failure into the `tls-error` status and one line.

redis-py and pymemcache both send the connected host as SNI and check the certificate against
it, with no way to give another name; a node reached by IP (an address from CLUSTER NODES, a
load balancer) holds a certificate issued for a name, so `TlsOptions.server_name` is applied
here, in the context itself (reliability.md section 2 row 18, section 4.2).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

from redis.connection import Connection

from cachetop.collectors.base import CollectError, TlsOptions

TLS_ERROR = "tls-error"
_CHAIN_DEPTH = 6  # exceptions followed through __cause__/__context__ (redis-py wraps once)
_MAX_CHARS = 200


class TlsError(OSError):
    """A TLS failure already explained in one line, raised where its cause is known.

    An OSError, so redis-py wraps it like any socket error and tls_error() finds it in the chain.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServerNameContext(ssl.SSLContext):
    """An SSLContext that sends `server_name` as SNI and checks the certificate against it,
    whatever host name the library passes to wrap_socket (pymemcache and redis-py pass the
    connected host)."""

    server_name: str | None = None

    def wrap_socket(  # type: ignore[override]  # same signature, narrower hostname type
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock, server_side=server_side, do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self.server_name or server_hostname, session=session)


def client_context(options: TlsOptions) -> ServerNameContext:
    """A client context for the options: the CA file (else the system's), the client
    certificate, the server name; `verify=False` turns every check off (shown as a badge).

    Raises:
        TlsError: a CA, certificate or key file cannot be read or parsed (one line, naming
            the option; paths are not secrets, key passwords are not supported).
    """
    context = ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname + CERT_REQUIRED
    context.server_name = options.server_name or None
    ca_file, cert_file, key_file = options.ca_file, options.cert_file, options.key_file
    if ca_file:
        _load(lambda: context.load_verify_locations(ca_file), "tls_ca_file", ca_file)
    else:
        context.load_default_certs()
    if key_file and not cert_file:
        raise TlsError("tls_key_file is set without tls_cert_file")
    if cert_file:
        # Never prompts: without a password callback OpenSSL reads an encrypted key's pass
        # phrase from the terminal, which would block a poll thread under the TUI.
        _load(lambda: context.load_cert_chain(cert_file, key_file, password=_no_key_password),
              "tls_cert_file/tls_key_file", cert_file, key_file)
    if not options.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _no_key_password() -> bytes:
    raise TlsError("the private key is encrypted, and key pass phrases are not supported")


def _load(load: Callable[[], None], option: str, *paths: str | None) -> None:
    """Run one load; an unreadable or unparsable file becomes one line naming the option."""
    try:
        load()
    except OSError as exc:  # ssl.SSLError is an OSError too: a file that is not PEM
        reason = _ssl_reason(exc) if isinstance(exc, ssl.SSLError) else exc.strerror or str(exc)
        shown = ", ".join(repr(path) for path in paths if path)
        # The reason first: a line is cut at _MAX_CHARS, and paths can be long.
        raise TlsError(_one_line(f"cannot load {option}: {reason}: {shown}")) from None


class TlsConnection(Connection):
    """A redis-py TCP connection wrapped in TLS by client_context(): `tls` gives the options.

    The handshake gets `socket_connect_timeout` (the poll's remaining time), not the longer
    read timeout, so a server that accepts and never answers fails within the deadline.
    """

    def __init__(self, *, tls: TlsOptions, **kwargs: Any) -> None:
        self.tls = tls
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def _connect(self) -> socket.socket:
        context = client_context(self.tls)
        sock: socket.socket = super()._connect()  # type: ignore[no-untyped-call]
        try:
            sock.settimeout(self.socket_connect_timeout)
            tls_sock = context.wrap_socket(sock, server_hostname=self.host)
            tls_sock.settimeout(self.socket_timeout)
        except BaseException:
            sock.close()
            raise
        return tls_sock


def tls_error(exc: BaseException, timeout_s: float | None = None) -> CollectError | None:
    """The CollectError for a TLS failure anywhere in `exc`'s chain, or None if it is not one.

    Status `tls-error` with one line an operator can act on; a handshake that timed out keeps
    status `timeout` (a hung server looks the same) but says it was in the handshake.
    """
    for link in _chain(exc):
        if isinstance(link, TlsError):
            return CollectError(TLS_ERROR, link.message)
        if isinstance(link, ssl.SSLError):
            return CollectError(TLS_ERROR, _one_line(describe_ssl_error(link)))
        if isinstance(link, TimeoutError) and "handshake" in str(link):
            after = f" after {timeout_s:g}s" if timeout_s is not None else ""
            return CollectError("timeout", f"timeout{after} in the TLS handshake "
                                           "(a hung server, or a port without TLS?)")
    return None


def describe_ssl_error(exc: ssl.SSLError) -> str:
    """One line for an ssl error, with the fix when the cause is a common one."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = str(exc.verify_message or _ssl_reason(exc)).rstrip(".")
        if "mismatch" in message.lower():
            wanted = message.partition("certificate is not valid for ")[2] or "the host"
            return (f"hostname mismatch: certificate is not valid for {wanted} "
                    "(set tls_server_name to a name in the certificate)")
        return f"certificate verify failed: {message}"
    reason = (exc.reason or "").upper()
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return ("the server closed the TLS connection (does it require a client certificate? "
                "set tls_cert_file and tls_key_file)")
    if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return "the server requires a client certificate (set tls_cert_file and tls_key_file)"
    if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
                  "RECORD_LAYER_FAILURE"):
        return f"TLS handshake failed: {_ssl_reason(exc)} (is this a TLS port?)"
    if "ALERT" in reason and ("CERTIFICATE" in reason or "UNKNOWN_CA" in reason):
        return f"the server rejected the client certificate: {_ssl_reason(exc)}"
    return f"TLS error: {_ssl_reason(exc)}"


def _ssl_reason(exc: OSError) -> str:
    """The readable part of an ssl error: `[SSL: X] text (_ssl.c:1006)` -> `text`."""
    text = str(exc.args[1] if len(exc.args) > 1 else exc)
    text = text.split("] ", 1)[-1]
    return text.split(" (_ssl.c:", 1)[0].strip() or type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(links) < _CHAIN_DEPTH and link not in links:
        links.append(link)
        link = link.__cause__ or link.__context__
    return links


def _one_line(text: str) -> str:
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:_MAX_CHARS]
