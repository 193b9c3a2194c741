"""Metrics-endpoint figures end to end: a live HTTP endpoint, two scrapes, the engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cachetop.collectors.base import Target
from tests.integration.helpers import TwoPolls
from tests.servers import free_port


class Endpoint:
    """Serves whatever exposition text the test sets."""

    def __init__(self) -> None:
        self.text = ""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = endpoint.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    e.close()


def exposition(hits: dict[str, int], misses: dict[str, int],
               buckets: dict[str, int]) -> str:
    lines = ["# TYPE cache_hits_total counter"]
    lines += [f'cache_hits_total{{cache="{c}"}} {n}' for c, n in hits.items()]
    lines += ["# TYPE cache_misses_total counter"]
    lines += [f'cache_misses_total{{cache="{c}"}} {n}' for c, n in misses.items()]
    lines += ["# TYPE cache_operation_duration_seconds histogram"]
    for le, n in buckets.items():
        lines.append(f'cache_operation_duration_seconds_bucket{{cache="a",le="{le}"}} {n}')
    lines.append(f'cache_operation_duration_seconds_count{{cache="a"}} {buckets["+Inf"]}')
    lines.append('cache_operation_duration_seconds_sum{cache="a"} 1.0')
    return "\n".join(lines) + "\n"


def test_endpoint_interval_percentiles_and_weighted_ratio(endpoint: Endpoint) -> None:
    target = Target(name="app", kind="metrics", address=f"127.0.0.1:{endpoint.port}",
                    http_url=f"http://127.0.0.1:{endpoint.port}/metrics", timeout_s=2.0)
    polls = TwoPolls(target)
    endpoint.text = exposition({"a": 1000, "b": 50}, {"a": 1000, "b": 50},
                               {"0.001": 100, "0.01": 150, "0.1": 190, "+Inf": 200})
    first = polls.poll()
    assert first.status == "up"
    # Interval: cache a +900 hits +100 misses (90%), b +1 hit +9 misses (10%).
    # Buckets Δ: le=0.001 +400, 0.01 +500 (cumulative), 0.1 +590, +Inf +600.
    endpoint.text = exposition({"a": 1900, "b": 51}, {"a": 1100, "b": 59},
                               {"0.001": 500, "0.01": 650, "0.1": 780, "+Inf": 800})
    second = polls.poll()
    polls.close()
    by_cache = {c.name: c for c in second.caches}
    assert by_cache["a"].hit_ratio == pytest.approx(0.9)
    assert by_cache["b"].hit_ratio == pytest.approx(0.1)
    assert second.hit_ratio == pytest.approx(901 / 1010)     # weighted, not (0.9 + 0.1) / 2
    assert second.ops_per_s is not None
    assert second.interval_s is not None
    assert second.ops_per_s * second.interval_s == pytest.approx(1010)
    # Prometheus histogram_quantile by hand over the interval buckets (400, 500, 590, 600):
    # p50: rank 300 in the first bucket -> 0 + 0.001 * 300/400 = 0.00075
    # p95: rank 570 in (0.01, 0.1]: 0.01 + 0.09 * (570 - 500) / 90 = 0.08
    # p99: rank 594 in +Inf -> highest finite bound 0.1
    latency = by_cache["a"].server_latency
    assert latency.p50_s == pytest.approx(0.00075)
    assert latency.p95_s == pytest.approx(0.08)
    assert latency.p99_s == pytest.approx(0.1)
    assert latency.source == "interval"


def test_a_cache_appearing_or_resetting_never_spikes_the_endpoint(endpoint: Endpoint) -> None:
    target = Target(name="app", kind="metrics", address=f"127.0.0.1:{endpoint.port}",
                    http_url=f"http://127.0.0.1:{endpoint.port}/metrics", timeout_s=2.0)
    polls = TwoPolls(target)
    b = {"0.001": 1, "+Inf": 1}
    endpoint.text = exposition({"a": 100}, {"a": 100}, b)
    polls.poll()
    # cache c appears with a large lifetime count; cache a resets (its process restarted)
    endpoint.text = exposition({"a": 5, "c": 1_000_000}, {"a": 5, "c": 1_000_000}, b)
    second = polls.poll()
    polls.close()
    assert second.ops_per_s is None or second.ops_per_s < 1000
    by_cache = {c.name: c for c in second.caches}
    assert by_cache["a"].status == "restarted"
    assert by_cache["c"].ops_per_s is None
