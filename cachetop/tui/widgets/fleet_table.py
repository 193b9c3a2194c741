"""Provides FleetTable: the fleet DataTable, updated in place, cell by changed cell."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from cachetop.tui.rows import COLUMNS, NameCell, Row

# No cell padding (it would cost 32 columns): each column is one wider than its widest value,
# so right-aligned figures always keep a space from their left neighbour. 135 columns in all.
WIDTHS = {"name": 21, "kind": 6, "status": 14, "ops": 8, "hit": 7, "p50": 8, "p95": 8,
          "p99": 8, "src": 6, "mem": 8, "limit": 8, "mem_pct": 5, "evict": 8, "exp": 7,
          "conn": 6, "keys": 7}


def _same(a: Text, b: Text) -> bool:
    # rich's Text.__eq__ ignores the base style: a row turning grey must still be redrawn.
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class FleetTable(DataTable[Text]):
    """Rows keyed by target name. A refresh updates only the cells whose text changed and
    re-sorts only when the order changed; a rebuild happens only when rows come or go."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, cell_padding=0, **kwargs)  # type: ignore[arg-type]
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._order: list[str] = []
        self._sort_label = ""

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, width=WIDTHS[key], key=key)

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:  # noqa: BLE001 - an empty or shrinking table has no selection
            return None
        return row_key.value

    def show_rows(self, rows: Sequence[Row]) -> None:
        keys = [r.key for r in rows]
        for r in rows:
            name = r.cells[0]
            if isinstance(name, NameCell):
                name.row_key = r.key
        if set(keys) != set(self._cells):
            self._rebuild(rows)
            return
        for r in rows:
            old = self._cells[r.key]
            for column, (new, before) in enumerate(zip(r.cells, old, strict=True)):
                if not _same(new, before):
                    self.update_cell(r.key, COLUMNS[column][0], new)
            self._cells[r.key] = r.cells
        if keys != self._order:
            index = {key: i for i, key in enumerate(keys)}
            self.sort("name", key=lambda cell: index.get(getattr(cell, "row_key", ""), 0))
            self._order = keys

    def _rebuild(self, rows: Sequence[Row]) -> None:
        selected = self.selected_key
        scroll_y = self.scroll_y
        self.clear()
        for r in rows:
            self.add_row(*r.cells, key=r.key)
        self._cells = {r.key: r.cells for r in rows}
        self._order = [r.key for r in rows]
        if selected in self._cells:
            self.move_cursor(row=self._order.index(selected), animate=False)
        self.scroll_y = scroll_y

    def set_sort_marker(self, column: str | None, reverse: bool) -> None:
        """Show ▲/▼ on the sorted column's header."""
        for key, label in COLUMNS:
            col = self.columns.get(key)  # type: ignore[call-overload]
            if col is None:
                continue
            marker = ("▼" if reverse else "▲") if key == column else ""
            col.label = Text(label + marker)
        self.refresh()
