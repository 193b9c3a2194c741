"""Provides render_table: a FleetSnapshot as a plain-text table for `--once` and `--batch`."""

from __future__ import annotations

from cachetop.fleet import FleetSnapshot, TargetFigures
from cachetop.formatting import DASH, count, millis, percent, rate, size
from cachetop.text_safety import plain

COLUMNS = ("NAME", "KIND", "STATUS", "OPS/s", "HIT%", "P50ms", "P99ms", "LAT", "MEM", "MAX",
           "EVICT/s", "EXP/s", "CONN", "KEYS")


def _row(t: TargetFigures, indent: str = "") -> list[str]:
    latency = t.server_latency if t.server_latency.known else t.probe_latency
    source = "server" if t.server_latency.known else ("probe" if latency.known else DASH)
    status = t.status if not t.error else f"{t.status}: {t.error}"
    if t.degraded and not t.error:
        status = f"{t.status}, degraded: {'; '.join(t.degraded)}"
    if t.tls_insecure:
        status = f"!tls-verify-off {status}"
    return [indent + plain(t.name), t.kind, plain(status)[:60], rate(t.ops_per_s),
            percent(t.hit_ratio), millis(latency.p50_s), millis(latency.p99_s), source,
            size(t.memory_used_bytes), size(t.memory_max_bytes), rate(t.evictions_per_s),
            rate(t.expirations_per_s), count(t.connections), count(t.keys)]


def render_table(snap: FleetSnapshot) -> str:
    rows = [list(COLUMNS)]
    for t in snap.targets:
        rows.append(_row(t))
        rows.extend(_row(c, "  ") for c in t.caches)
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    f = snap.fleet
    lines.append(f"fleet: {f.targets_up}/{f.targets_total} up, {rate(f.ops_per_s)} ops/s, "
                 f"hit {percent(f.hit_ratio)}, evictions {rate(f.evictions_per_s)}/s, "
                 f"memory {size(f.memory_used_bytes)}, worst p99 {millis(f.worst_p99_s)} ms")
    return "\n".join(lines)
