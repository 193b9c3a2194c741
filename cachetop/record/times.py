"""Provides parse_time: the times `cachetop replay` accepts, against a recording's span."""

from __future__ import annotations

import datetime as dt
import re

from cachetop.events.rules import parse_duration

_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?")


def parse_time(text: str, span: tuple[float, float]) -> float:
    """An ISO time (`2026-12-03T23:40:00Z`; no zone means UTC), a UTC clock time `23:40[:05]`
    on the recording's last day (the day before if that is after its end), a duration back
    from the end (`-5m`), `start`, `end`, or seconds since the epoch."""
    text = text.strip()
    first, last = span
    if text == "start":
        return first
    if text == "end":
        return last
    if text.startswith("-"):
        return last - parse_duration(text[1:])
    match = _CLOCK_RE.fullmatch(text)
    if match:
        day = dt.datetime.fromtimestamp(last, dt.UTC).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)
        hours, minutes = int(match.group(1)), int(match.group(2))
        seconds = float(match.group(3) or 0)
        if hours > 23 or minutes > 59 or seconds >= 60:
            raise ValueError(f"{text!r} is not a time of day")
        at = day.timestamp() + hours * 3600 + minutes * 60 + seconds
        return at - 86400 if at > last + 1 else at
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give 2026-12-03T23:40:00Z, 23:40:05, -5m, "
                         "start or end") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()
