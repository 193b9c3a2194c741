"""Provides EventsStrip (the latest events under the fleet table) and event_line, the one
way an event is written on screen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from cachetop.formatting import clock
from cachetop.text_safety import plain

if TYPE_CHECKING:
    from cachetop.events.model import Event

STRIP_LINES = 3
KIND_STYLES = {"status": "red", "restart": "yellow", "threshold": "yellow", "cleared": "green",
               "action": "cyan", "alert": "bold red", "alert-cleared": "green",
               "alert-error": "red"}


def kind_style(event: Event) -> str:
    if event.kind == "status" and not event.text.startswith(("down", "timeout", "auth", "tls",
                                                             "bad", "too", "busy", "loading")):
        return "green"  # back up
    return KIND_STYLES.get(event.kind, "magenta")


def event_line(event: Event, *, with_target: bool = True) -> Text:
    """Time, target, kind and text; the text is a server's or a user's: shown literally."""
    line = Text()
    line.append(clock(event.time), style="grey70")
    if with_target:
        line.append("  ")
        line.append(plain(event.target or "fleet", 60), style="bold")
    line.append("  ")
    line.append(event.kind, style=kind_style(event))
    line.append("  ")
    line.append(plain(event.text, 300))
    return line


class EventsStrip(Static):
    """The newest STRIP_LINES events, newest last (e opens them all); hidden while there are
    none, so a quiet fleet's table keeps every line."""

    def show_events(self, events: Sequence[Event]) -> None:
        latest = events[-STRIP_LINES:]
        self.display = bool(latest)
        self.update(Text("\n").join(event_line(e) for e in latest))
