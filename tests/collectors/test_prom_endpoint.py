"""PromEndpointCollector against a real loopback HTTP server serving hand-written fixtures.

Expected values are copied from the fixture files (or summed from them by hand in comments), never
computed by the code under test.
"""

from __future__ import annotations

import base64
import gzip
import math
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from cachetop.collectors.base import CollectError, Deadline, Target, TlsOptions
from cachetop.collectors.prom_endpoint import PromEndpointCollector
from cachetop.collectors.sample import (
    CONNECTIONS,
    EVICTIONS,
    EXPIRATIONS,
    HITS,
    INSTANCE_ID,
    KEYS,
    MAX_CONNECTIONS,
    MAX_MEMORY_BYTES,
    MISSES,
    OPS,
    SERVER_LATENCY,
    USED_MEMORY_BYTES,
    Sample,
)
from cachetop.collectors.secret import Secret
from tests.servers import MemcachedServer, free_port
from tests.wait import SLACK_S

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"
INF = math.inf

Route = Callable[[BaseHTTPRequestHandler], None]


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RouteServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append(dict(self.headers.items()))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            respond(self, b"not found\n", status=404)
        else:
            route(self)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep test output quiet."""


class RouteServer(ThreadingHTTPServer):
    """A threading HTTP server on a free loopback port; tests register a route per path."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[dict[str, str]] = []
        self.stopping = threading.Event()
        self.scheme = "http"
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.server_address[1]}{path}"

    def serve(self, path: str, body: bytes, **kwargs: object) -> str:
        self.routes[path] = lambda handler: respond(handler, body, **kwargs)  # type: ignore[arg-type]
        return self.url(path)


