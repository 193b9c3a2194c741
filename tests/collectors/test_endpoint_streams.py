"""A metrics endpoint that never stops sending: an endless chunked stream and a 1 GB body.

Both must end at the decoded-byte cap, fast, holding no more than about the cap in memory.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler

import pytest

from tests.collectors.test_prom_endpoint import (
    PROM_TYPE,
    RouteServer,
    collect_error,
    metrics_target,
    server,  # noqa: F401 - the fixture
)

CAP = 2 * 1024 * 1024
LINE = b'cache_hits_total{cache="a"} 1\n'


def _stream(handler: BaseHTTPRequestHandler, stopping: threading.Event, *,
            total: int | None) -> None:
    """Send exposition lines as fast as the client reads them: for ever (chunked), or
    `total` bytes announced by Content-Length."""
    handler.send_response(200)
    handler.send_header("Content-Type", PROM_TYPE)
    if total is None:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Content-Length", str(total))
    handler.end_headers()
    block = LINE * 2000
    frame = b"%x\r\n%s\r\n" % (len(block), block) if total is None else block
    sent = 0
    try:
        while not stopping.is_set() and (total is None or sent < total):
            handler.wfile.write(frame)
            sent += len(block)
    except OSError:
        return  # the client hung up: what it should do at its cap
    handler.server.sent = sent  # type: ignore[attr-defined]


@pytest.mark.parametrize("total", [None, 1024 ** 3], ids=["endless-chunked", "1GB"])
def test_unbounded_body_stops_at_the_cap(server: RouteServer, total: int | None) -> None:  # noqa: F811
    server.routes["/metrics"] = lambda h: _stream(h, server.stopping, total=total)
    tracemalloc.start()
    started = time.monotonic()
    try:
        error = collect_error(metrics_target(server.url("/metrics"), timeout_s=5.0,
                                             max_body_bytes=CAP))
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (error.status, error.message) == ("too-large", f"body larger than {CAP} bytes")
    assert elapsed < 3.0  # stopped at the cap, not at the 5 s deadline
    assert peak < 4 * CAP  # holds about the cap, never the stream
