"""Provides KeysPane: the instance screen's Keys tab (where the memory goes, by key prefix).

The analysis (cachetop.keys) blocks on the network, so it runs in a worker thread and sends
reports back as messages; this widget only draws them. Redis: a sampled analysis starts when
the tab first opens (s: sample again, S: every key, x: cancel, s after a cancel resumes).
memcached: a metadump walk; `e` asks before turning `stats detail on` for per-prefix hit
ratios (cachetop turns it off again when it stops). `f` on a prefix row opens the flush dialog
with `prefix*` filled in. Every key and prefix is shown through plain() as rich Text.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, ProgressBar, Static

from cachetop.actions.connect import McConnection
from cachetop.actions.glob import escape_glob
from cachetop.actions.plan import ActionError
from cachetop.collectors.base import Target
from cachetop.fleet import TargetFigures
from cachetop.formatting import percent, rate, size
from cachetop.keys.document import figure_text, prefix_label
from cachetop.keys.memcached_detail import (
    DetailSwitch,
    PrefixCounters,
    interval_rates,
    read_dump,
)
from cachetop.keys.memcached_keys import analyze_memcached, with_rates
from cachetop.keys.model import KeysReport, PrefixRow
from cachetop.keys.redis_scan import KeyScanOptions, RedisKeyScan
from cachetop.keys.tally import OVERFLOW
from cachetop.text_safety import plain
from cachetop.tui.widgets.instance_detail import DetailPane, add_columns, sync_rows

PREFIX_ROWS = 200
DETAIL_EVERY_S = 5.0
DIM = "grey50"
DETAIL_QUESTION = (
    "Per-prefix hit ratios need memcached's `stats detail on`. That changes the server: "
    "every get and set then also updates a per-prefix table (a little CPU, memory per "
    "prefix). cachetop turns it off again when it stops. Turn it on?")


@dataclass
class KeysUpdated(Message):
    """A worker's newest report (running, or the end)."""

    report: KeysReport

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, KeysUpdated)


@dataclass
class DetailRead(Message):
    """A worker read memcached's per-prefix counters at `at` (monotonic)."""

    counters: dict[bytes, PrefixCounters]
    at: float
    error: str | None = None


