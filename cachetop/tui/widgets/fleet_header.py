"""Provides FleetHeader: the fleet's figures in one line and sparklines of the last minutes."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from cachetop.formatting import millis, percent, rate, size

if TYPE_CHECKING:
    from cachetop.fleet import FleetFigures, FleetSnapshot, TargetFigures

SPARK_POINTS = 120


class FitLines:
    """Lines each drawn in full when it fits the width, else in its compact form (which
    wraps if it must): an 80-column terminal keeps the header to a line per layer."""

    def __init__(self, lines: Sequence[tuple[Text, Text]]) -> None:
        self.lines = lines

    @property
    def plain(self) -> str:
        return "\n".join(full.plain for full, _ in self.lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        for full, compact in self.lines:
            yield full if full.cell_len <= options.max_width else compact


Parts = Sequence[tuple[str, str]]  # (text, style)


def _line(head: Parts, pairs: Sequence[tuple[str, str, str]], tail: Parts,
          compact: bool) -> Text:
    """`pairs`: (label, short label, value); compact lines use the short labels."""
    line = Text()
    for text, style in head:
        line.append(text, style=style)
    gap = " " if compact else "   "
    for label, short, value in pairs:
        line.append(f"{gap}{short if compact else label} ", style="grey70")
        line.append(value, style="bold")
    for text, style in tail:
        line.append(text, style=style)
    return line


def _fit(head: tuple[Parts, Parts], pairs: Sequence[tuple[str, str, str]],
         tail: tuple[Parts, Parts] = ((), ())) -> tuple[Text, Text]:
    """A line in full and compact form: (full, compact) heads and tails."""
    return _line(head[0], pairs, tail[0], False), _line(head[1], pairs, tail[1], True)


def _up(f: FleetFigures) -> tuple[str, str]:
    return (f"{f.targets_up}/{f.targets_total} up",
            "bold green" if f.targets_up == f.targets_total else "bold red")


def figures_text(snap: FleetSnapshot, *, paused: bool = False,
                 shown: Sequence[TargetFigures] | None = None) -> FitLines:
    """One line per layer (README, "How fleet totals are made"): the servers' figures, then
    the application caches' as the applications see them, with memory and evictions only of
    the caches that live in the applications (the others are their servers')."""
    # Here, not at the top: StartScreen draws this header before the figures' module loads.
    from cachetop.fleet import APP_CACHES, SERVERS, fleet_totals, layer_totals

    layers, fleet = snap.layers, snap.fleet
    if shown is not None:
        layers = layer_totals(shown)
        fleet = fleet_totals(shown, layers)
    head = [("fleet ", "bold"), _up(fleet)]
    short_head = list(head)
    if shown is not None:
        head.append((f" (filter: {len(shown)} of {len(snap.targets)})", "bold cyan"))
        short_head.append((f" (filter {len(shown)}/{len(snap.targets)})", "bold cyan"))
    servers, apps = layers.get(SERVERS), layers.get(APP_CACHES)
    both = servers is not None and apps is not None
    if both:
        head.append(("   servers:", "bold"))
        short_head.append((" servers:", "bold"))
    first = servers or apps or fleet
    lookups = "lookups/s" if servers is None and apps is not None else "ops/s"
    tail = [(f"   every {snap.interval_s:g}s", "grey70")]
    short_tail = [(f" {snap.interval_s:g}s", "grey70")]
    if paused:
        tail.append(("   PAUSED", "bold black on yellow"))
        short_tail.append((" PAUSED", "bold black on yellow"))
    lines = [_fit((head, short_head), (
        (lookups, lookups.removesuffix("/s"), rate(first.ops_per_s)),
        ("hit", "hit", percent(first.hit_ratio)),
        ("worst p99", "p99", f"{millis(first.worst_p99_s)} ms"),
        ("memory", "mem", size(first.memory_used_bytes)),
        ("evictions/s", "ev/s", rate(first.evictions_per_s))), (tail, short_tail))]
    if apps is not None and both:
        count = _up(apps)
        lines.append(_fit(([("app caches ", "bold"), count, (":", "bold")],
                           [("apps ", "bold"), count, (":", "bold")]), (
            ("lookups/s", "lookups", rate(apps.ops_per_s)),
            ("hit", "hit", percent(apps.hit_ratio)),
            ("worst p99", "p99", f"{millis(apps.worst_p99_s)} ms"),
            ("own memory", "own mem", size(apps.memory_used_bytes)),
            ("own evictions/s", "own ev/s", rate(apps.evictions_per_s)))))
    return FitLines(lines)


class _Spark(Vertical):
    def __init__(self, title: str, key: str) -> None:
        super().__init__(classes="spark")
        self.title, self.key = title, key

    def compose(self) -> ComposeResult:
        from cachetop.tui.widgets.spark_bars import SparkBars  # after the first frame

        yield Static(self.title, classes="spark-title", id=f"spark-title-{self.key}")
        yield SparkBars([], id=f"spark-{self.key}")


class FleetHeader(Vertical):
    """Figures of the whole fleet: ops/s, weighted hit ratio, worst p99, memory, evictions/s."""

    def __init__(self, message: str = "", **kwargs: object) -> None:
        """`message`: what the figures' line says until the first snapshot (StartScreen)."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.message = message
        self._lines = 1 if message else 0  # lines of the figures on screen
        self._history: dict[str, deque[float]] = {
            k: deque(maxlen=SPARK_POINTS) for k in ("ops", "hit", "p99", "evict")}
        self._titles = {"ops": "ops/s", "hit": "hit %", "p99": "worst p99",
                        "evict": "evictions/s"}

    def compose(self) -> ComposeResult:
        yield Static(Text(self.message, style="bold") if self.message else "",
                     id="fleet-figures")
        # The sparklines' row keeps its height (3 lines) while empty: add_sparks() fills it
        # after the first frame, which its 13 widgets delayed by ~15 ms (issue 11).
        yield Horizontal(id="sparks")

    def add_sparks(self) -> None:
        """Mount the four sparklines, drawn from the history and titles kept so far."""
        row = self.query("#sparks").results(Horizontal)
        for sparks in row:
            if not sparks.children:
                sparks.mount_all(_Spark(title, key) for key, title in self._titles.items())
                self.call_after_refresh(self._draw_sparks)

    def _draw_sparks(self) -> None:
        from cachetop.tui.widgets.spark_bars import SparkBars

        for key, points in self._history.items():
            data = [p for p in points if not math.isnan(p)]
            # A snapshot can land before the sparklines are mounted (the first frame is
            # drawn before them): the history is kept and drawn once they are.
            for spark in self.query(f"#spark-{key}").results(SparkBars):
                spark.data = data or [0.0]

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
        self._draw_sparks()
        self.show(snap)

    def show(self, snap: FleetSnapshot, *, paused: bool = False,
             shown: Sequence[TargetFigures] | None = None) -> None:
        """The fleet's totals; with `shown` (the rows a filter leaves), theirs, said so."""
        text = figures_text(snap, paused=paused, shown=shown)  # a line per layer
        # A new layout only when the header gains or loses a line (a layer): a layout of the
        # whole screen at every snapshot was ~a third of a 1,000-row refresh's UI time.
        lines = len(text.lines)
        # A snapshot can land before the header is composed: drawn next time then.
        for figures in self.query("#fleet-figures").results(Static):
            figures.update(text, layout=lines != self._lines)
            self._lines = lines
        f = snap.fleet
        titles = {"ops": f"ops/s {rate(f.ops_per_s)}", "hit": f"hit {percent(f.hit_ratio)}",
                  "p99": f"worst p99 {millis(f.worst_p99_s)} ms",
                  "evict": f"evictions/s {rate(f.evictions_per_s)}"}
        self._titles = titles
        for key, title in titles.items():
            for static in self.query(f"#spark-title-{key}").results(Static):
                static.update(Text(title), layout=False)
