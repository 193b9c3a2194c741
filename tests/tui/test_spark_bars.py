"""SparkBars draws what Textual's Sparkline draws: the same character and colour in every cell,
for any data, width and height (the oracle is Textual's own renderable, rendered by Rich)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rich.color import Color
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual.renderables.sparkline import Sparkline as SparklineRenderable

from cachetop.tui.widgets.spark_bars import bar_lines

LOW, HIGH = Color.from_rgb(20, 60, 90), Color.from_rgb(230, 120, 10)
BASE = Style(color="white", bgcolor=Color.from_rgb(30, 30, 30))


def _cells(lines: list[list[Segment]]) -> list[list[tuple[str, Style | None]]]:
    return [[(ch, seg.style) for seg in line for ch in seg.text] for line in lines]


def _textual(data: list[float], width: int, height: int) -> list[list[Segment]]:
    console = Console(width=width, color_system="truecolor", legacy_windows=False)
    renderable = SparklineRenderable(data, width=width, height=height, min_color=LOW,
                                     max_color=HIGH)
    segments = console.render(renderable, console.options.update(width=width))
    lines = list(Segment.split_lines(segments))
    return [list(Segment.apply_style(line, BASE)) for line in lines]


values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(st.lists(values, max_size=150), st.integers(1, 60), st.integers(1, 3))
def test_the_same_cells_as_textuals_sparkline(data: list[float], width: int,
                                              height: int) -> None:
    mine = _cells(bar_lines(data, width, height, LOW, HIGH, BASE))
    theirs = _cells(_textual(data, width, height))
    if not data:  # Textual leaves the lines above the bottom one empty; they are padded
        theirs = [line or [(" ", BASE)] * width for line in theirs]
    assert mine == theirs


def test_a_known_series_draws_rising_bars() -> None:
    """0..7 over 8 cells, one line: each cell one bar higher, the last in the high colour."""
    (line,) = bar_lines([float(v) for v in range(8)], 8, 1, LOW, HIGH, BASE)
    assert "".join(seg.text for seg in line) == "▁▂▃▄▅▆▇█"
    assert line[-1].style == BASE + Style(color=HIGH)
