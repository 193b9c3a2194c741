"""Provides FleetScreen: the fleet header, the live table, the filter, the selection's reason."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from cachetop.formatting import age, clock
from cachetop.text_safety import plain
from cachetop.tui.table_model import (
    COLUMN_SETS,
    TableModel,
    TableRow,
    View,
    build_model,
    matches,
)
from cachetop.tui.widgets.events_strip import EventsStrip
from cachetop.tui.widgets.fleet_header import FleetHeader
from cachetop.tui.widgets.fleet_table import FleetTable

# The first frame waits for every module imported here (issue 11): the figures, the rows'
# cells and the config load with the first snapshot shown, after it.
if TYPE_CHECKING:
    from cachetop.config import Thresholds
    from cachetop.events.model import Event
    from cachetop.fleet import FleetSnapshot, TargetFigures
    from cachetop.tui.rows import Cells

LOADING = "reading the config…"


def _loopback(address: str) -> str:
    """host:port with every loopback name spelled one way (a replica often names its master
    `localhost` where the config says 127.0.0.1)."""
    host, _, port = address.partition("/")[0].rpartition(":")
    if host in ("localhost", "::1", "[::1]") or host.startswith("127."):
        host = "127.0.0.1"
    return f"{host}:{port}"


def _masters_by_address(targets: Sequence[TargetFigures]) -> dict[str, str]:
    return {_loopback(t.address): t.name for t in targets if t.kind == "redis"}


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
        Binding("c", "columns", "Columns", show=False, id="fleet.columns"),
        Binding("e", "events", "Events", id="fleet.events"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="fleet.clear"),
        Binding("f", "act('flush')", "Flush keys", id="fleet.flush_keys"),
        Binding("F", "act('flushdb')", "Flush db", show=False, id="fleet.flush_db"),
        Binding("t", "act('tags')", "Tags", show=False, id="fleet.tags"),
        Binding("d", "act('delete')", "Delete key", show=False, id="fleet.delete_key"),
    ]

    def __init__(self, thresholds: Thresholds | None,
                 badges: Mapping[str, str] | None = None) -> None:
        """`badges`: a protection badge (`prod`, `ro`) per target name, shown on its row.
        No `thresholds`: the config is being read (the first frame says so); configure()
        gives them."""
        super().__init__()
        self.thresholds = thresholds
        self.badges = dict(badges or {})
        self._events: Sequence[Event] = ()
        self.view = View()
        self._snap: FleetSnapshot | None = None
        self._paused = False
        self._model: tuple[int, View] | None = None  # what the table's model was built from
        self._names: tuple[FleetSnapshot, dict[str, TargetFigures]] | None = None

    def compose(self) -> ComposeResult:
        loading = self.thresholds is None
        yield FleetHeader(id="fleet-header", message=LOADING if loading else "")
        table = FleetTable(id="fleet-table")
        table.empty_text = LOADING if loading else ""
        yield table
        if not loading:  # else with the config (configure): the first frame has no use for them
            yield from self._lines_under_the_table()
        # The footer and the filter's Input are mounted after the first frame (_after_first).

    @staticmethod
    def _lines_under_the_table() -> tuple[Static, EventsStrip, Static]:
        return Static(id="events"), EventsStrip(id="events-strip"), Static(id="selection")

    def configure(self, thresholds: Thresholds, badges: Mapping[str, str]) -> None:
        """The config's thresholds and badges, once it is read (after the first frame)."""
        self.thresholds = thresholds
        self.badges = dict(badges)
        self._model = None
        if self.is_mounted and not self.query(EventsStrip):
            self.mount(*self._lines_under_the_table())
            self.show_events(self._events)
            # The rows' first frame first, then what else waited for it.
            self.set_timer(0.2, self._after_first)

    def on_mount(self) -> None:
        self.query_one(FleetTable).focus()
        if self.thresholds is None:
            return  # the config is being read: configure() does the rest
        self.call_after_refresh(self._after_first)
        source = getattr(self.app, "source", None)
        if source is not None:
            self.query_one(FleetHeader).seed(source.fleet_history())
        if self._snap is not None:
            self._show_header()
            self._redraw()
        self.query_one(EventsStrip).show_events(self._events)

    def _after_first(self) -> None:
        """What the first frame does without (issue 11): the sparklines, the keys' footer
        (~7 ms of that frame), the filter's line."""
        self.query_one(FleetHeader).add_sparks()
        if not self.query(Footer):
            # A footer draws its keys when the screen's bindings change: say they did.
            self.mount(Footer())
            self.call_after_refresh(self.refresh_bindings)
        if self._filter_box() is None:
            self.mount(self._new_filter_box())

    @staticmethod
    def _new_filter_box() -> Input:
        box = Input(placeholder="filter: name, kind, group, status or address", id="filter")
        box.display = False
        return box

    def show_events(self, events: Sequence[Event]) -> None:
        """The latest events in the strip under the table."""
        self._events = events
        for strip in self.query(EventsStrip).results(EventsStrip):  # none while loading
            strip.show_events(events)

    def action_events(self) -> None:
        self.app.open_events()  # type: ignore[attr-defined]

    @property
    def table(self) -> FleetTable:
        return self.query_one(FleetTable)

    def show_fleet(self, snap: FleetSnapshot, *, new_interval: bool, paused: bool) -> None:
        """Place a new snapshot: header figures, table cells, the selection's line."""
        self._snap = snap
        if not self.is_mounted or not self.query(FleetTable):
            return  # on_mount draws it (the table is not there while mounting or unmounting)
        header = self.query_one(FleetHeader)
        if new_interval:
            header.record(snap)
        self._paused = paused
        self._show_header()
        self._show_events(snap)
        self._redraw()

    def _show_header(self) -> None:
        """The fleet's totals, or, while a filter is on, those of the rows it leaves."""
        if self._snap is None:
            return
        needle = self.view.needle
        self.query_one(FleetHeader).show(
            self._snap, paused=self._paused,
            shown=[t for t in self._snap.targets if matches(t, needle)
                   or any(matches(c, needle) for c in t.caches)] if needle else None)

    def _show_events(self, snap: FleetSnapshot) -> None:
        """Failovers and other topology changes, one line under the table (hidden if none)."""
        from cachetop.tui.rows import events_line

        line = events_line(snap.targets, time.time())
        # Not there while the config is read, nor while the app shuts down (a refresh timer
        # can fire after the lines under the table are gone and before the table is).
        for events in self.query("#events").results(Static):
            events.set_class(line is not None, "-shown")
            if line is not None:
                events.update(line)

    def _redraw(self) -> None:
        """A new row model when the snapshot or the view changed (sorting, filtering and
        grouping happen here, once); the table then paints only the lines on screen."""
        if self._snap is None:
            return
        built_from = (self._snap.version, self.view)
        table = self.table
        if built_from != self._model or table.model.version != self._snap.version:
            self._model = built_from
            model = build_model(self._snap, self.view)
            table.empty_text = (f"no row matches the filter {plain(self.view.needle, 40)!r}"
                                if self.view.needle else "no targets")
            cells, context = self._cell_maker(model)
            table.show(model, cells, context)
        table.set_sort_marker(self.view.sort_column, self.view.reverse)
        self._show_selection()

    def _cell_maker(self, model: TableModel) -> tuple[Callable[[TableRow], Cells], object]:
        """Cells for the rows the table paints, and what they depend on beyond each row's
        figures (lines painted under the same context are kept). What they need of the whole
        fleet (the masters by address, replicas per master) is worked out here, once."""
        from cachetop.config import Thresholds
        from cachetop.tui.rows import role_text, row_cells

        thresholds = self.thresholds or Thresholds()
        probe_only, badges = self.view.probe_only, self.badges
        masters: dict[str, str] = {}
        replicas: dict[str, int] = {}
        if model.has_replicas and self._snap is not None:
            masters = _masters_by_address(self._snap.targets)
            for t in self._snap.targets:
                master = masters.get(_loopback(t.master_address)) if t.master_address else None
                if master is not None:
                    replicas[master] = replicas.get(master, 0) + 1

        def cells(row: TableRow) -> Cells:
            f = row.figures
            if row.kind != "target" or f is None:
                return row_cells(row, thresholds, probe_only)
            role = (role_text(f, masters.get(_loopback(f.master_address)),
                              replicas.get(f.name, 0)) if model.has_replicas else None)
            return row_cells(row, thresholds, probe_only, role=role,
                             badge=badges.get(f.name, ""))

        context = (probe_only, tuple(sorted(masters.items())), tuple(sorted(replicas.items())))
        return cells, context

    def _show_selection(self) -> None:
        row = self.table.selected_row
        line = Text()
        if row is not None and row.kind == "group" and row.totals is not None:
            line.append(plain(row.label or "(no group)"), style="bold")
            line.append(f"  {row.members} target(s), {row.totals.targets_up} up", style="grey70")
            line.append("  enter: " + ("show its rows" if row.collapsed else "fold it"),
                        style="grey70")
        if self._snap is not None and row is not None and row.target is not None:
            target = self._by_name().get(row.target)
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
        for selection in self.query("#selection").results(Static):  # as #events above
            selection.update(line, layout=False)  # one fixed line

    def on_fleet_table_highlighted(self, event: FleetTable.Highlighted) -> None:
        self._show_selection()

    def on_fleet_table_selected(self, event: FleetTable.Selected) -> None:
        self.action_open()

    def on_fleet_table_header_clicked(self, event: FleetTable.HeaderClicked) -> None:
        column = event.column
        if column == self.view.sort_column:
            self.view = replace(self.view, reverse=not self.view.reverse)
        else:
            self.view = replace(self.view, sort_column=column, reverse=column != "name")
        self._redraw()

    def action_open(self) -> None:
        """Enter: a target's (or cache's) instance screen; on a group row, fold or unfold it."""
        row = self.table.selected_row
        if row is None:
            return
        if row.kind == "group":
            self.view = replace(self.view, collapsed=self.view.collapsed ^ {row.label})
            self._redraw()
            return
        if row.target is not None:
            self.app.open_instance(row.target)  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act" and self.table.selected_key is None:
            return None  # greyed out: nothing selected
        return True

    def action_act(self, kind: str) -> None:
        row = self.table.selected_row
        if row is None or row.target is None:
            return
        self.app.open_action(kind, row.target)  # type: ignore[attr-defined]

    def action_columns(self) -> None:
        """Cycle the column sets (overview, latency, memory): as many columns as fit."""
        column_set = (self.view.column_set + 1) % len(COLUMN_SETS)
        self.view = replace(self.view, column_set=column_set)
        self.notify(f"columns: {COLUMN_SETS[column_set][0]}", timeout=2)
        self._redraw()

    def _by_name(self) -> dict[str, TargetFigures]:
        snap = self._snap
        if snap is None:
            return {}
        if self._names is None or self._names[0] is not snap:
            self._names = (snap, {t.name: t for t in snap.targets})
        return self._names[1]

    def action_sort(self, step: int) -> None:
        columns = (None, *(c.key for c in self.table.columns if c.key != "src"))
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

    def _filter_box(self) -> Input | None:
        """The filter's input line, once mounted (after the first frame)."""
        for box in self.query("#filter").results(Input):
            return box
        return None

    async def action_filter(self) -> None:
        box = self._filter_box()
        if box is None:  # `/` pressed before the first frame was done
            box = self._new_filter_box()
            await self.mount(box)
        box.display = True
        # Focus now, not at the next turn of the loop (Widget.focus): keys typed right after
        # the `/` (a paste) belong to the filter, and `e` would open the events instead.
        self.set_focus(box)
        typed, enter = self.table.take_typed_ahead()  # what reached the table meanwhile
        if typed:
            box.insert_text_at_cursor(typed)
        if enter:
            box.post_message(Input.Submitted(box, box.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        self.view = replace(self.view, needle=event.value.strip())
        self._show_header()
        self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self._filter_box()
        if box is not None:
            box.value = ""
            box.display = False
        self.view = replace(self.view, needle="")
        self.table.focus()
        self._show_header()
        self._redraw()
