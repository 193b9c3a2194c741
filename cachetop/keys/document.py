"""Provides report_document() and report_lines(): a KeysReport as JSON and as plain text.

Keys and prefixes come from the wire: in JSON they are `exact()` (every control and
non-UTF-8 byte escaped, the backslash too, so they read back one way) with the raw bytes in
`*_hex`; in text they are `plain()`. Estimates carry their 95 % margin beside them
(`keys_margin`, `memory_bytes_margin`; null when the figure is exact).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cachetop.formatting import count, percent, rate, size
from cachetop.keys.model import BigKey, Figure, HotKey, KeysReport, PrefixRow
from cachetop.keys.tally import OVERFLOW
from cachetop.text_safety import exact, plain

NO_PREFIX = "(no delimiter)"
MORE_PREFIXES = "(more prefixes)"


def prefix_label(prefix: bytes | None, limit: int = 80) -> str:
    """A prefix row's name on screen: the escaped prefix, or what the row holds."""
    if prefix is None:
        return NO_PREFIX
    if prefix == OVERFLOW:
        return MORE_PREFIXES
    return plain(prefix, limit)


def _number(figure: Figure | None) -> int | None:
    return None if figure is None else round(figure.value)


def _margin(figure: Figure | None) -> int | None:
    return None if figure is None or figure.margin is None else round(figure.margin)


def _group(prefix: bytes | None) -> str:
    return "no_delimiter" if prefix is None else (
        "more_prefixes" if prefix == OVERFLOW else "prefix")


def _prefix_doc(row: PrefixRow, total_memory: float | None) -> dict[str, Any]:
    memory = row.memory_bytes
    doc: dict[str, Any] = {
        "prefix": None if row.prefix is None or row.prefix == OVERFLOW else exact(row.prefix),
        "prefix_hex": row.prefix.hex() if row.prefix else None, "group": _group(row.prefix),
        "keys": _number(row.keys), "keys_margin": _margin(row.keys),
        "memory_bytes": _number(memory), "memory_bytes_margin": _margin(memory),
        "memory_share": (round(memory.value / total_memory, 6)
                         if memory is not None and total_memory else None),
        "ttl": {name: round(value) for name, value in row.ttl.items()},
        "keys_read": row.seen,
    }
    if row.hit_ratio is not None or row.gets_per_s is not None:
        doc.update(hit_ratio=row.hit_ratio, gets_per_s=row.gets_per_s,
                   sets_per_s=row.sets_per_s)
    return doc


def big_doc(key: BigKey) -> dict[str, Any]:
    return {"key": exact(key.key), "key_hex": key.key.hex(), "type": key.type,
            "memory_bytes": key.memory_bytes, "elements": key.elements,
            "ttl_s": key.ttl_ms / 1000 if key.ttl_ms >= 0 else None,
            "encoding": key.encoding}


def _hot_doc(key: HotKey) -> dict[str, Any]:
    return {"key": exact(key.key), "key_hex": key.key.hex(), "score": key.score,
            "measure": key.measure}


def report_document(report: KeysReport) -> dict[str, Any]:
    """The JSON document of `cachetop keys --json` (see README, "Inside the keyspace")."""
    memory = report.memory_bytes
    total = memory.value if memory is not None else None
    return {
        "target": report.target, "kind": report.kind, "db": report.db, "mode": report.mode,
        "status": report.status, "keys_scanned": report.keys_scanned,
        "keys_total": report.keys_total, "confidence": report.confidence,
        "unseen_bound": report.unseen_bound,
        "delimiter": exact(report.delimiter), "depth": report.depth,
        "elapsed_s": round(report.elapsed_s, 3), "keys_per_s": round(report.keys_per_s),
        "memory_bytes": _number(memory), "memory_bytes_margin": _margin(memory),
        "prefixes": [_prefix_doc(row, total) for row in report.prefixes],
        "biggest": [big_doc(k) for k in report.biggest],
        "types": [{"type": t.type, "keys": _number(t.keys), "keys_margin": _margin(t.keys),
                   "memory_bytes": _number(t.memory_bytes),
                   "memory_bytes_margin": _margin(t.memory_bytes),
                   "biggest": [big_doc(k) for k in t.biggest],
                   "most_elements": big_doc(t.most_elements) if t.most_elements else None}
                  for t in report.types],
        "encodings": [{"type": e.type, "encoding": plain(e.encoding, 40),
                       "keys": _number(e.keys), "memory_bytes": _number(e.memory_bytes)}
                      for e in report.encodings],
        "sizes": None if report.sizes is None else {
            "source": report.sizes.source, "unit": dict(report.sizes.unit),
            "by_type": {name: {str(bound): round(keys) for bound, keys in buckets.items()}
                        for name, buckets in report.sizes.by_type.items()}},
        "hot": None if report.hot is None else [_hot_doc(k) for k in report.hot],
        "hot_unavailable": report.hot_unavailable, "hot_source": report.hot_source,
        "detail": dict(report.detail) or None,
        "notes": list(report.notes), "error": report.error,
    }


