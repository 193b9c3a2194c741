"""Provides ReplaySource: a FleetSource over a recording, with a time cursor.

The dashboard reads it as it reads the engine: snapshots, events, a watched target's series.
The cursor moves by `seek`, `step` and `advance` (play at a speed); each move that goes back
in time raises `epoch`, so a reader that accumulates events starts over. Nothing polls.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from cachetop.collectors.base import Target
from cachetop.collectors.secret import Secret
from cachetop.events.model import Event
from cachetop.fleet import FleetFigures, FleetSnapshot, Latency, TargetFigures
from cachetop.record.store import Recording

SERIES_S = 120.0  # the charts of a replay: the two minutes before the cursor
SPEEDS = (1.0, 10.0, 60.0)


def _epoch(iso: str | None) -> float | None:
    if iso is None:
        return None
    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def _latency(doc: Mapping[str, Any], source: str) -> Latency:
    ms = doc["latency_ms"][source]

    def s(v: float | None) -> float | None:
        return None if v is None else v / 1000.0

    return Latency(s(ms["p50"]), s(ms["p95"]), s(ms["p99"]),
                   (doc.get("server_latency_source") or "") if source == "server" else "probe")


def figures_from_document(doc: Mapping[str, Any], interval_s: float) -> TargetFigures:
    """A target of a JSON document as the figures a screen draws (latency to 3 digits: what
    the document kept)."""
    status = str(doc["status"])
    return TargetFigures(
        name=doc["name"], kind=doc["kind"], address=doc["address"], group=doc.get("group") or "",
        status=status, error=doc.get("error"), status_since=_epoch(doc.get("status_since")) or 0.0,
        last_success=_epoch(doc.get("last_success")),
        updated_at=_epoch(doc.get("last_success")) or 0.0, role=doc.get("role") or "",
        version=doc.get("version") or "",
        interval_s=interval_s if status in ("up", "restarted") else None,
        ops_per_s=doc.get("ops_per_sec"), hit_ratio=doc.get("hit_ratio"),
        lifetime_hit_ratio=doc.get("lifetime_hit_ratio"),
        evictions_per_s=doc.get("evictions_per_sec"),
        expirations_per_s=doc.get("expirations_per_sec"),
        memory_used_bytes=doc.get("memory_used_bytes"),
        memory_max_bytes=doc.get("memory_max_bytes"), connections=doc.get("connections"),
        keys=doc.get("keys"), server_latency=_latency(doc, "server"),
        probe_latency=_latency(doc, "probe"), degraded=tuple(doc.get("degraded") or ()),
        tls_insecure=bool(doc.get("tls_insecure")),
        caches=tuple(figures_from_document({**c, "caches": []}, interval_s)
                     for c in doc.get("caches") or ()))


class ReplaySource:
    """FleetSource over a Recording. Thread-safe enough for the TUI: one UI thread moves the
    cursor and reads."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.times = recording.times()
        self.cursor = len(self.times) - 1 if self.times else 0
        self.position = self.times[-1] if self.times else 0.0  # the play clock
        self.playing = False
        self.speed = SPEEDS[0]
        self.epoch = 0
        self.version = 0
        self._lock = threading.Lock()
        self._snap: FleetSnapshot | None = None
        self._snap_at = -1
        self._series: dict[str, tuple[int, dict[str, list[float]]]] = {}
        self._targets: dict[str, Target] = {}

    # -- the cursor -----------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.times[self.cursor] if self.times else 0.0

    def seek(self, at: float) -> None:
        index = max(0, bisect.bisect_right(self.times, at) - 1)
        self._move(index)
        self.position = max(at, self.now)

    def step(self, frames: int) -> None:
        self._move(max(0, min(len(self.times) - 1, self.cursor + frames)))
        self.position = self.now

    def advance(self, seconds: float) -> None:
        """Play: move the clock forward by `seconds` times the speed; the cursor follows."""
        if not self.times:
            return
        self.position += seconds * self.speed
        index = max(self.cursor, bisect.bisect_right(self.times, self.position) - 1)
        if index >= len(self.times) - 1:
            self.playing = False
        self._move(min(index, len(self.times) - 1))

    def _move(self, index: int) -> None:
        if index == self.cursor and self._snap is not None:
            return
        if index < self.cursor:
            self.epoch += 1
        self.cursor = index
        self.version += 1

    # -- FleetSource ----------------------------------------------------------------------

    @property
    def interval_s(self) -> float:
        snap = self.snapshot()
        return snap.interval_s

    def snapshot(self) -> FleetSnapshot:
        if self._snap is not None and self._snap_at == self.cursor:
            return self._snap
        doc = self.recording.at(self.now)
        interval = float(doc.get("interval_s") or 1.0)
        figures = [figures_from_document(t, interval) for t in doc["targets"]]
        for f in figures:
            self._targets.setdefault(f.name, Target(name=f.name, kind=f.kind,
                                                    address=f.address, group=f.group))
        self._snap = FleetSnapshot.build(figures, interval, self.now, self.version)
        self._snap_at = self.cursor
        return self._snap

    def events_since(self, seq: int = 0) -> Sequence[Event]:
        return [e for e in self.recording.events(end=self.now) if e.seq > seq]

    def series(self, name: str, last_s: float | None = None) -> Mapping[str, Sequence[float]]:
        held = self._series.get(name)
        if held is not None and held[0] == self.cursor:
            return held[1]
        now = self.now
        window = min(last_s or SERIES_S, SERIES_S)
        out: dict[str, list[float]] = {k: [] for k in (
            "t", "ops_per_s", "hit_ratio", "p50_s", "p95_s", "p99_s", "memory_used_bytes",
            "evictions_per_s")}
        out["restarts"] = []
        for t, doc in self.recording.target_series(name, now - window, now):
            f = figures_from_document(doc, 1.0)
            latency = f.server_latency if f.server_latency.known else f.probe_latency
            nan = float("nan")
            out["t"].append(t - now)
            for key, value in (("ops_per_s", f.ops_per_s), ("hit_ratio", f.hit_ratio),
                               ("p50_s", latency.p50_s), ("p95_s", latency.p95_s),
                               ("p99_s", latency.p99_s),
                               ("memory_used_bytes", f.memory_used_bytes),
                               ("evictions_per_s", f.evictions_per_s)):
                out[key].append(nan if value is None else float(value))
            if f.status == "restarted" and f.ops_per_s is None:
                out["restarts"].append(t - now)
        self._series[name] = (self.cursor, out)
        return out

    def watch(self, name: str, on: bool = True) -> None:
        if not on:
            self._series.pop(name, None)

    def target(self, name: str) -> Target | None:
        self.snapshot()
        return self._targets.get(name)

    def fleet_history(self) -> Sequence[FleetFigures]:
        return ()

    def notice(self) -> str | None:
        return None

    def start(self) -> None: ...

    def stop(self) -> None:
        self.recording.close()

    def set_interval(self, interval_s: float) -> None: ...

    def set_paused(self, paused: bool) -> None:
        self.playing = not paused

    def poll_now(self) -> None: ...

    def watch_clients(self, name: str, on: bool = True) -> None:
        """Nothing to fetch: a recording holds figures, not connections."""

    def set_credentials(self, name: str, username: str | None,
                        password: Secret | None) -> None:
        """Nothing to apply: a recording connects to nothing."""
