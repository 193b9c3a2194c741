"""Provides ReplayApp: the dashboard driven by a recording, with a time cursor.

The same screens as live (fleet, instance, events), over a ReplaySource instead of the
engine; actions are disabled (a recording is the past: nothing to flush). Keys: space plays
and pauses, `.`/`,` step one frame, `>`/`<` a minute, `x` the speed (1x, 10x, 60x), `j` jumps
to a time; in the events screen, enter jumps to the event.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from cachetop.config import Config
from cachetop.events.model import Event
from cachetop.record.replay_source import SPEEDS, ReplaySource
from cachetop.record.store import Recording
from cachetop.record.times import parse_time
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.events import EventsScreen

PLAY_TICK_S = 0.2


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class SeekScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="seek.cancel")]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="time: 23:40:05 (UTC), 2026-12-03T23:40:00Z, -5m, start, end",
                    id="seek-input")

    DEFAULT_CSS = "SeekScreen { align: center middle; } #seek-input { width: 80; }"

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RecordedEvents(EventsScreen):
    """The events screen over a whole recording: the cursor moving does not change it."""

    def show_events(self, events: Sequence[Event]) -> None: ...


class ReplayApp(CachetopApp):
    BINDINGS = [
        Binding("space", "play", "Play/pause", id="replay.play"),
        Binding("full_stop", "step(1)", "Step", id="replay.step"),
        Binding("comma", "step(-1)", "Back", show=False, id="replay.back"),
        Binding("greater_than_sign", "jump(60)", "+1 min", show=False, id="replay.later"),
        Binding("less_than_sign", "jump(-60)", "-1 min", show=False, id="replay.earlier"),
        Binding("x", "speed", "Speed", id="replay.speed"),
        Binding("j", "seek", "Jump to time", id="replay.seek"),
    ]

    def __init__(self, config: Config, source: ReplaySource) -> None:
        super().__init__(config, source)
        self.replay = source
        self._epoch = source.epoch
        self._played_at = time.monotonic()

    def on_mount(self) -> None:
        self.fleet_screen.mount(Static(id="replay-cursor"))
        super().on_mount()
        self.set_interval(PLAY_TICK_S, self._play)
        self._show_cursor()

    def _play(self) -> None:
        now = time.monotonic()
        elapsed, self._played_at = now - self._played_at, now
        if self.replay.playing:
            self.replay.advance(elapsed)
            self._show_cursor()

    def refresh_figures(self) -> None:
        if self.replay.epoch != self._epoch:  # the cursor went back: events start over
            self._epoch = self.replay.epoch
            self.events.clear()
            self._event_seq = 0
            self.fleet_screen.show_events(self.events)
        super().refresh_figures()

    def _show_cursor(self) -> None:
        r = self.replay
        if not r.times:
            line = Text("replay: the recording is empty", style="bold yellow")
        else:
            line = Text(f"replay {_clock(r.now)}", style="bold magenta")
            line.append(f"  frame {r.cursor + 1}/{len(r.times)}  "
                        f"{'▶ playing' if r.playing else '⏸ paused'} {r.speed:g}x", style="bold")
            line.append(f"  ({_clock(r.times[0])} to {_clock(r.times[-1])})  space . , > < x j",
                        style="grey50")
        for widget in self.query("#replay-cursor"):
            if isinstance(widget, Static):
                widget.update(line)

    def action_play(self) -> None:
        r = self.replay
        if not r.playing and r.cursor >= len(r.times) - 1:
            r.seek(r.times[0] if r.times else 0.0)  # at the end: play from the start
        r.playing = not r.playing
        self._played_at = time.monotonic()
        self._show_cursor()

    def action_step(self, frames: int) -> None:
        self.replay.playing = False
        self.replay.step(frames)
        self._show_cursor()

    def action_jump(self, seconds: float) -> None:
        self.replay.seek(self.replay.now + seconds)
        self._show_cursor()

    def action_speed(self) -> None:
        r = self.replay
        r.speed = SPEEDS[(SPEEDS.index(r.speed) + 1) % len(SPEEDS)]
        self._show_cursor()

    def action_seek(self) -> None:
        def seek(text: str | None) -> None:
            if not text or not self.replay.times:
                return
            try:
                at = parse_time(text, (self.replay.times[0], self.replay.times[-1]))
            except ValueError as exc:
                self.notify(str(exc), severity="error", timeout=5)
                return
            self.replay.seek(at)
            self._show_cursor()

        self.push_screen(SeekScreen(), seek)

    def open_events(self, needle: str = "") -> None:
        """Every event of the recording, to jump to (not only those before the cursor)."""
        self.push_screen(RecordedEvents(self.replay.recording.events(), needle))

    def open_event(self, event: Event) -> None:
        """In a replay, an event is a moment: go there."""
        self.replay.playing = False
        self.replay.seek(event.time)
        self.pop_screen()
        self._show_cursor()

    def open_action(self, kind: str, name: str, initial: str | None = None) -> None:
        self.notify("actions are disabled in a replay", severity="warning", timeout=3)

    def action_pause(self) -> None:
        self.action_play()

    def action_retry(self) -> None: ...


def run_replay(recording: Recording) -> int:
    from cachetop.config import load_config

    app = ReplayApp(load_config(None, {}), ReplaySource(recording))
    app.run()
    return 0
