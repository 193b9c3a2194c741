"""Provides HttpFraming: an incremental HTTP/1.x response reader for the poll loop, with every
cap a scrape needs, and http_request() for the GET that precedes it.

Refusals come as early as the bytes allow: a non-2xx status, a body that is not an exposition
or announces more than the cap are refused on the headers, before any body is read; the body is
capped after decoding (a gzip bomb is small on the wire) and per line (reliability.md section 2
row 15). The whole exchange shares the poll's one deadline, which the loop enforces.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

from cachetop.collectors.base import CollectError, Target
from cachetop.collectors.wire import INCOMPLETE

MAX_LINE_BYTES = 64 * 1024  # an exposition line; also an HTTP status or header line
MAX_HEADERS = 100
_ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"
_NOT_EXPOSITIONS = {
    "text/html": "text/html",
    "application/xhtml+xml": "text/html",
    "application/json": "application/json",
    "application/vnd.google.protobuf": "protobuf",
}
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def http_request(target: Target, host: str, port: int, default_port: int, path: str) -> bytes:
    """The GET for one scrape: identity encoding, basic auth when the target has credentials,
    and `Connection: close` (each scrape uses a fresh connection, as redis_exporter dials)."""
    host_header = host if port == default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
    lines = [f"GET {path} HTTP/1.1", f"Host: {host_header}", f"Accept: {_ACCEPT}",
             "Accept-Encoding: identity", "User-Agent: cachetop", "Connection: close"]
    if target.username or target.password:
        password = target.password.reveal() if target.password else ""
        token = base64.b64encode(f"{target.username or ''}:{password}".encode()).decode("ascii")
        lines.append(f"Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def one_line(text: str, max_chars: int = 80) -> str:
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:max_chars]


def too_large(max_bytes: int) -> str:
    return f"body larger than {max_bytes} bytes"


class HttpFraming:
    """Reads one response: status line, headers, then a body delimited by Content-Length,
    chunked transfer coding, or the close; returns the body decoded as UTF-8 text."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self._buf = bytearray()
        self._state = "status"
        self.status = 0
        self._headers: dict[str, str] = {}
        self._header_count = 0
        self._length: int | None = None  # Content-Length still to read
        self._chunked = False
        self._chunk_left = 0  # bytes of the current chunk still to read
        self._decoder: Any = None
        self._body = bytearray()
        self._wire = 0
        self._open_line = 0
        self._lines_done = 0

    # -- feeding ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> Any:
        self._buf += data
        while True:
            if self._state == "status":
                line = self._line()
                if line is None:
                    return INCOMPLETE
                self._status_line(line)
            elif self._state == "headers":
                line = self._line()
                if line is None:
                    return INCOMPLETE
                if line:
                    self._header_line(line)
                else:
                    self._headers_done()
            elif self._state == "body":
                return self._body_step()
            else:
                return self._result()

    def eof(self) -> Any:
        if self._state in ("status", "headers"):
            raise ConnectionError("connection closed by the server before a response")
        if self._state == "body" and self._length is None and not self._chunked:
            self._state = "done"
            return self._result()
        if self._state == "done":
            return self._result()
        raise ConnectionError("connection closed mid-body")

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\n")
        if end < 0:
            if len(self._buf) > MAX_LINE_BYTES:
                raise CollectError("too-large", "HTTP header line too long")
            return None
        if end > MAX_LINE_BYTES:
            raise CollectError("too-large", "HTTP header line too long")
        line = bytes(self._buf[:end]).rstrip(b"\r")
        del self._buf[: end + 1]
        return line

    def _status_line(self, line: bytes) -> None:
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit() \
                or len(parts[1]) != 3:
            raise CollectError("bad-data", "not an HTTP response (BadStatusLine)")
        status = int(parts[1])
        if 100 <= status < 200:
            return  # an interim response: the real one follows
        self.status = status
        self._reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        self._state = "headers"

    def _header_line(self, line: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            raise CollectError("bad-data", "not an HTTP response (HTTPException)")
        name, sep, value = line.partition(b":")
        if not sep:
            return  # a folded or garbled header: ignored, as http.client does
        self._headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")

    def _headers_done(self) -> None:
        """Refuse before reading the body: errors, redirects (not followed), non-expositions."""
        status = self.status
        if not 200 <= status < 300:
            line = f"HTTP {status} {one_line(self._reason)}".rstrip()
            if 300 <= status < 400:
                line += " (redirects are not followed)"
            raise CollectError("auth-failed" if status in (401, 403) else "down", line)
        mime = self._headers.get("content-type", "").split(";")[0].strip().lower()
        if mime in _NOT_EXPOSITIONS:
            raise CollectError("bad-data",
                               f"not a Prometheus exposition ({_NOT_EXPOSITIONS[mime]})")
        encoding = self._headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            if encoding not in _DECODERS:
                raise CollectError("bad-data", f"unsupported Content-Encoding {one_line(encoding)}")
            self._decoder = zlib.decompressobj(_DECODERS[encoding])
        self._chunked = "chunked" in self._headers.get("transfer-encoding", "").lower()
        length = self._headers.get("content-length", "").strip()
        if not self._chunked and length:
            if not length.isdigit():
                raise CollectError("bad-data", "not an HTTP response (invalid Content-Length)")
            self._length = int(length)
            if self._length > self.max_body_bytes:
                raise CollectError("too-large", too_large(self.max_body_bytes))
        self._state = "body"

    # -- body --------------------------------------------------------------------------------

    def _body_step(self) -> Any:
        if self._chunked:
            return self._chunked_step()
        data = bytes(self._buf)
        self._buf.clear()
        if self._length is not None:
            data = data[: self._length]
            self._length -= len(data)
        self._take(data)
        if self._length == 0:
            self._state = "done"
            return self._result()
        return INCOMPLETE

    def _chunked_step(self) -> Any:
        while True:
            if self._chunk_left > 0:
                if not self._buf:
                    return INCOMPLETE
                data = bytes(self._buf[: self._chunk_left])
                del self._buf[: len(data)]
                self._chunk_left -= len(data)
                self._take(data)
                if self._chunk_left == 0:
                    self._chunk_left = -2  # the CRLF after the chunk's data
                continue
            if self._chunk_left == -2:
                if len(self._buf) < 2:
                    return INCOMPLETE
                del self._buf[:2]
                self._chunk_left = 0
                continue
            if self._chunk_left == -1:  # trailers until an empty line
                line = self._line()
                if line is None:
                    return INCOMPLETE
                if not line:
                    self._state = "done"
                    return self._result()
                continue
            line = self._line()
            if line is None:
                return INCOMPLETE
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise CollectError("bad-data", "not an HTTP response (bad chunk size)") from None
            if size < 0:
                raise CollectError("bad-data", "not an HTTP response (bad chunk size)")
            self._chunk_left = size if size > 0 else -1

    def _take(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._wire += len(chunk)
        max_bytes = self.max_body_bytes
        if self._decoder is not None:
            data = self._decoder.decompress(chunk, max(max_bytes - len(self._body), 0) + 1)
        else:
            data = chunk
        if len(self._body) + len(data) > max_bytes or self._wire > max_bytes:
            raise CollectError("too-large", too_large(max_bytes))
        self._check_lines(data)
        self._body += data

    def _check_lines(self, data: bytes) -> None:
        """Enforce MAX_LINE_BYTES across chunk boundaries."""
        parts = data.split(b"\n")
        lengths = [self._open_line + len(parts[0]), *(len(p) for p in parts[1:])]
        for offset, length in enumerate(lengths):
            if length > MAX_LINE_BYTES:
                number = self._lines_done + offset + 1
                raise CollectError("too-large", f"line {number} longer than {MAX_LINE_BYTES} bytes")
        self._open_line, self._lines_done = lengths[-1], self._lines_done + len(parts) - 1

    def _result(self) -> str:
        if self._decoder is not None and not self._decoder.eof:
            raise CollectError("bad-data", "truncated compressed body")
        return self._body.decode("utf-8", errors="replace")
