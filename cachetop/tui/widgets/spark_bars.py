"""Provides SparkBars: Textual's Sparkline, drawn as lines of segments computed once per data.

Why not Textual's own: its renderable goes through Rich and Textual's visual pipeline at every
redraw, bar by bar (a blended Color and a Style per bar and row). The fleet header's four
sparklines took 3-9 ms of a 1,000-row refresh's 16-25 ms of UI time (bench/tui.py with and
without them), once per interval. This subclass keeps the widget (its CSS, component colours,
reactive `data`) and draws the same characters in the same colours through the Line API: the
bars are worked out once per new data, size or style, and each line is a cached Strip.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.renderables._blend_colors import blend_colors
from textual.renderables.sparkline import Sparkline as SparklineRenderable
from textual.strip import Strip
from textual.widgets import Sparkline

# Textual's own bars, buckets and colour blend: the cells must stay the ones it draws
# (tests/tui/test_spark_bars.py compares them with its renderable's).
BARS = SparklineRenderable.BARS


def bar_lines(data: Sequence[float], width: int, height: int, low: Color, high: Color,
              base: Style) -> list[list[Segment]]:
    """The segments of each line, top first, as textual.renderables.sparkline.Sparkline
    (summary: max) yields them, each under `base` (the widget's own style)."""
    height = max(1, height)
    if not data:
        blank = [Segment(" " * width, base)]
        return [blank for _ in range(height - 1)] + [[Segment("▁" * width,
                                                             base + Style(color=low))]]
    if len(data) == 1:
        return [[Segment("█" * width, base + Style(color=high))] for _ in range(height)]
    segments_per_line = len(BARS)
    bar_segments = segments_per_line * height - 1
    minimum, maximum = min(data), max(data)
    extent = maximum - minimum or 1
    summaries = [max(b) for b in SparklineRenderable._buckets(list(data), width)]
    styles: dict[float, Style] = {}
    bars = []  # per drawn bar: (bar index, its style)
    step = len(summaries) / width
    index = 0.0
    for _ in range(width):
        ratio = (summaries[int(index)] - minimum) / extent
        style = styles.get(ratio)
        if style is None:
            style = styles[ratio] = base + Style(color=blend_colors(low, high, ratio))
        bars.append((int(ratio * bar_segments), style))
        index += step
    lines = []
    for row in reversed(range(height)):
        floor, top = row * segments_per_line, (row + 1) * segments_per_line
        line = []
        for bar_index, style in bars:
            if bar_index < floor:
                line.append(Segment(" ", base))
            elif bar_index >= top:
                line.append(Segment("█", style))
            else:
                line.append(Segment(BARS[bar_index % segments_per_line], style))
        lines.append(line)
    return lines


class SparkBars(Sparkline):
    """A Sparkline whose lines are computed once per data, size and style."""

    def __init__(self, data: Sequence[float] | None = None, **kwargs: object) -> None:
        super().__init__(data, **kwargs)  # type: ignore[arg-type]
        self._lines: tuple[object, list[Strip]] | None = None

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines = None

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (self.data, width, height)
        if self._lines is None or self._lines[0] != key:
            self._lines = (key, self._strips(width, height))
        strips = self._lines[1]
        return strips[y] if 0 <= y < len(strips) else Strip.blank(width, self.rich_style)

    def _strips(self, width: int, height: int) -> list[Strip]:
        if width <= 0 or height <= 0:
            return []
        _, background = self.background_colors
        low = background + (self.min_color if self.min_color is not None
                            else self.get_component_styles("sparkline--min-color").color)
        high = background + (self.max_color if self.max_color is not None
                             else self.get_component_styles("sparkline--max-color").color)
        base = self.rich_style
        return [Strip(line, width) for line in bar_lines(
            list(self.data or []), width, height, low.rich_color, high.rich_color, base)]
