"""Provides InstanceScreen: one target's figures, charts and server detail."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from cachetop.fleet import FleetSnapshot, TargetFigures
from cachetop.formatting import count, millis, percent, rate, size
from cachetop.monitor import Monitor
from cachetop.text_safety import plain


class InstanceScreen(Screen[None]):
    BINDINGS = [Binding("escape", "back", "Back", id="instance.back")]

    def __init__(self, name: str, monitor: Monitor) -> None:
        super().__init__()
        self.target_name = name
        self.monitor = monitor

    def compose(self) -> ComposeResult:
        yield Static(id="instance-title")
        yield Static(id="instance-figures")
        yield Footer()

    def show_fleet(self, snap: FleetSnapshot) -> None:
        target = next((t for t in snap.targets if t.name == self.target_name), None)
        if target is None or not self.is_mounted:
            return
        self._show(target)

    def _show(self, t: TargetFigures) -> None:
        title = Text()
        title.append(plain(t.name), style="bold")
        title.append(f"  {t.kind}  {plain(t.address)}  {t.status}", style="grey70")
        if t.error:
            title.append(f"  {plain(t.error, 200)}", style="red")
        self.query_one("#instance-title", Static).update(title)
        shown = t if t.live or t.last_good is None else t.last_good
        table = Table(show_header=False, box=None)
        for label, value in (
            ("ops/s", rate(shown.ops_per_s)), ("hit ratio", percent(shown.hit_ratio)),
            ("lifetime hit ratio", percent(shown.lifetime_hit_ratio)),
            ("p50 / p95 / p99 server", " / ".join(millis(v) for v in (
                shown.server_latency.p50_s, shown.server_latency.p95_s,
                shown.server_latency.p99_s))),
            ("p50 / p95 / p99 probe", " / ".join(millis(v) for v in (
                shown.probe_latency.p50_s, shown.probe_latency.p95_s,
                shown.probe_latency.p99_s))),
            ("memory", f"{size(shown.memory_used_bytes)} / {size(shown.memory_max_bytes)}"),
            ("evictions/s", rate(shown.evictions_per_s)),
            ("keys", count(shown.keys)),
        ):
            table.add_row(Text(label, style="cyan"), Text(value))
        self.query_one("#instance-figures", Static).update(table)

    def action_back(self) -> None:
        self.app.pop_screen()
