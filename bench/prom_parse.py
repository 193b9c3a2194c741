"""Exposition parsing: the lean parser (cachetop.collectors.prom_parse) beside prometheus_client's.

Inputs: the test fixtures, whole exporter scrapes (tests/fixtures/exporters: redis_exporter,
memcached_exporter, Micrometer), the demo application's real output (prometheus_client's own
exposition of 50 caches), and the issue's endpoint: `cache_hits_total` and `cache_misses_total`
for 20,000 `cache` label values (40,000 samples). Rows, in the same run and interleaved:

- prometheus_client: `list(text_string_to_metric_families(text))`, the parser alone;
- before: what parse_exposition cost before this bench (prometheus_client, then its metrics
  copied into cachetop's Family/PromSample records);
- lean: `parse_families(text)`, what parse_exposition runs now.

Each input is first checked to parse to the same samples with both parsers. Then the stages of
the big endpoint's poll after the fetch (parse, map to caches, build the Sample), and the sample
limit: an endpoint of 200,000 samples polled over HTTP gives `too-large`, and how long that
takes, beside the time to count the samples alone. `--smoke` runs small sizes once, for CI.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cachetop.collectors.base import CollectError, Deadline, Target  # noqa: E402
from cachetop.collectors.prom_conventions import convention_for, map_families  # noqa: E402
from cachetop.collectors.prom_endpoint import PromEndpointCollector, sample_from_mapped  # noqa: E402
from cachetop.collectors.prom_parse import Family, PromSample, count_samples, parse_families  # noqa: E402
from cachetop.demo.app_metrics import AppMetrics  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def endpoint(caches: int) -> str:
    """The issue's endpoint: hits and misses for `caches` values of the `cache` label."""
    lines = ["# HELP cache_hits_total Lookups that found a value.",
             "# TYPE cache_hits_total counter"]
    lines += [f'cache_hits_total{{cache="tenant-{i:05d}"}} {i * 37 + 11}' for i in range(caches)]
    lines += ["# HELP cache_misses_total Lookups that did not.",
              "# TYPE cache_misses_total counter"]
    lines += [f'cache_misses_total{{cache="tenant-{i:05d}"}} {i * 3 + 1}' for i in range(caches)]
    return "\n".join(lines) + "\n"


def demo_app(caches: int) -> str:
    names = [f"cache-{i}" for i in range(caches)]
    metrics = AppMetrics(names, operations=("get", "set"))
    for number, cache in enumerate(names):
        for _ in range(number % 5 + 1):
            metrics.hit(cache, True)
        metrics.hit(cache, False)
        metrics.timed(cache, "get", lambda: None)
    return generate_latest(metrics.registry).decode()


def reference(text: str) -> list[object]:
    return list(text_string_to_metric_families(text))


def before(text: str) -> tuple[Family, ...]:
    """parse_exposition as it was: prometheus_client's metrics copied into cachetop's records."""
    return tuple(Family(str(m.name), str(m.type), tuple(
        PromSample(str(s.name), dict(s.labels), float(s.value)) for s in m.samples))
        for m in text_string_to_metric_families(text))


def samples_of(families: list[Family] | tuple[Family, ...]) -> list[tuple[object, ...]]:
    return [(f.name, f.type, s.name, sorted(s.labels.items()), repr(s.value))
            for f in families for s in f.samples]


def timed(call: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - started) / repeat