def respond(
    handler: BaseHTTPRequestHandler,
    body: bytes,
    *,
    status: int = 200,
    content_type: str = PROM_TYPE,
    headers: Mapping[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def server() -> Iterator[RouteServer]:
    srv = RouteServer()
    srv.start()
    yield srv
    srv.close()


def metrics_target(url: str, convention: str = "cachetop", **kwargs: object) -> Target:
    return Target(
        name="app-1", kind="metrics", address=url, http_url=url, convention=convention, **kwargs
    )  # type: ignore[arg-type]


def collect(target: Target) -> Sample:
    collector = PromEndpointCollector(target)
    try:
        return collector.collect(Deadline(target.timeout_s))
    finally:
        collector.close()


def collect_error(target: Target) -> CollectError:
    with pytest.raises(CollectError) as caught:
        collect(target)
    return caught.value


# --- conventions --------------------------------------------------------------------------


def test_cachetop_convention_children_and_parent(server: RouteServer) -> None:
    sample = collect(metrics_target(server.serve("/m", fixture_bytes("metrics_cachetop.prom"))))

    assert sample.kind == "metrics"
    assert sample.target == "app-1"
    assert set(sample.children) == {"sessions", "pages"}
    sessions, pages = sample.children["sessions"], sample.children["pages"]
    assert sessions.counters == {
        HITS: 9000,
        MISSES: 1000,
        OPS: 10000,
        EVICTIONS: 12,
        EXPIRATIONS: 40,
    }
    assert sessions.gauges == {USED_MEMORY_BYTES: 1048576, MAX_MEMORY_BYTES: 4194304, KEYS: 2500}
    assert pages.counters == {HITS: 300, MISSES: 700, OPS: 1000, EVICTIONS: 5, EXPIRATIONS: 2}
    assert pages.gauges == {USED_MEMORY_BYTES: 524288, MAX_MEMORY_BYTES: 2097152, KEYS: 80}
    # Parent: sums of the two caches.
    assert sample.counters == {HITS: 9300, MISSES: 1700, OPS: 11000, EVICTIONS: 17, EXPIRATIONS: 42}
    assert sample.gauges == {USED_MEMORY_BYTES: 1572864, MAX_MEMORY_BYTES: 6291456, KEYS: 2580}


def test_cachetop_histogram_sums_operations_per_bucket(server: RouteServer) -> None:
    sample = collect(metrics_target(server.serve("/m", fixture_bytes("metrics_cachetop.prom"))))

    # sessions: get + set per le, e.g. 0.0005 -> 6000 + 100.
    assert sample.children["sessions"].histograms[SERVER_LATENCY].buckets == (
        (0.0005, 6100),
        (0.001, 8800),
        (0.005, 10290),
        (INF, 10400),
    )
    # pages: 200 + 10, 600 + 20, 950 + 45, 1000 + 50.
    assert sample.children["pages"].histograms[SERVER_LATENCY].buckets == (
        (0.0005, 210),
        (0.001, 620),
        (0.005, 995),
        (INF, 1050),
    )
    assert sample.histograms[SERVER_LATENCY].buckets == (
        (0.0005, 6310),
        (0.001, 9420),
        (0.005, 11285),
        (INF, 11450),
    )


def test_sample_timing_info_and_detail(server: RouteServer) -> None:
    url = server.serve("/metrics", fixture_bytes("metrics_cachetop.prom"))
    before = time.monotonic()
    sample = collect(metrics_target(url))

    assert before <= sample.taken_at <= time.monotonic()
    assert 0 < sample.rtt_s < 1
    assert sample.probes_s == (sample.rtt_s,)
    assert sample.info == {"version": "", "role": ""}
    assert sample.detail is not None
    families = sample.detail["families"]
    assert 'cache_hits_total{cache="sessions"} 9000' in families
    assert "# TYPE cache_operation_duration_seconds histogram" in families
    assert "process_cpu_seconds_total" not in families
    assert server.requests[-1]["Accept-Encoding"] == "identity"


def test_summary_only_gives_quantiles_of_the_busiest_series(server: RouteServer) -> None:
    url = server.serve("/metrics", fixture_bytes("metrics_cachetop_summary.prom"))
    sample = collect(metrics_target(url))

    # "get" has _count 10000 against "set"'s 400.
    expected = {"p50": 0.0002, "p95": 0.0009, "p99": 0.002}
    assert sample.children["sessions"].quantiles == expected
    assert sample.quantiles == expected
    assert SERVER_LATENCY not in sample.histograms


def test_micrometer_convention(server: RouteServer) -> None:
    url = server.serve("/prometheus", fixture_bytes("metrics_micrometer.prom"))
    sample = collect(metrics_target(url, "micrometer"))

    users, products = sample.children["users"], sample.children["products"]
    assert users.counters == {HITS: 420, MISSES: 80, OPS: 500, EVICTIONS: 7}
    assert users.gauges == {KEYS: 130}
    # products: two cache managers, 50 + 25 hits and 150 + 5 misses.
    assert products.counters == {HITS: 75, MISSES: 155, OPS: 230, EVICTIONS: 0}
    assert products.gauges == {KEYS: 45}
    assert sample.counters == {HITS: 495, MISSES: 235, OPS: 730, EVICTIONS: 7}
    assert sample.gauges == {KEYS: 175}


def test_micrometer_counter_named_without_total(server: RouteServer) -> None:
    body = (
        b"# TYPE cache_gets counter\n"
        b'cache_gets{cache="typed",result="hit"} 3\n'
        b'cache_gets{cache="typed",result="miss"} 1\n'
        b'cache_gets{cache="untyped",result="hit"} 8\n'
        b'cache_gets{cache="untyped",result="miss"} 2\n'
    )
    sample = collect(metrics_target(server.serve("/m", body), "micrometer"))

    assert sample.children["typed"].counters == {HITS: 3, MISSES: 1, OPS: 4}
    assert sample.children["untyped"].counters == {HITS: 8, MISSES: 2, OPS: 10}


def test_redis_exporter_convention(server: RouteServer) -> None:
    url = server.serve("/metrics", fixture_bytes("metrics_redis_exporter.prom"))
    sample = collect(metrics_target(url, "redis_exporter"))

    assert list(sample.children) == ["app-1"]
    assert sample.counters == {
        HITS: 123456,
        MISSES: 23456,
        OPS: 500000,
        EVICTIONS: 321,
        EXPIRATIONS: 4321,
    }
    assert sample.gauges[USED_MEMORY_BYTES] == 25165824
    assert sample.gauges[MAX_MEMORY_BYTES] == 1073741824
    assert sample.gauges[KEYS] == 1234  # db0 1000 + db1 234
    assert sample.gauges[CONNECTIONS] == 12
    assert sample.gauges[MAX_CONNECTIONS] == 10000
    assert sample.info["version"] == "7.2.4"
    assert sample.info["role"] == "master"
    assert sample.info[INSTANCE_ID] == "1f0e9d4c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
    assert sample.children["app-1"].counters == sample.counters


def test_redis_exporter_sparse_latency_histogram_in_seconds(server: RouteServer) -> None:
    url = server.serve("/metrics", fixture_bytes("metrics_redis_exporter.prom"))
    sample = collect(metrics_target(url, "redis_exporter"))

    # get + set per µs bound; "set" has no le=1 (0 so far), "get" no le=32 (still 119000).
    buckets = sample.histograms[SERVER_LATENCY].buckets
    assert [b for b, _ in buckets] == pytest.approx([1e-6, 2e-6, 4e-6, 8e-6, 16e-6, 32e-6, INF])
    assert [c for _, c in buckets] == [100, 6000, 120000, 165000, 178500, 178900, 180000]
    assert sample.quantiles == {}  # the histogram wins over the latencystats summary


def test_redis_exporter_summary_quantiles_are_percent_labels(server: RouteServer) -> None:
    text = fixture_bytes("metrics_redis_exporter.prom").decode()
    body = "\n".join(line for line in text.splitlines() if "latencies_usec" not in line)
    sample = collect(metrics_target(server.serve("/metrics", body.encode()), "redis_exporter"))

    # quantile="50" -> 3.007 µs, "99" -> 15.103 µs; 99.9 has no key.
    assert sample.quantiles == pytest.approx({"p50": 3.007e-6, "p99": 15.103e-6})


def test_redis_exporter_reporting_redis_down(server: RouteServer) -> None:
    body = b"# TYPE redis_up gauge\nredis_up 0\n"
    error = collect_error(metrics_target(server.serve("/metrics", body), "redis_exporter"))

    assert error.status == "down"
    assert "redis_up 0" in error.message


def test_memcached_exporter_convention(server: RouteServer) -> None:
    url = server.serve("/metrics", fixture_bytes("metrics_memcached_exporter.prom"))
    sample = collect(metrics_target(url, "memcached_exporter"))

    # ops: every commands_total series, 8000 + 2000 + 3000 + 50 + 5 + 0 + 1.
    # expirations: reclaimed 230 + expired_unfetched 20 + 5.
    assert sample.counters == {
        HITS: 8000,
        MISSES: 2000,
        OPS: 13056,
        EVICTIONS: 17,
        EXPIRATIONS: 255,
    }
    assert sample.gauges[USED_MEMORY_BYTES] == 5242880
    assert sample.gauges[MAX_MEMORY_BYTES] == 67108864
    assert sample.gauges[KEYS] == 4321
    assert sample.gauges[CONNECTIONS] == 10
    assert sample.gauges[MAX_CONNECTIONS] == 1024
    assert sample.info["version"] == "1.6.21"
    assert SERVER_LATENCY not in sample.histograms


def test_custom_mapping(server: RouteServer) -> None:
    mapping = {
        "hits": 'app_cache_lookups_total{outcome="hit"}',
        "misses": "app_cache_lookups{outcome=miss}",
        "memory": "app_cache_bytes",
        "latency": "app_cache_latency_ms",
        "latency_unit": "ms",
        "cache_label": "region",
    }
    url = server.serve("/metrics", fixture_bytes("metrics_custom.prom"))
    sample = collect(metrics_target(url, "custom", mapping=mapping))

    eu, us = sample.children["eu"], sample.children["us"]
    assert eu.counters == {HITS: 70, MISSES: 30, OPS: 100}
    assert us.counters == {HITS: 10, MISSES: 90, OPS: 100}
    assert eu.gauges == {USED_MEMORY_BYTES: 1000}
    assert sample.gauges == {USED_MEMORY_BYTES: 4000}
    eu_buckets = eu.histograms[SERVER_LATENCY].buckets
    assert [b for b, _ in eu_buckets] == pytest.approx([0.001, 0.010, INF])
    assert [c for _, c in eu_buckets] == [60, 95, 100]
    assert [c for _, c in sample.histograms[SERVER_LATENCY].buckets] == [80, 175, 200]


def test_custom_mapping_rejects_unknown_keys() -> None:
    target = metrics_target("http://127.0.0.1:1/metrics", "custom", mapping={"hit": "x"})
    with pytest.raises(ValueError, match="unknown mapping key 'hit'"):
        PromEndpointCollector(target)


def test_parent_drops_a_figure_some_cache_lacks(server: RouteServer) -> None:
    body = (
        b'cache_hits_total{cache="a"} 5\ncache_misses_total{cache="a"} 5\n'
        b'cache_evictions_total{cache="a"} 3\n'
        b'cache_hits_total{cache="b"} 1\ncache_misses_total{cache="b"} 1\n'
    )
    sample = collect(metrics_target(server.serve("/m", body)))

    assert sample.children["a"].counters[EVICTIONS] == 3
    assert sample.counters == {HITS: 6, MISSES: 6, OPS: 12}


def test_invalid_histogram_is_dropped_and_reported(server: RouteServer) -> None:
    body = (
        b'cache_hits_total{cache="a"} 5\n'
        b'cache_operation_duration_seconds_bucket{cache="a",le="0.1"} 9\n'
        b'cache_operation_duration_seconds_bucket{cache="a",le="1"} 4\n'
    )
    sample = collect(metrics_target(server.serve("/m", body)))

    assert SERVER_LATENCY not in sample.children["a"].histograms
    assert any("invalid histogram" in line for line in sample.degraded)


def test_duplicate_series_keeps_first_and_nan_is_skipped(server: RouteServer) -> None:
    body = (
        b'cache_hits_total{cache="a"} 5\ncache_hits_total{cache="a"} 50\n'
        b'cache_misses_total{cache="a"} NaN\ncache_entries{cache="a"} 7\n'
    )
    sample = collect(metrics_target(server.serve("/m", body)))

    assert sample.children["a"].counters == {HITS: 5}
    assert sample.children["a"].gauges == {KEYS: 7}


def test_gzip_body_is_decoded_despite_identity(server: RouteServer) -> None:
    body = gzip.compress(fixture_bytes("metrics_cachetop.prom"))
    url = server.serve("/metrics", body, headers={"Content-Encoding": "gzip"})
    sample = collect(metrics_target(url))

    assert sample.counters[HITS] == 9300


def test_basic_auth(server: RouteServer) -> None:
    expected = "Basic " + base64.b64encode(b"monitor:s3cret-pw").decode()

    def guarded(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") == expected:
            respond(handler, fixture_bytes("metrics_cachetop.prom"))
        else:
            respond(handler, b"no\n", status=401, headers={"WWW-Authenticate": "Basic"})

    server.routes["/metrics"] = guarded
    url = server.url("/metrics")
    ok = collect(metrics_target(url, username="monitor", password=Secret("s3cret-pw")))
    assert ok.counters[HITS] == 9300

    error = collect_error(metrics_target(url, username="monitor", password=Secret("wrong-pw-77")))
    assert (error.status, error.message) == ("auth-failed", "HTTP 401 Unauthorized")
    assert "wrong-pw-77" not in str(error)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected_status", "expected_message"),
    [
        (404, "down", "HTTP 404 Not Found"),
        (403, "auth-failed", "HTTP 403 Forbidden"),
        (500, "down", "HTTP 500 Internal Server Error"),
        (302, "down", "HTTP 302 Found (redirects are not followed)"),
    ],
)
def test_http_error_statuses(
    server: RouteServer, status: int, expected_status: str, expected_message: str
) -> None:
    url = server.serve("/metrics", b"x\n", status=status, headers={"Location": "http://x/"})
    error = collect_error(metrics_target(url))

    assert (error.status, error.message) == (expected_status, expected_message)


def test_unknown_path_is_404(server: RouteServer) -> None:
    error = collect_error(metrics_target(server.url("/nothing-here")))

    assert (error.status, error.message) == ("down", "HTTP 404 Not Found")


def test_html_page_is_bad_data(server: RouteServer) -> None:
    body = b"<!DOCTYPE html><html><body>Login</body></html>\n"
    error = collect_error(metrics_target(server.serve("/", body, content_type="text/html")))

    assert (error.status, error.message) == ("bad-data", "not a Prometheus exposition (text/html)")


def test_html_labelled_text_plain_is_bad_data(server: RouteServer) -> None:
    body = b"<html><body>Login</body></html>\n"
    error = collect_error(metrics_target(server.serve("/", body, content_type="text/plain")))

    assert error.status == "bad-data"
    assert "looks like HTML" in error.message


def test_connection_refused() -> None:
    error = collect_error(metrics_target(f"http://127.0.0.1:{free_port()}/metrics"))

    assert (error.status, error.message) == ("down", "connection refused")


def test_memcached_port_closes_on_http(memcached_server: MemcachedServer) -> None:
    # A real memcached (like redis-server) hangs up on an HTTP request line.
    error = collect_error(metrics_target(f"http://127.0.0.1:{memcached_server.port}/metrics"))

    assert (error.status, error.message) == (
        "down",
        "connection closed by the server before a response",
    )


def test_non_http_reply_is_bad_data() -> None:
    # Fake: a server answering in a line protocol instead of closing.
    with socket.create_server(("127.0.0.1", free_port())) as listener:

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"-ERR unknown command 'GET'\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        error = collect_error(metrics_target(f"http://127.0.0.1:{port}/metrics"))
        thread.join(5)

    assert (error.status, error.message) == ("bad-data", "not an HTTP response (BadStatusLine)")


def test_malformed_exposition_names_the_line(server: RouteServer) -> None:
    url = server.serve("/metrics", fixture_bytes("metrics_cachetop_malformed.prom"))
    error = collect_error(metrics_target(url))

    assert error.status == "bad-data"
    assert error.message.startswith("line 7: ")
    assert "\n" not in error.message


def test_invalid_type_line_is_found_by_the_fallback_scan(server: RouteServer) -> None:
    body = b'cache_hits_total{cache="a"} 1\n# TYPE cache_misses_total bogus\ncache_misses_total 1\n'
    error = collect_error(metrics_target(server.serve("/m", body)))

    assert error.status == "bad-data"
    assert error.message.startswith("line 2: ")


def test_no_cache_metrics_is_bad_data(server: RouteServer) -> None:
    body = b"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n"
    error = collect_error(metrics_target(server.serve("/metrics", body), "micrometer"))

    assert (error.status, error.message) == ("bad-data", "no micrometer cache metrics found")


def _drip(handler: BaseHTTPRequestHandler, stopping: threading.Event, *, chunked: bool) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", PROM_TYPE)
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Content-Length", "100")
    handler.end_headers()
    try:
        for _ in range(100):
            handler.wfile.write(b"1\r\n#\r\n" if chunked else b"#")
            if stopping.wait(0.3):
                return
    except OSError:
        return  # the client gave up, as it should


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_dripping_server_aborts_at_the_total_deadline(server: RouteServer, chunked: bool) -> None:
    server.routes["/metrics"] = lambda h: _drip(h, server.stopping, chunked=chunked)
    started = time.monotonic()
    error = collect_error(metrics_target(server.url("/metrics"), timeout_s=1.0))
    elapsed = time.monotonic() - started

    assert (error.status, error.message) == ("timeout", "timeout after 1s")
    assert 0.9 <= elapsed < 1.0 + SLACK_S  # never early; late only by what a loaded machine adds


def test_silent_server_times_out(server: RouteServer) -> None:
    server.routes["/metrics"] = lambda h: server.stopping.wait(5) and None
    started = time.monotonic()
    error = collect_error(metrics_target(server.url("/metrics"), timeout_s=0.5))

    assert error.status == "timeout"
    assert time.monotonic() - started < 0.5 + SLACK_S


def _gzip_of(decoded_bytes: int) -> bytes:
    """Gzip of decoded_bytes of short lines, compressed block by block (about 50 KB for 50 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = (b"0" * 1023 + b"\n") * 1024
    parts = [compressor.compress(block) for _ in range(decoded_bytes // len(block))]
    return b"".join([*parts, compressor.flush()])


def test_gzip_bomb_is_too_large(server: RouteServer) -> None:
    bomb = _gzip_of(50 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    url = server.serve("/metrics", bomb, headers={"Content-Encoding": "gzip"})
    error = collect_error(metrics_target(url, max_body_bytes=1024 * 1024))

    assert (error.status, error.message) == ("too-large", "body larger than 1048576 bytes")


def test_plain_body_over_the_cap_is_too_large(server: RouteServer) -> None:
    url = server.serve("/metrics", b"# padding\n" * 20000)
    error = collect_error(metrics_target(url, max_body_bytes=100_000))

    assert error.status == "too-large"


def test_overlong_line_is_too_large(server: RouteServer) -> None:
    body = b'cache_hits_total{cache="a"} 1\n# ' + b"x" * 70_000 + b"\n"
    error = collect_error(metrics_target(server.serve("/metrics", body)))

    assert (error.status, error.message) == ("too-large", "line 2 longer than 65536 bytes")


def _endpoint_body(caches: int) -> bytes:
    """Hits and misses for `caches` values of the `cache` label: 2 x caches samples."""
    lines = ["# TYPE cache_hits_total counter"]
    lines += [f'cache_hits_total{{cache="c{i}"}} {i}' for i in range(caches)]
    lines += ["# TYPE cache_misses_total counter"]
    lines += [f'cache_misses_total{{cache="c{i}"}} 1' for i in range(caches)]
    return ("\n".join(lines) + "\n").encode()


def test_200000_samples_are_too_large_with_the_count(server: RouteServer) -> None:
    url = server.serve("/metrics", _endpoint_body(100_000))
    target = metrics_target(url)
    error = collect_error(target)

    assert target.sample_limit == 50_000  # the default, as the issue asks
    assert (error.status, error.message) == (
        "too-large", "200000 samples, more than sample_limit 50000")


def test_the_sample_limit_is_per_target_and_counts_samples_not_lines(server: RouteServer) -> None:
    body = fixture_bytes("metrics_cachetop.prom")
    samples = sum(1 for line in body.decode().splitlines()
                  if line.strip() and not line.lstrip().startswith("#"))
    url = server.serve("/metrics", body)

    assert samples < len(body.decode().splitlines())  # comments are not samples
    error = collect_error(metrics_target(url, sample_limit=samples - 1))
    assert (error.status, error.message) == (
        "too-large", f"{samples} samples, more than sample_limit {samples - 1}")
    assert collect(metrics_target(url, sample_limit=samples)).counters[HITS] == 9300
    assert collect(metrics_target(url, sample_limit=0)).counters[HITS] == 9300  # 0: no limit


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RouteServer, Path]]:
    """An HTTPS RouteServer whose certificate (from a trustme CA) is for `cache.internal` only.

    trustme, not the openssl binary: nothing to be missing, so nothing to skip.
    """
    ca = trustme.CA()
    cert = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cert))
    srv = RouteServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("cache.internal").configure_cert(context)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    srv.scheme = "https"
    srv.start()
    yield srv, cert
    srv.close()


def test_https_with_ca_file_and_server_name(tls_server: tuple[RouteServer, Path]) -> None:
    srv, cert = tls_server
    url = srv.serve("/metrics", fixture_bytes("metrics_cachetop.prom"))
    tls = TlsOptions(ca_file=str(cert), server_name="cache.internal")

    assert collect(metrics_target(url, tls=tls)).counters[HITS] == 9300


def test_https_name_mismatch_is_down(tls_server: tuple[RouteServer, Path]) -> None:
    srv, cert = tls_server
    url = srv.serve("/metrics", fixture_bytes("metrics_cachetop.prom"))
    error = collect_error(metrics_target(url, tls=TlsOptions(ca_file=str(cert))))

    assert error.status == "tls-error"
    assert error.message.startswith("hostname mismatch: certificate is not valid for '127.0.0.1'")


def test_https_without_verification(tls_server: tuple[RouteServer, Path]) -> None:
    srv, _ = tls_server
    url = srv.serve("/metrics", fixture_bytes("metrics_cachetop.prom"))

    assert collect(metrics_target(url, tls=TlsOptions(verify=False))).counters[HITS] == 9300
