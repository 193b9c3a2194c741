"""Recording: disk per hour, seek time and CPU of 1,000 targets at 1 s, emulated.

The fleet is emulated by the documents it would produce: per target, counters advancing at
its own rate with noise, a jittered interval, hit ratios from the hits and misses, memory and
keys drifting, a server latency histogram's quantized percentiles and noisy probe round trips
(snapshot_json rounds latency to 3 digits, as live). Each second's snapshot goes through
snapshot_json and Recorder.write, the path `--batch --json --record` takes.

Prints: bytes on disk (file + WAL) and per target-second; the CPU of recording as a share of
one core (Recorder.write alone: the --batch path, whose document exists; and with building
the document: the TUI path), beside the cost of building the document alone as the baseline;
seek times to random moments; and, when `zstandard` is importable, what zstd would have saved
on the same frames. `--smoke`: 100 targets for 5 minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cachetop.fleet import FleetSnapshot, Latency, TargetFigures  # noqa: E402
from cachetop.record import codec  # noqa: E402
from cachetop.record.store import Recorder, Recording  # noqa: E402
from cachetop.snapshot_json import snapshot_document  # noqa: E402

T0 = 1_796_000_000.0
BUCKETS = [0.000004096 * 2 ** k for k in range(12)]  # Redis histogram bucket bounds, seconds


class Emulated:
    """One target's counters, moved on by one jittered second."""

    def __init__(self, i: int, rng: random.Random) -> None:
        self.rng = rng
        self.name = f"cache-{i:04d}"
        self.rate = rng.choice([0.0, 50.0, 800.0, 5000.0, 40000.0])
        self.miss = rng.uniform(0.02, 0.4)
        self.hits = self.misses = 0.0
        self.memory = rng.uniform(1e6, 4e9)
        self.keys = int(self.memory / rng.uniform(200, 2000))
        self.base_rtt = rng.uniform(0.00008, 0.0004)
        self.since = T0 - rng.uniform(0, 86400)

    def step(self, now: float) -> TargetFigures:
        rng = self.rng
        interval = 1.0 + rng.gauss(0, 0.01)
        ops = max(0.0, rng.gauss(self.rate, self.rate * 0.05)) * interval
        misses = round(ops * self.miss * rng.uniform(0.9, 1.1))
        hits = round(ops) - misses
        self.hits += hits
        self.misses += misses
        self.memory += rng.gauss(0, 5000)
        self.keys += rng.randint(-3, 5) if self.rate else 0
        p50, p95, p99 = sorted(rng.choice(BUCKETS[:8]) for _ in range(3))
        rtts = sorted(self.base_rtt * rng.lognormvariate(0, 0.3) for _ in range(3))
        total = self.hits + self.misses
        return TargetFigures(
            name=self.name, kind="redis", address=f"10.{hash(self.name) % 250}.0.1:6379",
            group="sessions", status="up", status_since=self.since, last_success=now,
            updated_at=now, role="master", version="7.2.4", interval_s=interval,
            ops_per_s=round(ops) / interval, hit_ratio=hits / (hits + misses) if hits + misses
            else None, lifetime_hit_ratio=self.hits / total if total else None,
            hits_delta=hits, misses_delta=misses, evictions_per_s=0.0,
            expirations_per_s=rng.choice([0.0, 0.0, 1.0, 3.0]) / interval,
            memory_used_bytes=float(int(self.memory)), memory_max_bytes=4 * 2.0 ** 30,
            connections=float(rng.choice([40, 41, 42])), keys=float(self.keys),
            server_latency=Latency(p50, p95, p99, "interval"),
            probe_latency=Latency(*rtts, "probe 60s"))


def run(targets: int, seconds: int, path: Path, compare: bool = True) -> dict[str, float]:
    rng = random.Random(7)
    fleet = [Emulated(i, rng) for i in range(targets)]
    recorder = Recorder(path, keep_s=None)
    build_cpu = write_cpu = 0.0
    zlib_bytes = zstd_bytes = 0
    try:
        import zstandard
        zstd: zstandard.ZstdCompressor | None = (zstandard.ZstdCompressor(level=3) if compare
                                                  else None)
    except ImportError:
        zstd = None
    state = codec.FrameState()
    for s in range(seconds):
        now = T0 + s
        figures = [t.step(now) for t in fleet]
        started = time.process_time()
        doc = snapshot_document(FleetSnapshot.build(figures, 1.0, now))
        build_cpu += time.process_time() - started
        started = time.process_time()
        recorder.write(now, doc, ())
        write_cpu += time.process_time() - started
        if zstd is not None and s % 10 == 0:  # the same frame's bytes, both compressors
            blob = codec.encode({"time": doc["time"]}, doc["targets"], state, s % 30 == 0)
            raw = zlib.decompress(blob[4:])
            zlib_bytes += len(blob)
            zstd_bytes += len(zstd.compress(raw)) + 4
        elif zstd is not None:
            codec.encode({"time": doc["time"]}, doc["targets"], state, s % 30 == 0)
    recorder.close()
    size = sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists())
    recording = Recording(path)
    seeks = []
    for _ in range(40):
        at = T0 + rng.uniform(0, seconds - 1)
        started = time.perf_counter()
        doc = recording.at(at)
        seeks.append(time.perf_counter() - started)
        assert len(doc["targets"]) == targets
    recording.close()
    return {"size": size, "per_target_s": size / (targets * seconds),
            "build_core": build_cpu / seconds, "write_core": write_cpu / seconds,
            "seek_median": statistics.median(seeks), "seek_max": max(seeks),
            "zstd_vs_zlib": zstd_bytes / zlib_bytes if zlib_bytes else float("nan")}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--targets", type=int)
    p.add_argument("--seconds", type=int)
    p.add_argument("--no-zstd", action="store_true", help="skip the zstd comparison")
    args = p.parse_args()
    targets = args.targets or (100 if args.smoke else 1000)
    seconds = args.seconds or (300 if args.smoke else 3600)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cachetop-bench-record-") as tmp:
        r = run(targets, seconds, Path(tmp) / "rec.db", compare=not args.no_zstd)
    hour = r["per_target_s"] * 1000 * 3600 / 1e6
    print(f"recording {targets} targets x {seconds} s at 1 s (load {load[0]:.1f} "
          f"{load[1]:.1f} {load[2]:.1f})")
    print(f"  on disk            {r['size'] / 1e6:8.1f} MB   {r['per_target_s']:.1f} B per "
          f"target-second   -> {hour:.0f} MB per hour of 1,000 targets (target 150)")
    print(f"  write (--batch)    {r['write_core'] * 100:8.2f} % of a core (target 5)")
    print(f"  document+write     {(r['write_core'] + r['build_core']) * 100:8.2f} % of a core "
          f"(the TUI path; the document alone, the baseline: {r['build_core'] * 100:.2f} %)")
    print(f"  seek               median {r['seek_median'] * 1000:.0f} ms, max "
          f"{r['seek_max'] * 1000:.0f} ms over 40 random times (target 200)")
    if r["zstd_vs_zlib"] == r["zstd_vs_zlib"]:
        print(f"  zstd level 3 would write {r['zstd_vs_zlib']:.2f}x the zlib bytes")
    ok = hour <= 150 or args.smoke
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
