"""Provides FleetHeader: the fleet's figures in one line and sparklines of the last minutes."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from cachetop.fleet import FleetFigures, FleetSnapshot
from cachetop.formatting import millis, percent, rate, size

SPARK_POINTS = 120


class _Spark(Vertical):
    def __init__(self, title: str, key: str) -> None:
        super().__init__(classes="spark")
        self.title, self.key = title, key

    def compose(self) -> ComposeResult:
        yield Static(self.title, classes="spark-title", id=f"spark-title-{self.key}")
        yield Sparkline([], id=f"spark-{self.key}")


class FleetHeader(Vertical):
    """Figures of the whole fleet: ops/s, weighted hit ratio, worst p99, memory, evictions/s."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._history: dict[str, deque[float]] = {
            k: deque(maxlen=SPARK_POINTS) for k in ("ops", "hit", "p99", "evict")}

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-figures")
        with Horizontal(id="sparks"):
            yield _Spark("ops/s", "ops")
            yield _Spark("hit %", "hit")
            yield _Spark("worst p99", "p99")
            yield _Spark("evictions/s", "evict")

    def seed(self, points: Sequence[FleetFigures]) -> None:
        """Start the sparklines from history the monitor already has."""
        for f in points[-SPARK_POINTS:]:
            self._append(f)

    def _append(self, f: FleetFigures) -> None:
        for key, value in (("ops", f.ops_per_s), ("hit", f.hit_ratio), ("p99", f.worst_p99_s),
                           ("evict", f.evictions_per_s)):
            self._history[key].append(math.nan if value is None else value)

    def record(self, snap: FleetSnapshot) -> None:
        """Add one point per figure (once per interval) and redraw."""
        self._append(snap.fleet)
        for key, points in self._history.items():
            data = [p for p in points if not math.isnan(p)]
            # A snapshot can land before the sparklines are composed (the first frame is
            # drawn before the engine answers): the history is kept and drawn next time.
            for spark in self.query(f"#spark-{key}").results(Sparkline):
                spark.data = data or [0.0]
        self.show(snap)

    def show(self, snap: FleetSnapshot, *, paused: bool = False) -> None:
        f = snap.fleet
        line = Text()
        line.append("fleet ", style="bold")
        line.append(f"{f.targets_up}/{f.targets_total} up",
                    style="bold green" if f.targets_up == f.targets_total else "bold red")
        for label, value in (("ops/s", rate(f.ops_per_s)), ("hit", percent(f.hit_ratio)),
                             ("worst p99", f"{millis(f.worst_p99_s)} ms"),
                             ("memory", size(f.memory_used_bytes)),
                             ("evictions/s", rate(f.evictions_per_s))):
            line.append(f"   {label} ", style="grey70")
            line.append(value, style="bold")
        line.append(f"   every {snap.interval_s:g}s", style="grey70")
        if paused:
            line.append("   PAUSED", style="bold black on yellow")
        for figures in self.query("#fleet-figures").results(Static):
            figures.update(line)
        titles = {"ops": f"ops/s {rate(f.ops_per_s)}", "hit": f"hit {percent(f.hit_ratio)}",
                  "p99": f"worst p99 {millis(f.worst_p99_s)} ms",
                  "evict": f"evictions/s {rate(f.evictions_per_s)}"}
        for key, title in titles.items():
            for static in self.query(f"#spark-title-{key}").results(Static):
                static.update(Text(title))
