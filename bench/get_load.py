"""Provides Load: another client of a Redis, in its own process, timing a steady stream of GETs.

Benches that load a server (bench/keys.py, bench/flush.py) measure what a normal client feels
meanwhile: each GET's latency, timed in a process of its own so the bench's CPU is not in it.
Run it alone first for the same-run idle baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# GETs of `prefix`0..999 at `rate`/s until stdin closes, then the latency percentiles.
LOAD = textwrap.dedent("""
    import json, sys, threading, time, redis
    port, rate, prefix = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].encode()
    client = redis.Redis(port=port, single_connection_client=True)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print("ready", flush=True)
    lat, i, step, next_at = [], 0, 1.0 / rate, time.perf_counter()
    while not stop.is_set():
        started = time.perf_counter()
        client.get(prefix + b"%d" % (i % 1000))
        lat.append(time.perf_counter() - started)
        i += 1
        next_at += step
        time.sleep(max(0.0, next_at - time.perf_counter()))
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(json.dumps({"n": len(lat), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                      "max_ms": lat[-1] * 1000}))
""")


class Load:
    """The other client; stop() ends it and returns n, p50_ms, p99_ms, max_ms."""

    def __init__(self, port: int, rate: float, prefix: str = "user:") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", LOAD, str(port), str(rate), prefix],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> dict[str, float]:
        out, _ = self.proc.communicate("", timeout=120)
        return json.loads(out)  # type: ignore[no-any-return]