def measure(inputs: dict[str, str], rounds: int) -> None:
    rows = {"prometheus_client": reference, "before": before, "lean": parse_families}
    print(f"{'input':<26} {'lines':>7} {'samples':>8}  " + "".join(f"{r:>18}" for r in rows)
          + f"{'x client':>10}{'x before':>10}")
    for name, text in inputs.items():
        assert samples_of(before(text)) == samples_of(parse_families(text)), name
        samples = count_samples(text)
        # Small inputs are repeated to about 50 ms per call of the reference, so a round is
        # long enough for the clock; each parser's median round is kept.
        repeat = max(1, int(0.05 / max(timed(lambda t=text: reference(t), 1), 1e-6)))
        times: dict[str, list[float]] = {row: [] for row in rows}
        for _ in range(rounds):
            for row, parse in rows.items():
                times[row].append(timed(lambda p=parse, t=text: p(t), repeat))
        medians = {row: statistics.median(values) for row, values in times.items()}
        cells = "".join(f"{_ms(medians[row]):>18}" for row in rows)
        print(f"{name:<26} {text.count(chr(10)):>7} {samples:>8}  {cells}"
              f"{medians['prometheus_client'] / medians['lean']:>9.1f}x"
              f"{medians['before'] / medians['lean']:>9.1f}x")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


class _Body(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def stages(caches: int, rounds: int) -> None:
    """Where a poll of the issue's endpoint goes after the fetch: the parse is one stage of
    three (mapping to per-cache figures and building the Sample follow it)."""
    text = endpoint(caches)
    convention = convention_for("cachetop", {})
    target = Target("big", "metrics", "bench")
    times: dict[str, list[float]] = {"parse": [], "map_families": [], "sample_from_mapped": []}
    for _ in range(rounds):
        started = time.perf_counter()
        families = parse_families(text)
        parsed = time.perf_counter()
        mapped = map_families(convention, families)
        mapped_at = time.perf_counter()
        sample_from_mapped(target, mapped, rtt_s=0.0, taken_at=0.0)
        done = time.perf_counter()
        times["parse"].append(parsed - started)
        times["map_families"].append(mapped_at - parsed)
        times["sample_from_mapped"].append(done - mapped_at)
    print(f"\nthe endpoint of {caches:,} caches after the fetch, median of {rounds}: "
          + ", ".join(f"{stage} {_ms(statistics.median(values))}"
                      for stage, values in times.items()))


def sample_limit(caches: int, rounds: int) -> None:
    """An endpoint of 2 x caches samples, polled with the default sample_limit."""
    text = endpoint(caches)
    _Body.body = text.encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Body)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        target = Target("big", "metrics", url, http_url=url)
        collector = PromEndpointCollector(target)
        polls, errors = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            try:
                collector.collect(Deadline(1.0))
            except CollectError as exc:
                errors.append(f"{exc.status}: {exc.message}")
            polls.append(time.perf_counter() - started)
        counting = statistics.median(timed(lambda: count_samples(text), 1) for _ in range(rounds))
    finally:
        server.shutdown()
        server.server_close()
    print(f"\nsample_limit {target.sample_limit}: an endpoint of {2 * caches} samples "
          f"({len(_Body.body) / 2**20:.1f} MiB) over HTTP, 1 s deadline")
    print(f"  poll result: {errors[-1] if errors else 'up (not refused!)'}")
    print(f"  poll to too-large: median {_ms(statistics.median(polls))}, "
          f"worst {_ms(max(polls))} of {rounds}; counting the samples alone: {_ms(counting)}")
    assert errors and all(e.startswith("too-large:") for e in errors), errors


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="small sizes, one round (CI)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--caches", type=int, default=20_000)
    args = p.parse_args()
    rounds, caches = (1, 2_000) if args.smoke else (args.rounds, args.caches)
    inputs = {path.name: path.read_text() for path in sorted(FIXTURES.glob("*.prom"))
              if "malformed" not in path.name}
    inputs |= {f"exporters/{path.name}": path.read_text()
               for path in sorted(FIXTURES.glob("exporters/*.prom"))}
    inputs["demo app, 50 caches"] = demo_app(50)
    inputs[f"endpoint, {caches:,} caches"] = endpoint(caches)
    measure(inputs, rounds)
    stages(caches, max(rounds, 3))
    sample_limit(100_000, max(rounds, 3))  # 200,000 samples, as in the issue
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
