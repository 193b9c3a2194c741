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
                 id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, classes="metric-chart")
        self.title = title
        self.fmt = fmt
        self.top = top  # a fixed upper bound (100 for a percentage), else from the data

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title, style="bold"), classes="chart-title")
        yield PlotextPlot()

    def draw(self, times: Sequence[float], lines: Sequence[ChartLine],
             restarts: Sequence[float], window_s: float, *, dim: bool = False,
             ceiling: float | None = None, title: str | None = None) -> None:
        """Replace the chart's data; the plot renders at its current size. `ceiling` (a memory
        limit) is drawn as a line when it is near enough to the data to leave the data legible."""
        if title is not None:
            self.title = title
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        width, height = max(plot.size.width, 10), max(plot.size.height, 3)
        finite = [v for line in lines for v in line.values if math.isfinite(v)]
        peak = max(finite) if finite else 0.0
        show_ceiling = ceiling is not None and ceiling > 0 and ceiling <= 4 * peak
        top = self.top or max(peak * 1.15, ceiling * 1.05 if show_ceiling and ceiling else 0.0)
        top = top or 1.0
        self._draw_title(lines, restarts, dim, ceiling)
        if show_ceiling and ceiling:
            plt.horizontal_line(ceiling, color=RESTART_COLOR)
        for line in lines:
            for xs, ys in segments(times, line.values):
                plt.plot(xs, ys, color="gray" if dim else line.color, marker="braille")
        if not finite:
            plt.text("no data yet", -window_s / 2, top / 2, alignment="center", color="gray")
        for at in restarts:
            if -window_s <= at <= 0:
                plt.vertical_line(at, color=RESTART_COLOR)
        plt.xlim(-window_s, 0)
        plt.ylim(0, top)
        xticks = time_ticks(window_s, width)
        plt.xticks(xticks, [ago(t) for t in xticks])
        plt.yticks(*value_ticks(top, self.fmt, height))
        plt.grid(False, False)
        plot.refresh()

    def _draw_title(self, lines: Sequence[ChartLine], restarts: Sequence[float],
                    dim: bool, ceiling: float | None) -> None:
        width = self.size.width or 80
        title = self._title(lines, restarts, dim, ceiling, values=True)
        if title.cell_len > width:  # a narrow chart keeps the legend, drops the figures
            title = self._title(lines, restarts, dim, None, values=len(lines) == 1)
        self.query_one(".chart-title", Static).update(title)

    def _title(self, lines: Sequence[ChartLine], restarts: Sequence[float], dim: bool,
               ceiling: float | None, *, values: bool) -> Text:
        title = Text(self.title, style=DIM_STYLE if dim else "bold")
        for line in lines:
            # A labelled line's label, in its colour, is its legend; else a stroke of it.
            title.append(f" {line.label or '━'}", style=DIM_STYLE if dim else line.color)
            if values:
                latest = next((v for v in reversed(line.values) if math.isfinite(v)), None)
                title.append(f" {'—' if latest is None else self.fmt(latest)}",
                             style=DIM_STYLE if dim else "bold")
        if ceiling:
            title.append(f"  limit {self.fmt(ceiling)}", style=DIM_STYLE)
        if restarts:
            title.append(" │", style=RESTART_COLOR)
            title.append("restart", style="grey70")
        return title