def figure_text(figure: Figure | None, unit: str = "count") -> str:
    """`1.2M`, `~1.2M ±3.1k` for an estimate."""
    if figure is None:
        return "—"
    show = size if unit == "bytes" else count
    if figure.margin is None:
        return show(figure.value)
    return f"~{show(figure.value)} ±{show(figure.margin)}"


def ttl_text(ttl: Mapping[str, float], keys: float) -> str:
    """TTL mix as shares: none/<1m/<1h/longer."""
    if keys <= 0:
        return "—"
    return "/".join(f"{ttl.get(name, 0) / keys * 100:.0f}" for name in
                    ("none", "under_1m", "under_1h", "longer")) + "%"


def report_lines(report: KeysReport, rows: int = 30) -> list[str]:
    """The report as plain text for a terminal (every server string escaped)."""
    memory = report.memory_bytes
    total = memory.value if memory is not None else None
    db = f" db {report.db}" if report.db is not None else ""
    lines = [f"keys {plain(report.target)} ({report.kind}{db}): {report.mode}, "
             f"{report.keys_scanned} of {report.keys_total} keys read in "
             f"{report.elapsed_s:.1f}s ({rate(report.keys_per_s)} keys/s): {report.status}"]
    if report.error:
        lines.append(f"error: {report.error}")
    lines.append(f"memory: {figure_text(memory, 'bytes')}")
    memcached = report.kind == "memcached"
    head = f"{'PREFIX':<32} {'KEYS':>16} {'MEMORY':>18} {'MEM%':>6}  TTL none/<1m/<1h/longer"
    lines.append(head + ("  HIT%   GETS/s" if memcached else ""))
    for row in report.prefixes[:rows]:
        share = (percent(row.memory_bytes.value / total) if row.memory_bytes and total
                 else "—")
        line = (f"{prefix_label(row.prefix, 32):<32} {figure_text(row.keys):>16} "
                f"{figure_text(row.memory_bytes, 'bytes'):>18} {share:>6}  "
                f"{ttl_text(row.ttl, row.keys.value)}")
        if memcached:
            line += f"  {percent(row.hit_ratio):>5} {rate(row.gets_per_s):>8}"
        lines.append(line)
    if len(report.prefixes) > rows:
        lines.append(f"... {len(report.prefixes) - rows} more prefixes (--json lists all)")
    if report.biggest:
        lines.append("biggest keys:")
        lines += [f"  {_big_line(k)}" for k in report.biggest]
    for t in report.types:
        most = t.most_elements
        extra = f"; most elements: {plain(most.key, 60)} ({most.elements})" if most else ""
        lines.append(f"type {t.type}: {figure_text(t.keys)} keys, "
                     f"{figure_text(t.memory_bytes, 'bytes')}{extra}")
    if report.encodings:
        lines.append("encodings: " + ", ".join(f"{e.type}/{plain(e.encoding, 20)} "
                                               f"{figure_text(e.keys)}"
                                               for e in report.encodings))
    if report.hot is not None:
        lines.append(f"hot keys ({report.hot_source}):" if report.hot else
                     f"hot keys: none found ({report.hot_source})")
        lines += [f"  {plain(h.key, 80)}  {h.measure} {h.score:g}" for h in report.hot]
    elif report.hot_unavailable:
        lines.append(f"hot keys: {report.hot_unavailable}")
    lines += [f"note: {note}" for note in report.notes]
    return lines


def _big_line(key: BigKey) -> str:
    unit = "bytes" if key.type == "string" else "items"
    elements = f"  {key.elements} {unit}" if key.elements is not None else ""
    ttl = "no ttl" if key.ttl_ms < 0 else f"ttl {key.ttl_ms / 1000:.0f}s"
    return (f"{plain(key.key, 80)}  {key.type}  {size(key.memory_bytes)}{elements}  "
            f"{key.encoding}  {ttl}")
