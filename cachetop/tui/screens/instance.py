"""Provides InstanceScreen: one target's figures, charts and server detail in tabs."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from cachetop.config import Thresholds
from cachetop.events.model import Event
from cachetop.fleet import FleetSnapshot, TargetFigures
from cachetop.formatting import rate, size
from cachetop.host_process import HostMemory, ProcessInfo, host_memory, is_local, process_for_port
from cachetop.source import FleetSource
from cachetop.tui.badges import badges
from cachetop.tui.widgets.events_strip import event_line
from cachetop.tui.widgets.instance_detail import DetailPane, RawView
from cachetop.tui.widgets.instance_keys import KeysPane
from cachetop.tui.widgets.instance_memcached import memcached_panes
from cachetop.tui.widgets.instance_metrics import metrics_panes
from cachetop.tui.widgets.instance_process import process_text, remote_text
from cachetop.tui.widgets.instance_redis import RedisClients, redis_panes
from cachetop.tui.widgets.instance_tiles import latency_unit, shown_figures, tiles, title_text
from cachetop.tui.widgets.instance_topology import topology_panes
from cachetop.tui.widgets.metric_chart import ChartLine, MetricChart

CHART_EVERY_S = 1.0
PROCESS_EVERY_S = 3.0
# The chart window grows with the history held, up to config.history_s.
WINDOWS_S = (60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
OVERVIEW = "tab-overview"
KEYS_TAB = "tab-keys"
CLIENTS_TAB = "tab-redis-clients"
EVENTS_TAB = "tab-events"
EVENTS_SHOWN = 500


def chart_window(oldest_age_s: float, history_s: float) -> float:
    """The smallest standard window covering the data held, at most `history_s`."""
    return min(next((w for w in WINDOWS_S if w >= oldest_age_s), history_s), history_s)


def _scaled(values: Sequence[float], factor: float) -> list[float]:
    return [v * factor for v in values]


class InstanceScreen(Screen[None]):
    """Title and tiles over tabs: Overview (charts, process) and the kind's detail sections."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="instance.back"),
        Binding("right_square_bracket", "switch_tab(1)", "Next tab", id="instance.next_tab"),
        Binding("left_square_bracket", "switch_tab(-1)", "Prev tab", id="instance.prev_tab"),
        Binding("slash", "search", "Search raw", id="instance.search"),
        *(Binding(str(n), f"goto_tab({n - 1})", f"Tab {n}", show=False, id=f"instance.tab_{n}")
          for n in range(1, 10)),
        Binding("o", "clients_order", "Clients order", show=False, id="instance.clients_order"),
        Binding("f", "act('flush')", "Flush keys", id="instance.flush_keys"),
        Binding("F", "act('flushdb')", "Flush db", show=False, id="instance.flush_db"),
        Binding("t", "act('tags')", "Tags", show=False, id="instance.tags"),
        Binding("d", "act('delete')", "Delete key", show=False, id="instance.delete_key"),
        Binding("k", "keys", "Keys", id="instance.keys"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The Keys tab exists for Redis and memcached only: hide `k` elsewhere."""
        return action != "keys" or self.kind in ("redis", "memcached")

    def action_act(self, kind: str) -> None:
        self.app.open_action(kind, self.target_name)  # type: ignore[attr-defined]

    class ProcessRead(Message):
        """A worker read the target's local process (None: none visible) and host memory."""

        def __init__(self, info: ProcessInfo | None, memory: HostMemory | None) -> None:
            super().__init__()
            self.info, self.memory = info, memory

    def __init__(self, name: str, source: FleetSource) -> None:
        super().__init__()
        self.target_name = name
        self.source = source
        self.target = source.target(name)
        self.kind = self.target.kind if self.target is not None else ""
        self._figures: TargetFigures | None = None
        self._panes: list[DetailPane] = []
        self._charts_at = 0.0
        self._latency_factor = 1e3  # the latency chart's unit, from seconds
        self._process_seen = False
        self._clients = False  # CLIENT LIST asked for (the Clients tab was opened)
        self._events: list[Event] = []

    # -- layout -----------------------------------------------------------------------------

    @property
    def thresholds(self) -> Thresholds:
        config = getattr(self.app, "config", None)
        return config.thresholds if config is not None else Thresholds()

    @property
    def history_s(self) -> float:
        config = getattr(self.app, "config", None)
        return float(config.history_s) if config is not None else 600.0

    def _detail_panes(self) -> list[tuple[str, DetailPane]]:
        if self.kind == "redis":
            return redis_panes()
        if self.kind == "memcached":
            return memcached_panes()
        if self.kind == "metrics":
            return metrics_panes(self.thresholds)
        if self.kind in ("redis-cluster", "redis-sentinel"):
            return topology_panes()
        return []

    def compose(self) -> ComposeResult:
        yield Static(id="instance-title")
        yield Static(id="instance-tiles")
        with TabbedContent(id="instance-tabs", initial=OVERVIEW):
            with TabPane("Overview", id=OVERVIEW), Grid(id="instance-charts"):
                yield MetricChart("hit ratio", lambda v: f"{v:.0f}%", top=100.0,
                                  title_fmt=lambda v: f"{v:.1f}%", id="chart-hit")
                yield MetricChart("ops/s", rate, id="chart-ops")
                yield MetricChart("latency ms", lambda v: f"{v:.3g}" if v < 1000 else f"{v:.0f}",
                                  id="chart-latency")
                yield MetricChart("memory", size, id="chart-memory")
                yield MetricChart("evictions/s", rate, id="chart-evictions")
                yield Static(id="instance-process")
            for title, pane in self._detail_panes():
                with TabPane(title, id=f"tab-{pane.id}"):
                    yield pane
            if self.target is not None and self.kind in ("redis", "memcached"):
                with TabPane("Keys", id=KEYS_TAB):
                    yield KeysPane(self.target, id="keys")
            with TabPane("Events", id=EVENTS_TAB), VerticalScroll(id="instance-events"):
                yield Static(id="instance-events-list")
        yield Footer()

    def on_mount(self) -> None:
        self.source.watch(self.target_name, True)  # detail and history for this target
        self._panes = list(self.query(DetailPane))
        self.set_interval(CHART_EVERY_S, self._tick_charts)
        target = self.target
        process = self.query_one("#instance-process", Static)
        if target is not None and target.seeds:
            process.update("one process per node: each node's row and the Topology tab")
        elif target is not None and target.port and is_local(target.host):
            process.update(process_text(None, None, reading=True))
            self.set_interval(PROCESS_EVERY_S, self._tick_process)
            self._tick_process()
        else:
            process.update(remote_text(target.host if target else None,
                                       target.socket_path if target else None))
        if self._figures is not None:
            self._show(self._figures)
        self._show_events()
        self.call_after_refresh(self._draw_charts)

    # -- figures ----------------------------------------------------------------------------

    def show_fleet(self, snap: FleetSnapshot) -> None:
        """Take this target's figures from a new snapshot; cheap when they did not change."""
        target = next((t for t in snap.targets if t.name == self.target_name), None)
        if target is None or target is self._figures:
            return
        self._figures = target
        if self._drawable:
            self._show(target)

    def show_events(self, events: Sequence[Event]) -> None:
        """This target's events, newest first, in the Events tab."""
        mine = [e for e in events if e.target == self.target_name]
        if mine == self._events and self._events:
            return
        self._events = mine
        if self._drawable:
            self._show_events()

    @property
    def _drawable(self) -> bool:
        """Mounted and not being taken down: a screen closing (or the app quitting) has lost
        its widgets while still mounted, and a late snapshot must not reach them."""
        return self.is_mounted and bool(self.query("#instance-title"))

    def _show_events(self) -> None:
        shown = self._events[::-1][:EVENTS_SHOWN]
        body = (Text("\n").join(event_line(e, with_target=False) for e in shown) if shown
                else Text("no events for this target since cachetop started", style="grey50"))
        self.query_one("#instance-events-list", Static).update(body)

    def _badges(self) -> Text | None:
        config = getattr(self.app, "config", None)
        if self.target is None or config is None:
            return None
        return badges(self.target, read_only=config.is_read_only(self.target))

    def _show(self, t: TargetFigures) -> None:
        _, stale = shown_figures(t)
        self.set_class(stale, "-stale")
        self.query_one("#instance-title", Static).update(title_text(t, badges=self._badges()))
        self.query_one("#instance-tiles", Static).update(tiles(t, self.thresholds))
        for pane in self._panes:
            pane.show(t)
        if self._charts_visible():  # the chart titles read the figures the header reads
            for selector, latest in self._latest(t).items():
                self.query_one(selector, MetricChart).show_latest(latest, dim=stale)

    def _latest(self, t: TargetFigures) -> dict[str, list[float | None]]:
        """Each chart's title figures, from the same TargetFigures as the header's tiles (the
        history the charts draw can be one sample behind them)."""
        f, _ = shown_figures(t)
        latency = f.server_latency if f.server_latency.known else f.probe_latency
        factor = self._latency_factor
        return {
            "#chart-hit": [None if f.hit_ratio is None else f.hit_ratio * 100],
            "#chart-ops": [f.ops_per_s],
            "#chart-latency": [None if v is None else v * factor
                               for v in (latency.p50_s, latency.p95_s, latency.p99_s)],
            "#chart-memory": [f.memory_used_bytes],
            "#chart-evictions": [f.evictions_per_s],
        }

    # -- charts -----------------------------------------------------------------------------

    def _charts_visible(self) -> bool:
        return self.is_current and self.query_one(TabbedContent).active == OVERVIEW

    def _tick_charts(self) -> None:
        if self._charts_visible() and time.monotonic() - self._charts_at >= CHART_EVERY_S * 0.9:
            self._draw_charts()

    def _draw_charts(self) -> None:
        if not self._charts_visible():
            return
        self._charts_at = time.monotonic()
        series = self.source.series(self.target_name, last_s=self.history_s)
        times = list(series.get("t", ()))
        window = chart_window(-times[0] if times else 0.0, self.history_s)
        restarts = [r for r in series.get("restarts", ()) if r >= -window]
        t = self._figures
        dim = t is not None and shown_figures(t)[1]

        def values(key: str, factor: float = 1.0) -> list[float]:
            return _scaled(series.get(key, ()), factor)

        unit, factor = latency_unit(series.get("p99_s", ()))
        self._latency_factor = factor

        charts: list[tuple[str, list[ChartLine]]] = [
            ("#chart-hit", [ChartLine("", values("hit_ratio", 100.0), "green")]),
            ("#chart-ops", [ChartLine("", values("ops_per_s"), "cyan")]),
            ("#chart-latency", [ChartLine("p50", values("p50_s", factor), "green"),
                                ChartLine("p95", values("p95_s", factor), "yellow"),
                                ChartLine("p99", values("p99_s", factor), "red")]),
            ("#chart-memory", [ChartLine("", values("memory_used_bytes"), "magenta")]),
            ("#chart-evictions", [ChartLine("", values("evictions_per_s"), "yellow")]),
        ]
        limit, source = None, ""
        latest = self._latest(t) if t is not None else {}
        if t is not None:
            shown, _ = shown_figures(t)
            limit = shown.memory_max_bytes
            # The history charts the server's latency where known, else the probe's.
            source = " server" if shown.server_latency.known else " probe"
        for selector, lines in charts:
            chart = self.query_one(selector, MetricChart)
            chart.draw(times, lines, restarts, window, dim=dim,
                       ceiling=limit if selector == "#chart-memory" else None,
                       title=f"latency{source} {unit}" if selector == "#chart-latency"
                       else None, latest=latest.get(selector), log=selector == "#chart-latency")

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane is not None and event.pane.id == OVERVIEW:
            self.call_after_refresh(self._tick_charts)
        if event.pane is not None and event.pane.id == KEYS_TAB:
            self.query_one(KeysPane).activated()
        if event.pane is not None and event.pane.id == CLIENTS_TAB and not self._clients:
            self._clients = True  # CLIENT LIST from now on, until this screen closes
            self.source.watch_clients(self.target_name, True)

    def action_clients_order(self) -> None:
        """o: the Clients tab's next order (memory, idle, commands)."""
        for pane in self.query(RedisClients):
            pane.cycle_order()

    def action_keys(self) -> None:
        """k: the Keys tab (its first opening starts an analysis)."""
        panes = list(self.query(KeysPane))
        if not panes:
            self.app.notify("key analysis works on Redis and memcached targets", timeout=3)
            return
        tabs = self.query_one(TabbedContent)
        if tabs.active == KEYS_TAB:
            panes[0].activated()
        tabs.active = KEYS_TAB

    def on_resize(self) -> None:
        self.call_after_refresh(self._tick_charts)

    # -- local process ----------------------------------------------------------------------

    def _tick_process(self) -> None:
        if self.is_current and self.target is not None and self.target.port:
            self._read_process(self.target.port)

    @work(thread=True, exclusive=True, group="instance-process", exit_on_error=False)
    def _read_process(self, port: int) -> None:
        # psutil reads /proc: on this worker thread only; the result goes back as a message.
        self.post_message(self.ProcessRead(process_for_port(port), host_memory()))

    def on_instance_screen_process_read(self, message: ProcessRead) -> None:
        port = self.target.port if self.target is not None else None
        why = (f"no process visible listening on port {port} "
               "(another user's process needs root to see)")
        self.query_one("#instance-process", Static).update(
            process_text(message.info, message.memory, why_none=why))

    # -- keys -------------------------------------------------------------------------------

    def _tab_ids(self) -> list[str]:
        return [pane.id or "" for pane in self.query(TabPane)]

    def action_switch_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        ids = self._tab_ids()
        index = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(index + step) % len(ids)]

    def action_goto_tab(self, index: int) -> None:
        ids = self._tab_ids()
        if index < len(ids):
            self.query_one(TabbedContent).active = ids[index]

    def action_search(self) -> None:
        views = list(self.query(RawView))
        if not views:
            return
        tabs = self.query_one(TabbedContent)
        active = tabs.active_pane
        view = next((v for v in views if active is not None and v in active.walk_children()),
                    views[-1])
        tabs.active = f"tab-{view.id}"
        self.call_after_refresh(view.focus_filter)

    def on_unmount(self) -> None:
        self.source.watch(self.target_name, False)
        if self._clients:
            self.source.watch_clients(self.target_name, False)

    def action_back(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one(TabbedContent).query_one("ContentTabs").focus()
            return
        self.app.pop_screen()

