"""Provides the human forms of figures (percent, rates, bytes, ms), shared by every view."""

from __future__ import annotations

import math
import time

DASH = "—"


def percent(ratio: float | None, digits: int = 1) -> str:
    return DASH if ratio is None else f"{ratio * 100:.{digits}f}%"


def rate(per_s: float | None) -> str:
    if per_s is None:
        return DASH
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f}M"
    if per_s >= 1e4:
        return f"{per_s / 1e3:.1f}k"
    return f"{per_s:.1f}" if per_s < 100 else f"{per_s:.0f}"


def size(n: float | None) -> str:
    if n is None:
        return DASH
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1000 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return DASH


def millis(seconds: float | None) -> str:
    """Milliseconds with three significant figures."""
    if seconds is None or not math.isfinite(seconds):
        return DASH
    ms = seconds * 1000
    if ms == 0:
        return "0"
    if ms < 0.001:  # below Redis's 1 µs histogram resolution, and wider than the column
        return "<0.001"
    if ms >= 100:
        return f"{ms:.0f}"
    return f"{ms:.{max(0, 2 - math.floor(math.log10(ms)))}f}"


def count(n: float | None) -> str:
    if n is None:
        return DASH
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"


def age(seconds: float) -> str:
    """A short duration: 42s, 5m, 3h, 2d."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))