class ConfirmDetail(ModalScreen[bool]):
    """Asks before cachetop changes the server (`stats detail on`)."""

    BINDINGS = [Binding("escape,n", "answer(False)", "No", id="keys.detail_no"),
                Binding("y", "answer(True)", "Yes", id="keys.detail_yes")]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.target_name = name

    def compose(self) -> ComposeResult:
        with Vertical(id="keys-confirm"):
            title = Text("Turn on stats detail on ", style="bold")
            title.append(plain(self.target_name), style="bold cyan")
            yield Static(title)
            yield Static(Text(DETAIL_QUESTION))
            with Horizontal(id="keys-confirm-buttons"):
                yield Button("Turn it on (y)", id="keys-detail-yes", variant="warning")
                yield Button("No (n)", id="keys-detail-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "keys-detail-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class KeysPane(DetailPane):
    """Prefix table, biggest and hot keys of one Redis or memcached target."""

    BINDINGS = [
        Binding("s", "analyse('sampled')", "Sample keys", id="keys.sample"),
        Binding("S", "analyse('full')", "All keys", id="keys.full"),
        Binding("x", "cancel", "Cancel", id="keys.cancel"),
        Binding("D", "depth", "Depth", id="keys.depth"),
        Binding("e", "enable_detail", "Hit ratios", show=False, id="keys.detail"),
        Binding("f", "flush_prefix", "Flush prefix", id="keys.flush_prefix"),
    ]
    DEFAULT_CSS = """
    KeysPane > ProgressBar { height: 1; padding: 0 1; }
    KeysPane > DataTable { height: 1fr; }
    KeysPane > VerticalScroll { height: 12; padding: 0 1; }
    """

    def __init__(self, target: Target, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.target = target
        self.kind = target.kind
        self.depth = 1
        self.scan: RedisKeyScan | None = None
        self.cancel_event = threading.Event()
        self.running = False
        self.report: KeysReport | None = None
        self.switch = DetailSwitch(target)
        self.detail_on = False
        self._counters: tuple[dict[bytes, PrefixCounters], float] | None = None
        self._started = False

    def compose(self) -> ComposeResult:
        yield Static(classes="pane-note")
        yield ProgressBar(id="keys-progress", show_eta=False)
        yield DataTable(cursor_type="row", zebra_stripes=True, id="keys-prefixes")
        with VerticalScroll():
            yield Static(id="keys-side")

    def on_mount(self) -> None:
        columns = [("prefix", "PREFIX"), ("keys", "KEYS"), ("memory", "MEMORY"),
                   ("share", "MEM%"), ("ttl", "TTL none/<1m/<1h/longer")]
        if self.kind == "memcached":
            columns += [("hit", "HIT%"), ("gets", "GETS/s"), ("sets", "SETS/s")]
        add_columns(self.query_one(DataTable), columns)
        self.query_one(ProgressBar).display = False
        self.note(Text("press s to analyse the keys", style=DIM))
        self.set_interval(DETAIL_EVERY_S, self._tick_detail)

    def show(self, figures: TargetFigures) -> None:
        """The analysis does not come from the snapshot: nothing to do per poll."""

    def activated(self) -> None:
        """The tab became visible: the first time, start an analysis."""
        if not self._started:
            self._started = True
            self.action_analyse("sampled" if self.kind == "redis" else "full")
        self.query_one(DataTable).focus()

    def on_unmount(self) -> None:
        self.cancel_event.set()

    # -- actions ----------------------------------------------------------------------------

    def action_analyse(self, mode: str) -> None:
        if self.target.host is None and self.target.socket_path is None:
            self._started = True  # a target read through an agent or Prometheus
            self.note(Text("key analysis needs a direct connection with the target's "
                           "credentials: this fleet is read through an agent or Prometheus",
                           style=DIM))
            return
        if self.running:
            self.app.notify("an analysis is running: x cancels it", timeout=3)
            return
        self._started = True
        self.cancel_event = threading.Event()
        resume = (self.scan is not None and self.scan.status in ("cancelled", "failed")
                  and self.scan.options.mode == mode and self.scan.options.depth == self.depth)
        if self.kind == "redis" and not resume:
            self.scan = RedisKeyScan(self.target, KeyScanOptions(
                mode="full" if mode == "full" else "sampled", depth=self.depth))
        self.running = True
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=100, progress=0)
        self.note(Text(("resuming" if resume else "analysing") + "… x cancels", style="yellow"))
        self._analyse(self.scan, self.cancel_event)

    def action_cancel(self) -> None:
        if self.running:
            self.cancel_event.set()
            self.note(Text("cancelling after the current page…", style="bold yellow"))

    def action_depth(self) -> None:
        self.depth = self.depth % 3 + 1
        self.app.notify(f"prefix depth {self.depth}: s analyses again", timeout=3)
        if not self.running:
            self.scan = None
            self.action_analyse("sampled" if self.kind == "redis" else "full")

    def action_enable_detail(self) -> None:
        if self.kind != "memcached":
            return
        if self.detail_on:
            self.app.notify("stats detail is on: hit ratios refresh every "
                            f"{DETAIL_EVERY_S:g}s", timeout=3)
            return
        self.app.push_screen(ConfirmDetail(self.target.name), self._detail_answer)

    def _detail_answer(self, yes: bool | None) -> None:
        if yes:
            self._turn_detail_on()

    def action_flush_prefix(self) -> None:
        row = self._selected_row()
        if row is None or row.prefix is None or row.prefix == OVERFLOW:
            self.app.notify("select a prefix row (this row has no single prefix)",
                            severity="warning", timeout=4)
            return
        pattern = escape_glob(row.prefix) + b"*"
        try:
            text = pattern.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if not text or plain(text) != text:
            self.app.notify("this prefix holds bytes a text box cannot show: flush it with "
                            "`cachetop flush` and the exact pattern", severity="warning",
                            timeout=6)
            return
        self.app.open_action("flush", self.target.name,  # type: ignore[attr-defined]
                             initial=text)

    def _selected_row(self) -> PrefixRow | None:
        table = self.query_one(DataTable)
        if self.report is None or not table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((r for r in self.report.prefixes if _row_key(r) == key), None)

    # -- workers (blocking network I/O, off the UI thread) ---------------------------------

    @work(thread=True, exclusive=True, group="keys-analysis", exit_on_error=False)
    def _analyse(self, scan: RedisKeyScan | None, cancel: threading.Event) -> None:
        if scan is not None:
            report = scan.run(cancel, progress=lambda r: self.post_message(KeysUpdated(r)))
        else:
            report = analyze_memcached(self.target, depth=self.depth, interval_s=0,
                                       switch=self.switch, cancel=cancel)
        self.post_message(KeysUpdated(report))

    @work(thread=True, exclusive=True, group="keys-detail", exit_on_error=False)
    def _turn_detail_on(self) -> None:
        try:
            with McConnection(self.target) as conn:
                self.switch.enable(conn)
                counters = read_dump(conn)
        except (ActionError, OSError) as exc:
            self.post_message(DetailRead({}, time.monotonic(), plain(str(exc), 200)))
            return
        self.post_message(DetailRead(counters, time.monotonic()))

    @work(thread=True, exclusive=True, group="keys-detail", exit_on_error=False)
    def _read_detail(self) -> None:
        try:
            with McConnection(self.target) as conn:
                counters = read_dump(conn)
        except (ActionError, OSError) as exc:
            self.post_message(DetailRead({}, time.monotonic(), plain(str(exc), 200)))
            return
        self.post_message(DetailRead(counters, time.monotonic()))

    def _tick_detail(self) -> None:
        if self.detail_on and self.is_attached and self.screen.is_current:
            self._read_detail()

    # -- results --------------------------------------------------------------------------------

    def on_keys_updated(self, message: KeysUpdated) -> None:
        message.stop()
        report = message.report
        if report.status != "running":
            self.running = False
            self.query_one(ProgressBar).display = False
        else:
            self.query_one(ProgressBar).update(total=100, progress=report.progress * 100)
        self._draw(report)

    def on_detail_read(self, message: DetailRead) -> None:
        message.stop()
        if message.error:
            self.app.notify(message.error, severity="error", timeout=6)
            return
        if not self.detail_on:
            self.detail_on = True
            self.app.notify(f"stats detail is on for {plain(self.target.name)}; cachetop "
                            "turns it off when it stops", timeout=6)
        previous, self._counters = self._counters, (message.counters, message.at)
        if previous is None or self.report is None:
            return
        rates = interval_rates(previous[0], message.counters, message.at - previous[1])
        walked = tuple(replace(r, hit_ratio=None, gets_per_s=None, sets_per_s=None)
                       for r in self.report.prefixes if r.keys.value)  # not traffic-only rows
        self._draw(replace(self.report, prefixes=with_rates(walked, rates, b":",
                                                            self.depth == 1)))

    def _draw(self, report: KeysReport) -> None:
        self.report = report
        memory = report.memory_bytes.value if report.memory_bytes else None
        rows = [(_row_key(r), _cells(r, memory, self.kind))
                for r in report.prefixes[:PREFIX_ROWS]]
        sync_rows(self.query_one(DataTable), rows)
        self.note(_status(report, self.running, self.kind, self.detail_on))
        self.query_one("#keys-side", Static).update(_side(report))


def _row_key(row: PrefixRow) -> str:
    if row.prefix is None:
        return "none"
    return "more" if row.prefix == OVERFLOW else "p:" + row.prefix.hex()


def _cells(row: PrefixRow, memory: float | None, kind: str) -> list[Text]:
    share = (percent(row.memory_bytes.value / memory)
             if row.memory_bytes is not None and memory else "—")
    keys = row.keys.value
    ttl = "—" if keys <= 0 else "/".join(
        f"{row.ttl.get(n, 0) / keys * 100:.0f}" for n in ("none", "under_1m", "under_1h",
                                                            "longer")) + "%"
    cells = [Text(prefix_label(row.prefix, 60), style="" if row.prefix else DIM),
             Text(figure_text(row.keys), justify="right"),
             Text(figure_text(row.memory_bytes, "bytes"), justify="right"),
             Text(share, justify="right"), Text(ttl, justify="right")]
    if kind == "memcached":
        cells += [Text(percent(row.hit_ratio), justify="right"),
                  Text(rate(row.gets_per_s), justify="right"),
                  Text(rate(row.sets_per_s), justify="right")]
    return cells


def _status(report: KeysReport, running: bool, kind: str, detail_on: bool) -> Text:
    text = Text()
    state = "running" if running else report.status
    text.append(f"{report.mode} · {report.keys_scanned} of {report.keys_total} keys read · "
                f"{report.elapsed_s:.1f}s · {state}", style="yellow" if running else "")
    if report.confidence:
        text.append(" · estimates ±95%", style=DIM)
    if report.error:
        text.append(f" · {plain(report.error, 200)}", style="red")
    keys = "s sample · S all keys · x cancel · D depth · f flush prefix"
    if kind == "memcached":
        keys = "s walk again · D depth · f flush prefix · " + (
            "hit ratios refresh every 5s" if detail_on else "e: hit ratios (asks first)")
    text.append(f"\n{keys}", style=DIM)
    return text


def _side(report: KeysReport) -> Text:
    text = Text()
    if report.biggest:
        text.append("biggest keys\n", style="bold")
        for key in report.biggest:
            text.append(f"  {plain(key.key, 80)}", style="cyan")
            elements = f"  {key.elements} {'bytes' if key.type == 'string' else 'items'}" \
                if key.elements is not None else ""
            text.append(f"  {key.type} {size(key.memory_bytes)}{elements} "
                        f"{key.encoding}\n", style=DIM)
    text.append("hot keys", style="bold")
    if report.hot is not None:
        text.append(f" ({plain(report.hot_source or '', 100)})\n", style=DIM)
        for hot in report.hot:
            text.append(f"  {plain(hot.key, 80)}", style="cyan")
            text.append(f"  {hot.measure} {hot.score:g}\n", style=DIM)
    else:
        text.append(f": {plain(report.hot_unavailable or 'not read', 300)}\n", style=DIM)
    for row in report.types:
        most = row.most_elements
        extra = f"; most elements {plain(most.key, 50)} ({most.elements})" if most else ""
        text.append(f"type {row.type}: {figure_text(row.keys)} keys, "
                    f"{figure_text(row.memory_bytes, 'bytes')}{extra}\n")
    if report.encodings:
        text.append("encodings: " + ", ".join(
            f"{e.type}/{plain(e.encoding, 20)} {figure_text(e.keys)}"
            for e in report.encodings[:12]) + "\n")
    for note in report.notes:
        text.append(f"note: {plain(note, 400)}\n", style=DIM)
    return text
