"""Provides EventsScreen: every event the session has seen, newest first, filterable by
target; enter opens the event's target."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from cachetop.events.model import Event
from cachetop.formatting import clock
from cachetop.text_safety import plain
from cachetop.tui.widgets.events_strip import kind_style

SHOWN = 2000  # rows in the table; the log holds more, the newest are what is looked for


def matches(event: Event, needle: str) -> bool:
    """The filter is on the target's name (a substring, any case)."""
    return not needle or needle.lower() in event.target.lower()


class EventsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="events.back"),
        Binding("slash", "filter", "Filter by target", id="events.filter"),
        Binding("enter", "open", "Open target", id="events.open"),
    ]

    def __init__(self, events: Sequence[Event], needle: str = "") -> None:
        super().__init__()
        self.events = list(events)
        self.needle = needle
        self._shown = -1

    def compose(self) -> ComposeResult:
        yield Static(id="events-title")
        yield DataTable(id="events-table", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter: target name", id="events-filter")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("TIME", key="time")
        table.add_column("TARGET", key="target")
        table.add_column("KIND", key="kind")
        table.add_column("WHAT", key="text")
        box = self.query_one("#events-filter", Input)
        box.value = self.needle
        box.display = bool(self.needle)
        table.focus()
        self._redraw()

    def show_events(self, events: Sequence[Event]) -> None:
        self.events = list(events)
        if self.is_mounted and (not self.events or self.events[-1].seq != self._shown):
            self._redraw()

    def _redraw(self) -> None:
        table = self.query_one(DataTable)
        shown = [e for e in reversed(self.events) if matches(e, self.needle)][:SHOWN]
        self._shown = self.events[-1].seq if self.events else -1
        table.clear()
        for e in shown:
            table.add_row(Text(clock(e.time), style="grey70"),
                          Text(plain(e.target or "fleet", 60), style="bold"),
                          Text(e.kind, style=kind_style(e)), Text(plain(e.text, 300)),
                          key=str(e.seq))
        title = Text(f"events: {len(shown)}", style="bold")
        if self.needle:
            title.append(f"   target filter: {plain(self.needle)}", style="bold cyan")
        title.append("   newest first; / filters by target, enter opens it (replay: goes "
                     "to its time)", style="grey50")
        self.query_one("#events-title", Static).update(title)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_filter(self) -> None:
        box = self.query_one("#events-filter", Input)
        box.display = True
        box.focus()

    def selected(self) -> Event | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0))[0].value  # type: ignore[arg-type]
        return next((e for e in self.events if str(e.seq) == key), None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        event = self.selected()
        if event is not None:
            self.app.open_event(event)  # type: ignore[attr-defined]

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            if not self.needle:
                self.query_one("#events-filter", Input).display = False
            self.query_one(DataTable).focus()
            return
        self.app.pop_screen()
