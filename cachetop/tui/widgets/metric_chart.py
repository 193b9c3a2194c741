"""Provides MetricChart: a titled line chart of recent history; the only plotext importer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

# Tick steps in seconds: the smallest that keeps the labels apart is used.
_X_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
RESTART_COLOR = "red"
DIM_STYLE = "grey50"


class ChartLine(NamedTuple):
    """One series: its legend label, values (NaN is a gap) and colour (plotext and rich name)."""

    label: str
    values: Sequence[float]
    color: str


def segments(times: Sequence[float], values: Sequence[float]) -> list[tuple[list[float],
                                                                              list[float]]]:
    """Runs of finite points: plotext would join across a gap, so each run is drawn alone."""
    runs: list[tuple[list[float], list[float]]] = []
    xs: list[float] = []
    ys: list[float] = []
    for t, v in zip(times, values, strict=False):
        if math.isfinite(v):
            xs.append(t)
            ys.append(v)
        elif xs:
            runs.append((xs, ys))
            xs, ys = [], []
    if xs:
        runs.append((xs, ys))
    return runs


def ago(seconds: float) -> str:
    """A tick label for `seconds` before now: "now", "-30s", "-5m", "-1h"."""
    s = round(abs(seconds))
    if s == 0:
        return "now"
    if s < 60 or s % 60:
        return f"-{s}s"
    if s < 3600 or s % 3600:
        return f"-{s // 60}m"
    return f"-{s // 3600}h"


def time_ticks(window_s: float, width: int) -> list[float]:
    """Tick positions (seconds, negative) for a window, at most one every ~9 columns."""
    most = max(2, width // 9)
    step = next((s for s in _X_STEPS if window_s / s <= most), _X_STEPS[-1])
    ticks = [-step * i for i in range(int(window_s // step) + 1)]
    return sorted(ticks)


def log_range(values: Sequence[float]) -> tuple[float, float]:
    """Whole decades (log10) covering the positive values, at least one decade tall."""
    positive = [v for v in values if math.isfinite(v) and v > 0]
    if not positive:
        return 0.0, 1.0
    bottom = math.floor(math.log10(min(positive)))
    top = math.ceil(math.log10(max(positive)))
    return float(bottom), float(max(top, bottom + 1))


def log_values(values: Sequence[float]) -> list[float]:
    """log10 of each value; zero, negative or missing is a gap (NaN), as on any log axis."""
    return [math.log10(v) if math.isfinite(v) and v > 0 else math.nan for v in values]


def log_ticks(bottom: float, top: float, fmt: Callable[[float], str],
              height: int) -> tuple[list[float], list[str]]:
    """A tick every decade, or every few when the chart is short."""
    decades = int(top - bottom)
    step = max(1, math.ceil(decades / max(1, height // 2)))
    ticks = [bottom + i for i in range(0, decades + 1, step)]
    if ticks[-1] != top:
        ticks.append(top)
    return ticks, [fmt(10 ** t) for t in ticks]


def value_ticks(top: float, fmt: Callable[[float], str], height: int) -> tuple[list[float],
                                                                               list[str]]:
    """0, (half), top: few labels keep the y axis narrow on a small chart."""
    ticks = [0.0, top / 2, top] if height >= 6 else [0.0, top]
    return ticks, [fmt(t) for t in ticks]


class MetricChart(Vertical):
    """A one-line title with legend and latest values, over a plotext chart of the window."""

    DEFAULT_CSS = """
    MetricChart { height: 1fr; width: 1fr; }
    MetricChart > .chart-title { height: 1; width: 1fr; }
    MetricChart > PlotextPlot { height: 1fr; min-height: 3; }
    """

    def __init__(self, title: str, fmt: Callable[[float], str], *, top: float | None = None,
                 title_fmt: Callable[[float], str] | None = None,
                 id: str | None = None) -> None:  # noqa: A002 - Textual's name
        """`title_fmt` formats the latest values in the title (the header's format), `fmt`
        the axis ticks."""
        super().__init__(id=id, classes="metric-chart")
        self.title = title
        self.fmt = fmt
        self.title_fmt = title_fmt or fmt
        self.top = top  # a fixed upper bound (100 for a percentage), else from the data
        self.shown_range: tuple[float, float] | None = None  # the axis drawn (log10 if log)
        self.log_scale = False
        self._lines: Sequence[ChartLine] = ()
        self._restarts: Sequence[float] = ()
        self._dim = False
        self._ceiling: float | None = None
        self._latest: Sequence[float | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title, style="bold"), classes="chart-title")
        yield PlotextPlot()

    def draw(self, times: Sequence[float], lines: Sequence[ChartLine],
             restarts: Sequence[float], window_s: float, *, dim: bool = False,
             ceiling: float | None = None, title: str | None = None,
             latest: Sequence[float | None] | None = None, log: bool = False) -> None:
        """Replace the chart's data; the plot renders at its current size. `ceiling` (a memory
        limit) is drawn as a line when it is near enough to the data to leave the data legible.
        `latest` (one per line) is what the title says, the figures the screen's header shows,
        so both read the same interval; without it, each series' last point. `log`: a log10
        axis in whole decades, so one spike a thousand times the rest leaves the rest legible."""
        if title is not None:
            self.title = title
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        width, height = max(plot.size.width, 10), max(plot.size.height, 3)
        finite = [v for line in lines for v in line.values if math.isfinite(v)]
        peak = max(finite) if finite else 0.0
        show_ceiling = ceiling is not None and ceiling > 0 and ceiling <= 4 * peak and not log
        top = self.top or max(peak * 1.15, ceiling * 1.05 if show_ceiling and ceiling else 0.0)
        top = top or 1.0
        bottom = 0.0
        if log:
            bottom, top = log_range(finite)
        self.shown_range, self.log_scale = (bottom, top), log
        self._lines, self._restarts, self._dim, self._ceiling = lines, restarts, dim, ceiling
        if latest is not None:
            self._latest = latest
        self._draw_title()
        if show_ceiling and ceiling:
            plt.horizontal_line(ceiling, color=RESTART_COLOR)
        for line in lines:
            values = log_values(line.values) if log else line.values
            for xs, ys in segments(times, values):
                plt.plot(xs, ys, color="gray" if dim else line.color, marker="braille")
        if not finite:
            plt.text("no data yet", -window_s / 2, (bottom + top) / 2, alignment="center",
                     color="gray")
        for at in restarts:
            if -window_s <= at <= 0:
                plt.vertical_line(at, color=RESTART_COLOR)
        plt.xlim(-window_s, 0)
        plt.ylim(bottom, top)
        xticks = time_ticks(window_s, width)
        plt.xticks(xticks, [ago(t) for t in xticks])
        plt.yticks(*(log_ticks(bottom, top, self.fmt, height) if log
                     else value_ticks(top, self.fmt, height)))
        plt.grid(False, False)
        plot.refresh()

    def show_latest(self, latest: Sequence[float | None], dim: bool = False) -> None:
        """Retitle with the figures the screen's header just showed (between redraws)."""
        self._latest, self._dim = latest, dim
        if self._lines:
            self._draw_title()

    def _draw_title(self) -> None:
        width = self.size.width or 80
        lines = self._lines
        title = self._title(self._ceiling, values=True)
        if title.cell_len > width:  # a narrow chart keeps the legend, drops the figures
            title = self._title(None, values=len(lines) == 1)
        self.query_one(".chart-title", Static).update(title)

    def _title(self, ceiling: float | None, *, values: bool) -> Text:
        dim, latest = self._dim, self._latest
        title = Text(self.title, style=DIM_STYLE if dim else "bold")
        for index, line in enumerate(self._lines):
            # A labelled line's label, in its colour, is its legend; else a stroke of it.
            title.append(f" {line.label or '━'}", style=DIM_STYLE if dim else line.color)
            if values:
                if latest is not None and index < len(latest):
                    value = latest[index]
                else:
                    value = next((v for v in reversed(line.values) if math.isfinite(v)), None)
                shown = "—" if value is None or not math.isfinite(value) else self.title_fmt(value)
                title.append(f" {shown}", style=DIM_STYLE if dim else "bold")
        if ceiling:
            title.append(f"  limit {self.fmt(ceiling)}", style=DIM_STYLE)
        if self._restarts:
            title.append(" │", style=RESTART_COLOR)
            title.append("restart", style="grey70")
        return title
