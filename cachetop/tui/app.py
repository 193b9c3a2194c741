"""Provides CachetopApp and run_app: the live dashboard over a FleetSource.

The UI process never polls: the engine does, in its own process (cachetop.engine), and a timer
here only pulls the latest immutable snapshot when it changed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events
from textual.app import App
from textual.binding import Binding

from cachetop.tui.screens.fleet import FleetScreen

# The first frame waits for every module imported here (issue 11): the config and the
# figures' modules load when the config is read, after the first frame.
# The recorder (sqlite3, the codec) is loaded by --record, not by the frame.
if TYPE_CHECKING:
    from cachetop.config import Config
    from cachetop.events.model import Event
    from cachetop.fleet import FleetSnapshot
    from cachetop.record.store import RecorderThread
    from cachetop.source import FleetSource

INTERVAL_STEPS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
REFRESH_S = 0.2
INPUT_QUIET_S = 0.3  # after a key or a click, figures wait this long: the answer comes first
# ...but never longer than this since the last refresh: keys pressed without a pause (a held
# Down) starved the figures, the recording and the events for as long as they came.
INPUT_DEFER_MAX_S = 0.5
EVENTS_KEPT = 10_000  # the events screen's memory; older ones are dropped
REMOTE_READ_ONLY = ("read-only: this fleet is read through an agent or Prometheus; actions "
                    "need a direct connection with the target's credentials")
CHILD_ROWS = 100  # an endpoint's busiest caches get rows; the rest share one "N more" row


def protection_badges(config: Config) -> dict[str, str]:
    """`prod`, `ro` or `prod ro` per target the config protects, for its row's badge. The
    read-only mode of the whole run (--read-only) would badge every row alike: only a
    target's own `read_only` does (the instance header and dialogs show both)."""
    from cachetop.tui.badges import badge_names

    short = {"read-only": "ro"}
    out = {}
    for t in config.targets:
        names = badge_names(t, read_only=False)
        if names:
            out[t.name] = " ".join(short.get(name, name) for name in names)
    return out


