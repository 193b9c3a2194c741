"""Provides analyze_memcached(): memcached's keys per prefix, with per-prefix hit ratios.

Keys, sizes and TTLs come from `lru_crawler metadump all` (a walk of every item: memcached has
no SCAN); hit ratios and rates from two `stats detail dump`s an interval apart, when detail is
on (see memcached_detail: cachetop turns it on only when asked, and off again at exit). The
detail's prefixes are the key up to its first server delimiter (`-D`, `stat_key_prefix`); they
join the metadump rows at depth 1 when the delimiters are the same.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from cachetop.actions.connect import McConnection
from cachetop.actions.memcached_dump import metadump, server_time
from cachetop.actions.plan import ActionError
from cachetop.actions.safety import describe_error
from cachetop.collectors.base import Target
from cachetop.keys.memcached_detail import (
    DetailSwitch,
    PrefixRates,
    interval_rates,
    read_dump,
    read_settings,
)
from cachetop.keys.model import Figure, KeysReport, PrefixRow, Status
from cachetop.keys.prefixes import TTL_CLASSES
from cachetop.keys.tally import ITEM, KeyTally, Row

DUMP_BUDGET_S = 120.0
PAGE = 1000
DETAIL_OFF = ("per-prefix hit ratios need memcached's `stats detail on`, which changes the "
              "server (every request then updates a per-prefix table): pass --enable-detail "
              "(cachetop turns it off again when it exits)")


def analyze_memcached(target: Target, *, delimiter: bytes = b":", depth: int = 1, top: int = 10,
                      enable_detail: bool = False, interval_s: float = 5.0,
                      switch: DetailSwitch | None = None,
                      cancel: threading.Event | None = None,
                      after_first_dump: Callable[[], None] | None = None) -> KeysReport:
    """Walk the items once and, when detail is on (or `enable_detail` turns it on), read the
    per-prefix counters `interval_s` apart. Never raises for server trouble: the report's
    `status`/`error` say it. `switch` remembers whether cachetop turned detail on;
    `after_first_dump` runs once the interval has begun (a test's known workload)."""
    cancel = cancel or threading.Event()
    switch = switch or DetailSwitch(target)
    tally = KeyTally(delimiter=delimiter, depth=depth, top=top)
    started = time.monotonic()
    notes: list[str] = []
    detail: dict[str, str] = {}
    keys_total, error = 0, None
    status: Status = "done"
    rates: dict[bytes, PrefixRates] = {}
    server_delimiter = b":"
    try:
        with McConnection(target) as conn:
            was_on, server_delimiter = read_settings(conn)
            keys_total = int(conn.stats().get("curr_items", "0") or 0)
            detail = {"before": "on" if was_on else "off"}
            on = was_on
            if not was_on and enable_detail:
                on = switch.enable(conn)
                detail["enabled_by_cachetop"] = "yes"
                notes.append("cachetop turned `stats detail on` on this memcached; it turns it "
                             "off again when it exits")
            elif not was_on:
                notes.append(DETAIL_OFF)
            before = read_dump(conn) if on else {}
            dumped_at = time.monotonic()
            if on and after_first_dump is not None:
                after_first_dump()
            _walk(conn, tally, cancel)
            if on and not cancel.is_set():
                left = interval_s - (time.monotonic() - dumped_at)
                if left > 0:
                    cancel.wait(left)
                if not cancel.is_set():
                    rates = interval_rates(before, read_dump(conn),
                                           time.monotonic() - dumped_at)
                    detail["interval_s"] = f"{time.monotonic() - dumped_at:.1f}"
            if cancel.is_set():
                status = "cancelled"
    except (ActionError, OSError) as exc:
        status, error = "failed", f"{target.name}: {describe_error(exc)}"
    report = tally.report(target=target.name, kind="memcached", db=None, mode="full",
                          status=status, keys_total=keys_total,
                          elapsed_s=time.monotonic() - started,
                          progress=1.0 if status == "done" else 0.0,
                          hot_unavailable="memcached keeps no per-key access counters",
                          notes=[*notes, "keys, sizes and TTLs from one lru_crawler metadump "
                                 "walk: items written after it passed are not listed"],
                          error=error)
    joinable = depth == 1 and delimiter == server_delimiter
    if rates and not joinable:
        report = dataclasses.replace(report, notes=(*report.notes, (
            "hit ratios are per server prefix (up to the first "
            f"{server_delimiter.decode('ascii', 'replace')!r}): shown at depth 1 with that "
            "delimiter")))
    return dataclasses.replace(report, prefixes=with_rates(report.prefixes, rates,
                                                           server_delimiter, joinable),
                               detail=detail)


def _walk(conn: McConnection, tally: KeyTally, cancel: threading.Event) -> None:
    now, _ = server_time(conn)
    page: list[Row] = []
    for item in metadump(conn, DUMP_BUDGET_S):
        ttl_ms = -1 if item.exp <= 0 else max(0, item.exp - now) * 1000
        page.append((item.key, ITEM, b"item", item.size, ttl_ms, -1, -1))
        if len(page) >= PAGE:
            tally.add(page)
            page = []
            if cancel.is_set():
                conn.close()  # the rest of the walk is not read; the connection is done
                return
    tally.add(page)


def with_rates(rows: tuple[PrefixRow, ...], rates: dict[bytes, PrefixRates],
               server_delimiter: bytes, joinable: bool) -> tuple[PrefixRow, ...]:
    """Prefix rows with their interval figures; a prefix with traffic but no item (all misses)
    gets a row of its own, with 0 keys."""
    if not rates or not joinable:
        return rows
    out, used = [], set()
    for row in rows:
        name = row.prefix[:-len(server_delimiter)] if row.prefix else None
        rate = rates.get(name) if name is not None else None
        if rate is None:
            out.append(row)
            continue
        used.add(name)
        out.append(dataclasses.replace(row, hit_ratio=rate.hit_ratio,
                                       gets_per_s=rate.gets_per_s, sets_per_s=rate.sets_per_s))
    for name, rate in rates.items():
        if name in used:
            continue
        out.append(PrefixRow(prefix=name + server_delimiter, keys=Figure(0.0),
                             memory_bytes=Figure(0.0), ttl=dict.fromkeys(TTL_CLASSES, 0.0),
                             seen=0, hit_ratio=rate.hit_ratio, gets_per_s=rate.gets_per_s,
                             sets_per_s=rate.sets_per_s))
    return tuple(out)
