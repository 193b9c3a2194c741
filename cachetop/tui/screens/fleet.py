"""Provides FleetScreen: the fleet header, the live table, the filter, the selection's reason."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from cachetop.config import Thresholds
from cachetop.events.model import Event
from cachetop.fleet import FleetSnapshot
from cachetop.text_safety import plain
from cachetop.tui.layout import View, fleet_rows
from cachetop.tui.rows import COLUMN_KEYS
from cachetop.tui.widgets.events_strip import EventsStrip
from cachetop.tui.widgets.fleet_header import FleetHeader
from cachetop.tui.widgets.fleet_table import FleetTable
from cachetop.tui.widgets.instance_tiles import age, clock


class FleetScreen(Screen[None]):
    """One row per target (and per cache of an endpoint); enter drills down."""

    BINDINGS = [
        Binding("enter", "open", "Drill down", id="fleet.open"),
        Binding("slash", "filter", "Filter", id="fleet.filter"),
        Binding("s", "sort(1)", "Sort", id="fleet.sort_next"),
        Binding("S", "sort(-1)", "Sort back", show=False, id="fleet.sort_prev"),
        Binding("r", "reverse", "Reverse", show=False, id="fleet.reverse"),
        Binding("g", "group", "Group", id="fleet.group"),
        Binding("l", "latency", "Latency src", id="fleet.latency"),
        Binding("e", "events", "Events", id="fleet.events"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="fleet.clear"),
        Binding("f", "act('flush')", "Flush keys", id="fleet.flush_keys"),
        Binding("F", "act('flushdb')", "Flush db", show=False, id="fleet.flush_db"),
        Binding("t", "act('tags')", "Tags", show=False, id="fleet.tags"),
        Binding("d", "act('delete')", "Delete key", show=False, id="fleet.delete_key"),
    ]

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__()
        self.thresholds = thresholds
        self.view = View()
        self._snap: FleetSnapshot | None = None
        self._events: Sequence[Event] = ()

    def compose(self) -> ComposeResult:
        yield FleetHeader(id="fleet-header")
        yield FleetTable(id="fleet-table")
        yield EventsStrip(id="events-strip")
        yield Static(id="selection")
        yield Input(placeholder="filter: name, kind, group, status or address", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(FleetTable).focus()
        source = getattr(self.app, "source", None)
        if source is not None:
            self.query_one(FleetHeader).seed(source.fleet_history())
        if self._snap is not None:
            self.query_one(FleetHeader).show(self._snap)
            self._redraw()
        self.query_one(EventsStrip).show_events(self._events)

    @property
    def table(self) -> FleetTable:
        return self.query_one(FleetTable)

    def show_fleet(self, snap: FleetSnapshot, *, new_interval: bool, paused: bool) -> None:
        """Place a new snapshot: header figures, table cells, the selection's line."""
        self._snap = snap
        if not self.is_mounted:
            return  # on_mount draws it
        header = self.query_one(FleetHeader)
        if new_interval:
            header.record(snap)
        header.show(snap, paused=paused)
        self._redraw()

    def show_events(self, events: Sequence[Event]) -> None:
        """The latest events in the strip under the table."""
        self._events = events
        if self.is_mounted:
            self.query_one(EventsStrip).show_events(events)

    def action_events(self) -> None:
        self.app.open_events()  # type: ignore[attr-defined]

    def _redraw(self) -> None:
        if self._snap is None:
            return
        self.table.show_rows(fleet_rows(self._snap, self.view, self.thresholds))
        self.table.set_sort_marker(self.view.sort_column, self.view.reverse)
        self._show_selection()

    def _show_selection(self) -> None:
        key = self.table.selected_key
        line = Text()
        if self._snap is not None and key is not None:
            name = key.split("\x00")[0]
            target = next((t for t in self._snap.targets if t.name == name), None)
            if target is not None:
                line.append(plain(target.name), style="bold")
                line.append(f"  {target.kind} {plain(target.address)}", style="grey70")
                if target.version:
                    line.append(f"  v{plain(target.version)}", style="grey70")
                if target.error:
                    line.append(f"  {target.status}: {plain(target.error, 200)}",
                                style="red" if not target.live else "yellow")
                if not target.live:
                    now = time.time()
                    seen = ("never up" if target.last_success is None else
                            f"last success {clock(target.last_success)}")
                    line.append(f"  for {age(now - target.status_since)}, {seen}",
                                style="grey70")
                for reason in target.degraded:
                    line.append(f"  ⚠ {plain(reason, 120)}", style="yellow")
        if self.view.needle:
            line.append(f"   filter: {plain(self.view.needle)}", style="bold cyan")
        self.query_one("#selection", Static).update(line)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selection()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_key.value
        if column == self.view.sort_column:
            self.view = replace(self.view, reverse=not self.view.reverse)
        else:
            self.view = replace(self.view, sort_column=column, reverse=column != "name")
        self._redraw()

    def action_open(self) -> None:
        key = self.table.selected_key
        if key is None or key.startswith("\x01group"):
            return
        self.app.open_instance(key.split("\x00")[0])  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and self.table.selected_key is None:
            return None  # greyed out: nothing selected
        return True

    def action_act(self, kind: str) -> None:
        key = self.table.selected_key
        if key is None or key.startswith("\x01group"):
            return
        self.app.open_action(kind, key.split("\x00")[0])  # type: ignore[attr-defined]

    def action_sort(self, step: int) -> None:
        columns = (None, *COLUMN_KEYS)
        index = columns.index(self.view.sort_column) if self.view.sort_column in columns else 0
        column = columns[(index + step) % len(columns)]
        # Figures sort largest first: the row that needs attention comes to the top.
        self.view = replace(self.view, sort_column=column,
                            reverse=column not in (None, "name", "kind", "status", "hit"))
        self._redraw()

    def action_reverse(self) -> None:
        self.view = replace(self.view, reverse=not self.view.reverse)
        self._redraw()

    def action_group(self) -> None:
        self.view = replace(self.view, grouped=not self.view.grouped)
        self._redraw()

    def action_latency(self) -> None:
        self.view = replace(self.view, probe_only=not self.view.probe_only)
        self.notify("latency: probe round trips for every row" if self.view.probe_only
                    else "latency: server-side where known, else probe", timeout=3)
        self._redraw()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.view = replace(self.view, needle=event.value.strip())
        self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#filter", Input).display = False
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.view = replace(self.view, needle="")
        self.table.focus()
        self._redraw()