class CachetopApp(App[None]):
    """The fleet screen first; enter opens an instance screen, escape comes back."""

    CSS_PATH = Path(__file__).parent / "cachetop.tcss"
    TITLE = "cachetop"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("p", "pause", "Pause", id="app.pause"),
        Binding("plus,equals_sign", "faster", "Faster", show=False, id="app.faster"),
        Binding("minus", "slower", "Slower", show=False, id="app.slower"),
        Binding("R", "retry", "Retry now", show=False, id="app.retry"),
    ]

    def __init__(self, config: Config | Callable[[], Config],
                 source: FleetSource | None = None, *, stop_on_signals: bool = False,
                 recorder: RecorderThread | None = None) -> None:
        """`config` may be a loader, called after the first frame (the command line's way:
        that frame waits for no config file, and says it is reading it); its ConfigError
        ends the app and is kept in `config_error`. `stop_on_signals`: SIGTERM and SIGHUP
        quit like q (the real terminal's app)."""
        super().__init__()
        self.stop_on_signals = stop_on_signals
        self._loader = config if callable(config) else None
        self._given_source = source
        self.config_error: Exception | None = None
        self._notice: str | None = None
        self.paused = False
        self.snapshot: FleetSnapshot | None = None
        self._seen_version = -1
        self._last_point_at = 0.0
        self._input_at = 0.0
        self._refreshed_at = 0.0
        self.events: list[Event] = []
        self._event_seq = 0
        self.recorder = recorder
        self._recorded_seq = 0
        self.fleet_screen = FleetScreen(None)
        if not callable(config):
            self._configure(config)

    def _configure(self, config: Config) -> None:
        """The config's source and the fleet screen's thresholds and badges. Without a
        source, the engine's client is made after the first frame (_start_source): until
        then every row is "connecting…"."""
        from cachetop.source import PendingSource

        self.config = config
        self.source: FleetSource = (self._given_source if self._given_source is not None
                                    else PendingSource(config.targets, config.interval_s))
        self.fleet_screen.configure(config.thresholds, protection_badges(config))

    def _fatal_error(self) -> None:
        """Textual's crash report shows local variables, which can hold a connection's
        password (reliability.md, takeaway 8): print the traceback without them."""
        from rich.segment import Segments
        from rich.traceback import Traceback

        self.bell()
        traceback = Traceback(show_locals=False, width=None)
        self._exit_renderables.append(
            Segments(self.console.render(traceback, self.console.options)))
        self._close_messages_no_wait()

    def get_default_screen(self) -> FleetScreen:
        return self.fleet_screen

    @property
    def loading(self) -> bool:
        """True until the config is read (the first frame; no source yet)."""
        return self._loader is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause, the interval and retry act on the source, which waits for the config."""
        return not (self.loading and action in ("pause", "faster", "slower", "retry"))

    def on_mount(self) -> None:
        if self.stop_on_signals:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(signum, self.exit)
        if self.loading:
            # A worker: awaited in a message handler, the read would hold the app's messages.
            self.call_after_refresh(lambda: self.run_worker(self._read_config(), name="config"))
            return
        # The first frame comes first: the header and a "connecting…" row per target are on
        # screen before the engine is started or any target is polled.
        self.refresh_figures()
        self.call_after_refresh(self._start_source)

    async def _read_config(self) -> None:
        """After the first frame: the config (a file of 1,000 targets: 40-60 ms; with no
        target given, discovery's loopback connects), read on a thread so the screen keeps
        answering; its rows "connecting…" in the next frame, then the engine."""
        from cachetop.errors import ConfigError

        assert self._loader is not None
        # The frame just drawn is written by Textual's writer thread, which needs the GIL
        # for each write: at the default 5 ms switch interval, the config read meanwhile
        # held the frame back ~10 ms. A short interval while reading lets it through.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, 0.0002))
        try:
            config = await asyncio.to_thread(self._loader)
        except ConfigError as exc:
            self.config_error = exc
            self.exit(return_code=2)
            return
        finally:
            sys.setswitchinterval(switch)
        if self._exit:  # q while the config was read
            return
        self._loader = None
        self._configure(config)
        self.refresh_figures()
        for warning in config.warnings:
            self.notify(warning, title="config", severity="warning", timeout=15)
        self.call_after_refresh(self._start_source)

    def _start_source(self) -> None:
        from cachetop.source import PendingSource

        if isinstance(self.source, PendingSource):
            from cachetop.engine.client import EngineClient

            config = self.config
            self.source = EngineClient(config.targets, self.source.interval_s,
                                       config.history_s, caches_limit=CHILD_ROWS,
                                       thresholds=config.thresholds, alerts=config.alerts)
            if self.paused:  # `p` pressed before the engine existed
                self.source.set_paused(True)
        self.source.start()
        self.set_interval(REFRESH_S, self.refresh_figures)
        # What exists after the first frame lives for the whole run; leaving it out of the
        # cyclic GC's scans cut a 1,000-row refresh's collection time by about half. The
        # collector was off since run_tui started (start-up makes no garbage worth a pass).
        gc.freeze()
        gc.enable()

    def on_unmount(self) -> None:
        if not self.loading:
            self.source.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown | events.MouseScrollDown
                      | events.MouseScrollUp):
            self._input_at = time.monotonic()
        await super().on_event(event)

    def refresh_figures(self) -> None:
        """Pull the newest snapshot if it changed, and hand it to the visible screen. While
        a person is pressing keys, new figures wait (INPUT_QUIET_S): on a busy machine a
        refresh in progress would delay the key's frame behind it. They wait at most
        INPUT_DEFER_MAX_S since the last refresh."""
        now = time.monotonic()
        if (self.snapshot is not None and now - self._input_at < INPUT_QUIET_S
                and now - self._refreshed_at < INPUT_DEFER_MAX_S):
            return
        notice = self.source.notice()
        if notice != self._notice:
            self._notice = notice
            if notice:
                self.notify(notice, severity="warning", timeout=30)
        self._pull_events()
        version = self.source.version
        if version == self._seen_version and self.snapshot is not None:
            return
        # A refresh costs the sort of the fleet and the lines on screen whose figures changed
        # (bench/tui.py). On a busy machine each one still delays a key behind it, so a big
        # fleet is redrawn about twice a second (every 0.5 s at 1,000 targets), a small one
        # at every tick.
        spacing = min(self.source.interval_s, max(REFRESH_S, len(self.config.targets) / 2000))
        if self.snapshot is not None and now - self._refreshed_at < spacing * 0.95:
            return
        self._refreshed_at = now
        self._seen_version = version
        snap = self.source.snapshot()
        self.snapshot = snap
        new_interval = snap.taken_at - self._last_point_at >= snap.interval_s * 0.9
        if new_interval:
            self._last_point_at = snap.taken_at
        if new_interval and self.recorder is not None:
            self._record(snap)
        with self.batch_update():
            self.fleet_screen.show_fleet(snap, new_interval=new_interval, paused=self.paused)
            # While the app shuts down its screens are gone before its timers (seen in a test
            # whose dialog closed with the app): `self.screen` would raise.
            screen = self.screen_stack[-1] if self.screen_stack else self.fleet_screen
            if screen is not self.fleet_screen and hasattr(screen, "show_fleet"):
                screen.show_fleet(snap)

    def _record(self, snap: FleetSnapshot) -> None:
        """--record: this interval's snapshot and the events since the last one, written on
        the recorder's thread."""
        assert self.recorder is not None
        from cachetop.snapshot_json import snapshot_document

        events = [e for e in self.events if e.seq > self._recorded_seq]
        if events:
            self._recorded_seq = events[-1].seq
        self.recorder.put(snap.taken_at, lambda: snapshot_document(snap, CHILD_ROWS, events),
                          events)
        if self.recorder.error:
            self.notify(self.recorder.error, severity="error", timeout=30)
            self.recorder = None

    def _pull_events(self) -> None:
        """New events to the fleet screen's strip and to a screen that lists them."""
        new = self.source.events_since(self._event_seq)
        if not new:
            return
        self._event_seq = new[-1].seq
        self.events.extend(new)
        del self.events[:-EVENTS_KEPT]
        self.fleet_screen.show_events(self.events)
        screen = self.screen
        if screen is not self.fleet_screen and hasattr(screen, "show_events"):
            screen.show_events(self.events)

    def open_events(self, needle: str = "") -> None:
        from cachetop.tui.screens.events import EventsScreen

        self.push_screen(EventsScreen(self.events, needle))

    def open_event(self, event: Event) -> None:
        """Enter on an event: its target's screen (a replay goes to its time instead)."""
        if event.target:
            self.open_instance(event.target)

    def open_instance(self, name: str) -> None:
        from cachetop.tui.screens.instance import InstanceScreen

        screen = InstanceScreen(name, self.source)
        self.push_screen(screen)
        if self.snapshot is not None:
            screen.show_fleet(self.snapshot)
        screen.show_events(self.events)

    def open_action(self, kind: str, name: str, initial: str | None = None) -> None:
        """Open the modal for a destructive action on target `name` (flush, flushdb, delete,
        tags), its input holding `initial` (a prefix's pattern from the Keys tab). Refusals
        (read-only, replica, prod) are decided by the action's plan."""
        from cachetop.actions import Guard
        from cachetop.tui.screens.action import ActionScreen

        target = next((t for t in self.config.targets if t.name == name), None)
        if target is None and self.source.target(name) is not None:
            self.notify(REMOTE_READ_ONLY, severity="warning", timeout=5)
            return
        if target is not None and target.seeds and kind == "tags":
            self.notify("on a cluster or Sentinel set, flush (f, F) and delete (d) span the "
                        "nodes; for tags, use a node's own redis:// target",
                        severity="warning", timeout=4)
            return
        if target is None or target.kind not in ("redis", "memcached") and not target.seeds:
            self.notify("actions work on Redis and memcached targets", severity="warning",
                        timeout=3)
            return
        self.push_screen(ActionScreen(kind, target,
                                      read_only=self.config.is_read_only(target),
                                      guard=Guard(self.config.targets,
                                                  self.config.read_only_sources()),
                                      initial=initial))

    def action_help(self) -> None:
        from cachetop.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.source.set_paused(self.paused)
        self.notify("polling paused" if self.paused else "polling resumed", timeout=2)
        if self.snapshot is not None:
            self.fleet_screen.show_fleet(self.snapshot, new_interval=False, paused=self.paused)

    def _step_interval(self, step: int) -> None:
        current = self.source.interval_s
        index = min(range(len(INTERVAL_STEPS)), key=lambda i: abs(INTERVAL_STEPS[i] - current))
        new = INTERVAL_STEPS[max(0, min(len(INTERVAL_STEPS) - 1, index + step))]
        self.source.set_interval(new)
        self.notify(f"polling every {new:g}s", timeout=2)

    def action_faster(self) -> None:
        self._step_interval(-1)

    def action_slower(self) -> None:
        self._step_interval(1)

    def action_retry(self) -> None:
        """R: re-read the config file and the passwords it names, hand changed credentials
        to the engine, and poll every target now; say what changed."""
        from cachetop.errors import ConfigError
        from cachetop.reload import reread

        said = ""
        if self.config.path is not None:
            try:
                result = reread(self.config, os.environ)
            except ConfigError as exc:
                self.notify(f"config not re-read (the running settings stay): {exc}",
                            severity="error", timeout=10)
            else:
                for target in result.changed:
                    self.source.set_credentials(target.name, target.username, target.password)
                self.config = result.config
                said = "; ".join(result.lines) + "; "
        self.source.poll_now()
        self.notify(f"{said}polling every target now", timeout=6)


def run_app(config: Config | Callable[[], Config], source: FleetSource | None = None,
            recorder: RecorderThread | None = None) -> int:
    """Run the dashboard; on its way out (q, Ctrl-C, SIGTERM, SIGHUP) undo what the Keys tab
    changed on servers (memcached `stats detail on`), off the UI thread that has ended.
    That module (and the actions and redis-py it imports, ~0.5 s) is loaded only if the Keys
    tab loaded it: importing it up front delayed the first frame."""
    app = CachetopApp(config, source, stop_on_signals=True, recorder=recorder)
    try:
        app.run()
    finally:
        detail = sys.modules.get("cachetop.keys.memcached_detail")
        for error in detail.restore_all() if detail is not None else ():
            print(f"cachetop: {error}", file=sys.stderr)
    if app.config_error is not None:
        raise app.config_error
    # Shown in the app too; printed here, they stay in the terminal after it (q before the
    # config was read: none).
    for warning in app.config.warnings if not app.loading else ():
        print(f"cachetop: warning: {warning}", file=sys.stderr)
    return 0
