"""Provides FleetTable: the fleet table as a Line API widget that paints only the rows on screen.

Textual's DataTable keeps and measures every cell of every row: 1,000 rows cost hundreds of ms of
UI CPU per refresh (bench/README.md). Here the row model (cachetop.tui.table_model) is computed
once per snapshot, and a frame asks `render_line` for the ~40 visible lines only; each line's
cells are made then and its Strip kept until the next model, width or cursor move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cachetop.tui.table_model import Column, TableModel, TableRow, columns_for

CellMaker = Callable[[TableRow], Mapping[str, Text]]


class _Keys(Mapping[str, int]):
    """`key in table.rows`: the row model's keys (a DataTable-like view for callers)."""

    def __init__(self, model: TableModel) -> None:
        self._index = model.index

    def __getitem__(self, key: str) -> int:
        return self._index[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class FleetTable(ScrollView, can_focus=True):
    """One line per row of the model under a fixed header; the cursor follows its row's key
    across re-sorts and keeps its place on screen."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]
    COMPONENT_CLASSES = {"fleet-table--header", "fleet-table--cursor", "fleet-table--empty"}
    DEFAULT_CSS = """
    FleetTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        & > .fleet-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .fleet-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .fleet-table--empty { color: $text-muted; }
        &:focus {
            background-tint: $foreground 5%;
            & > .fleet-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    class Highlighted(Message):
        """The cursor is on another row (or the row under it changed identity)."""

        def __init__(self, key: str | None) -> None:
            super().__init__()
            self.key = key

    class Selected(Message):
        """A click on the highlighted row (Enter is the screen's: it names it in the footer)."""

        def __init__(self, row: TableRow) -> None:
            super().__init__()
            self.row = row

    class HeaderClicked(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def on_key(self, event: events.Key) -> None:
        """Keys typed right after `/` (a paste, a fast typist) reach this table before the
        filter's line is open and focused (the screen's `/` binding runs once the key has
        bubbled up, maybe after the keys queued behind it): they are the filter's, so the `e`
        of `redis` filters instead of opening the events, and Enter applies it. Before the
        line is open they wait here (take_typed_ahead); after, they go straight to it."""
        if event.key == "slash":
            self._to_filter = True  # the screen opens the filter once this key bubbles up
            self._typed_ahead, self._enter_ahead = "", False
            return
        if not self._to_filter or event.key == "escape":
            self._to_filter = False
            return
        from textual.widgets import Input

        box = next(iter(self.screen.query("#filter")), None) if self.is_mounted else None
        is_open = isinstance(box, Input) and box.display
        if event.key == "enter":
            if is_open:
                box.post_message(Input.Submitted(box, box.value))  # type: ignore[union-attr]
                self._to_filter = False
            else:
                self._enter_ahead = True
        elif event.key == "backspace":
            if is_open:
                box.action_delete_left()  # type: ignore[union-attr]
            else:
                self._typed_ahead = self._typed_ahead[:-1]
        elif event.is_printable and event.character is not None:
            if is_open:
                box.insert_text_at_cursor(event.character)  # type: ignore[union-attr]
            else:
                self._typed_ahead += event.character
        else:
            return
        event.stop()
        event.prevent_default()

    def take_typed_ahead(self) -> tuple[str, bool]:
        """What was typed after `/` before the filter's line opened, and whether Enter was."""
        typed = (self._typed_ahead, self._enter_ahead)
        self._typed_ahead, self._enter_ahead = "", False
        if typed[1]:
            self._to_filter = False
        return typed

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._to_filter = False  # keys after `/` are the filter's (on_key)
        self._typed_ahead, self._enter_ahead = "", False
        self._model = TableModel()
        self._cells: CellMaker = lambda row: {}
        self._cursor = 0
        # A painted line per row key, with what it was painted from: the engine hands over
        # the same figures object for a target that did not change, so a refresh repaints
        # only the rows whose figures are new (or the cursor's, or after a resize).
        self._painted: dict[str, tuple[object, object, bool, object, Strip]] = {}
        self._paint_context: object = None
        self._header: Strip | None = None
        self._columns: tuple[Column, ...] = ()
        self._columns_for: tuple[int, int, bool] = (-1, -1, False)
        self._sort: tuple[str | None, bool] = (None, False)
        self.empty_text = ""
        self._style: Style | None = None  # the widget's own rich style, until CSS changes
        self._styles: dict[str, Style] = {}

    # -- what callers read --------------------------------------------------------------------

    @property
    def model(self) -> TableModel:
        return self._model

    @property
    def rows(self) -> Mapping[str, int]:
        return _Keys(self._model)

    @property
    def row_count(self) -> int:
        return len(self._model)

    @property
    def cursor_row(self) -> int:
        return self._cursor if self._model.rows else -1

    @property
    def selected_row(self) -> TableRow | None:
        rows = self._model.rows
        return rows[self._cursor] if 0 <= self._cursor < len(rows) else None

    @property
    def selected_key(self) -> str | None:
        row = self.selected_row
        return row.key if row is not None else None

    @property
    def columns(self) -> tuple[Column, ...]:
        return self._visible_columns()

    def get_row_index(self, key: str) -> int:
        return self._model.index[key]

    def get_cell(self, key: str, column: str) -> Text:
        """What the row `key` shows in `column` (whether or not that column fits on screen)."""
        row = self._model.rows[self._model.index[key]]
        return self._cells(row).get(column, Text(""))

    def row_keys(self) -> list[str]:
        return [r.key for r in self._model.rows]

    # -- what callers change ------------------------------------------------------------------

    def show(self, model: TableModel, cells: CellMaker, context: object = None) -> None:
        """Place a new model. The cursor stays on the same key, at the same line on screen
        when it can; with its row gone (filtered out, folded), on the row's parent or at the
        same position. `context`: what the cells depend on beyond a row's own figures (equal
        from one model to the next when the lines already painted still hold)."""
        old = self.selected_row
        on_screen = self._cursor - round(self.scroll_y)
        self._model, self._cells = model, cells
        if context != self._paint_context or len(self._painted) > 4 * max(50, self.size.height):
            self._painted.clear()
        self._paint_context = context
        self._header = None
        index = model.position(old.key) if old is not None else None
        if index is None and old is not None:
            index = model.position(old.parent)
        if index is None:
            index = min(self._cursor, len(model) - 1)
        self._cursor = max(0, index)
        self.virtual_size = Size(self.size.width, len(model) + 1)
        if len(model):
            self.scroll_to(y=max(0, self._cursor - max(0, on_screen)), animate=False,
                           force=True)
            self._scroll_cursor_into_view()
        self.refresh()
        new = self.selected_row
        if (old.key if old else None) != (new.key if new else None) or new is not old:
            self.post_message(self.Highlighted(new.key if new else None))

    def set_sort_marker(self, column: str | None, reverse: bool) -> None:
        """Show ▲/▼ on the sorted column's header."""
        if self._sort != (column, reverse):
            self._sort = (column, reverse)
            self._header = None
            self.refresh_line(0)

    def move_cursor(self, *, row: int) -> None:
        if not self._model.rows:
            return
        row = max(0, min(len(self._model) - 1, row))
        if row == self._cursor:
            return
        old_y = self._cursor + 1
        self._cursor = row
        self.refresh_line(old_y)
        self.refresh_line(row + 1)
        self._scroll_cursor_into_view()
        self.post_message(self.Highlighted(self.selected_key))

    # -- keys and mouse -----------------------------------------------------------------------

    def action_cursor(self, step: int) -> None:
        self.move_cursor(row=self._cursor + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(row=self._cursor + step * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        self.move_cursor(row=len(self._model) - 1 if end else 0)

    def action_select(self) -> None:
        row = self.selected_row
        if row is not None:
            self.post_message(self.Selected(row))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:
            x = 0
            for column in self._visible_columns():
                if x <= offset.x < x + column.width:
                    self.post_message(self.HeaderClicked(column.key))
                    return
                x += column.width
            return
        index = round(self.scroll_y) + offset.y - 1
        if not 0 <= index < len(self._model):
            return
        if index == self._cursor:
            self.action_select()  # a click on the highlighted row opens it, as DataTable did
        else:
            self.move_cursor(row=index)

    def on_resize(self, event: events.Resize) -> None:
        self._painted.clear()
        self._header = None
        self.virtual_size = Size(event.size.width, len(self._model) + 1)

    def on_focus(self) -> None:
        self._to_filter = False  # back from the filter: keys are the table's again
        self._painted.clear()

    def on_blur(self) -> None:
        self._painted.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._painted.clear()
        self._header = None
        self._style = None

    # -- painting -----------------------------------------------------------------------------

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.size.height - 1)  # the header takes the first line
        top = round(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, force=True)

    def _visible_columns(self) -> tuple[Column, ...]:
        wanted = (self.size.width, self._model.view.column_set, self._model.has_replicas)
        if wanted != self._columns_for:
            self._columns_for = wanted
            self._columns = columns_for(wanted[0], wanted[1], has_replicas=wanted[2])
        return self._columns

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            if self._header is None:
                self._header = self._header_strip(width)
            return self._header
        index = round(self.scroll_y) + y - 1
        rows = self._model.rows
        if index >= len(rows):
            if index == 0 and self.empty_text:
                style = self.get_component_rich_style("fleet-table--empty")
                return self._strip(Text(" " + self.empty_text, style=style), width,
                                   self._base_style())
            return Strip.blank(width, self._base_style())
        row, cursor = rows[index], index == self._cursor
        paint = (width, self._visible_columns(), row.collapsed)
        line = self._painted.get(row.key)
        if (line is not None and line[0] is row.figures and line[1] is row.totals
                and line[2] == cursor and line[3] == paint):
            return line[4]
        strip = self._row_strip(row, cursor, width)
        self._painted[row.key] = (row.figures, row.totals, cursor, paint, strip)
        return strip

    def _base_style(self) -> Style:
        if self._style is None:
            self._style = self.rich_style
        return self._style

    def _style_of(self, style: str | Style) -> Style:
        if isinstance(style, Style):
            return style
        found = self._styles.get(style)
        if found is None:
            found = self.app.console.get_style(style, default=Style.null()) if style else \
                Style.null()
            self._styles[style] = found
        return found

    def _strip(self, line: Text, width: int, style: Style) -> Strip:
        segments = list(line.render(self.app.console, end=""))
        return Strip(segments, line.cell_len).crop_extend(0, width, None).apply_style(style)

    def _header_strip(self, width: int) -> Strip:
        column, reverse = self._sort
        line = Text(no_wrap=True, end="")
        for c in self._visible_columns():
            label = c.label + (("▼" if reverse else "▲") if c.key == column else "")
            line.append_text(_fit(Text(label), c))
        return self._strip(line, width, self._base_style()
                           + self.get_component_rich_style("fleet-table--header"))

    def _row_strip(self, row: TableRow, cursor: bool, width: int) -> Strip:
        """One row's line. A cell of one style (most of them) becomes one segment, padded
        here; a cell with spans or too long for its column goes through rich."""
        cells = self._cells(row)
        segments: list[Segment] = []
        used = 0
        blank = _BLANK
        for c in self._visible_columns():
            cell = cells.get(c.key, blank)
            room = c.width - 1
            text = cell.plain
            length = cell_len(text)
            if cell.spans or length > room:
                fitted = _fit(cell, c)
                segments.extend(fitted.render(self.app.console, end=""))
            else:
                pad = " " * (room - length)
                segments.append(Segment((pad + text if c.right else text + pad) + " ",
                                        self._style_of(cell.style)))
            used += c.width
        style = self._base_style()
        if cursor:
            style = style + self.get_component_rich_style("fleet-table--cursor")
        return Strip(segments, used).crop_extend(0, width, None).apply_style(style)


_BLANK = Text("")


def _fit(cell: Text, column: Column) -> Text:
    """The cell cut (with an ellipsis) or padded to its column's width less one: every column
    ends with a blank, so no value runs into its neighbour's."""
    text = cell.copy()
    text.truncate(column.width - 1, overflow="ellipsis")
    gap = column.width - 1 - text.cell_len
    if gap > 0:
        if column.right:
            text.pad_left(gap)
        else:
            text.pad_right(gap)
    text.append(" ")
    return text
