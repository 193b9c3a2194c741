"""Provides the building blocks of the instance screen's detail tabs.

DetailPane (a widget that shows one target's figures), sync_rows (DataTable rows updated in
place), kv_table (a titled key/value table) and RawView (raw lines filtered by a substring).
Every server string goes through plain() into rich Text; nothing is parsed as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from cachetop.fleet import TargetFigures
from cachetop.text_safety import plain

RAW_MAX_LINES = 5000
_UNSET = object()


class DetailPane(Vertical):
    """A detail tab's content. `show()` runs on every snapshot: skip work when nothing changed
    (the detail is refreshed every ~10 s; compare it by identity)."""

    DEFAULT_CSS = """
    DetailPane { height: 1fr; }
    DetailPane > .pane-note { height: auto; padding: 0 1; color: $text-muted; }
    DetailPane > DataTable { height: 1fr; }
    DetailPane > VerticalScroll { height: 1fr; padding: 0 1; }
    """

    COLUMNS: tuple[tuple[str, str], ...] = ()  # (key, label) of the pane's DataTable, if any

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self._detail: object = _UNSET

    def show(self, figures: TargetFigures) -> None:
        raise NotImplementedError

    def detail_changed(self, figures: TargetFigures) -> bool:
        """True once per new detail object (the collector replaces it on each refresh)."""
        if figures.detail is self._detail:
            return False
        self._detail = figures.detail
        return True

    def table(self) -> DataTable[Text]:
        table: DataTable[Text] = self.query_one(DataTable)
        if not table.columns:
            add_columns(table, self.COLUMNS)
        return table

    def note(self, text: Text) -> None:
        self.query_one(".pane-note", Static).update(text)


def sync_rows(table: DataTable[Text], rows: Sequence[tuple[str, Sequence[Text]]]) -> None:
    """Make `table` show `rows` (key, cells): cells updated in place while the keys and their
    order are unchanged, else rebuilt keeping the cursor on the same row key."""
    keys = [key for key, _ in rows]
    current = [row_key.value for row_key in table.rows]
    columns = list(table.columns)
    if keys == current:
        for key, cells in rows:
            for column, cell in zip(columns, cells, strict=False):
                old = table.get_cell(key, column)
                if not isinstance(old, Text) or old.plain != cell.plain or old.style != cell.style:
                    table.update_cell(key, column, cell, update_width=True)
        return
    selected = current[table.cursor_row] if 0 <= table.cursor_row < len(current) else None
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if selected in keys:
        table.move_cursor(row=keys.index(selected))


def add_columns(table: DataTable[Text], columns: Iterable[tuple[str, str]]) -> None:
    for key, label in columns:
        table.add_column(Text(label, style="bold"), key=key)


def num(value: float | None, fmt: str = "{:.0f}", style: str = "") -> Text:
    """A right-aligned figure; None is a dash."""
    return Text("—" if value is None else fmt.format(value), style=style, justify="right")


def kv_table(title: str, rows: Iterable[tuple[str, str | Text]]) -> Table:
    """A titled two-column table; string values are escaped server text."""
    table = Table(title=Text(title, style="bold"), title_justify="left", show_header=False,
                  box=None, padding=(0, 1), expand=False)
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(Text(plain(label, 80)), value if isinstance(value, Text)
                      else Text(plain(value, 400)))
    return table




class TablePane(DetailPane):
    """A detail pane that is a one-line note over a DataTable of COLUMNS."""

    def compose(self) -> ComposeResult:
        yield Static(classes="pane-note")
        yield DataTable(cursor_type="row", zebra_stripes=True)

class RawView(DetailPane):
    """Raw lines of the detail with a substring filter: type to keep the lines containing it."""

    DEFAULT_CSS = """
    RawView > Input { height: 3; }
    RawView > .raw-count { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, lines_of: Callable[[Any], Iterable[str]], placeholder: str, *,
                 id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, classes="raw-view")
        self.lines_of = lines_of
        self.placeholder = placeholder
        self._lines: list[str] = []

    def show(self, figures: TargetFigures) -> None:
        if not self.detail_changed(figures):
            return
        self.set_lines(self.lines_of(figures.detail) if figures.detail is not None else [])

    def compose(self) -> ComposeResult:
        yield Input(placeholder=self.placeholder, classes="raw-filter")
        yield Static(classes="raw-count")
        with VerticalScroll():
            yield Static(classes="raw-lines")

    def set_lines(self, lines: Iterable[str]) -> None:
        """Replace the lines (escaped here) and re-apply the filter."""
        self._lines = [plain(line, 2000) for line in list(lines)[:RAW_MAX_LINES]]
        self._render_lines()

    def focus_filter(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._render_lines()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(VerticalScroll).focus()

    def _render_lines(self) -> None:
        needle = self.query_one(Input).value
        text, shown = filtered(self._lines, needle)
        total = len(self._lines)
        count = f"{shown} of {total} lines match {needle!r}" if needle else f"{total} lines"
        self.query_one(".raw-count", Static).update(Text(count))
        self.query_one(".raw-lines", Static).update(text)


def filtered(lines: Sequence[str], needle: str) -> tuple[RenderableType, int]:
    """The lines containing `needle` (case-insensitive), matches highlighted, and their count."""
    out = Text(no_wrap=True)
    low = needle.lower()
    shown = 0
    for line in lines:
        if low and low not in line.lower():
            continue
        start = len(out)
        out.append(line + "\n")
        shown += 1
        if low:
            at = line.lower().find(low)
            while at >= 0:
                out.stylize("bold black on yellow", start + at, start + at + len(low))
                at = line.lower().find(low, at + len(low))
    out.rstrip()
    return out, shown
