"""Provides FleetSource: what a front (the TUI, --once/--batch) reads the fleet through.

Implementations: EngineClient (cachetop.engine.client: the engine in its own process, the
production source), PendingSource (below: the fleet before its source exists), Monitor
(in-process, for tests and benches) and ScriptedMonitor (fixed figures for pictures). Screens
get a FleetSource and a target's name, never a collector or a monitor's internals (engine.md).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from cachetop.collectors.base import Target
from cachetop.collectors.secret import Secret
from cachetop.events.model import Event
from cachetop.fleet import FleetFigures, FleetSnapshot, pending_figures


class FleetSource(Protocol):
    @property
    def version(self) -> int:
        """Grows whenever the figures change: a reader redraws only on a new version."""
        ...

    @property
    def interval_s(self) -> float: ...

    def snapshot(self) -> FleetSnapshot:
        """The latest figures of every target, immutable; watched targets carry their detail."""
        ...

    def series(self, name: str, last_s: float | None = None) -> Mapping[str, Sequence[float]]:
        """A watched target's chart series (times in seconds relative to now, negative)."""
        ...

    def watch(self, name: str, on: bool = True) -> None:
        """A screen shows target `name`: fetch its drill-down detail and history (or stop)."""
        ...

    def target(self, name: str) -> Target | None:
        """The configured target of that name (address, kind), for the screens."""
        ...

    def fleet_history(self) -> Sequence[FleetFigures]:
        """Fleet totals to seed the header's sparklines with (empty: the header records its
        own from the snapshots it sees)."""
        ...

    def events_since(self, seq: int = 0) -> Sequence[Event]:
        """Events after `seq` (Event.seq), oldest first: what a reader has not seen yet."""
        ...

    def notice(self) -> str | None:
        """Trouble with the source itself (the engine died and was restarted), for the screen."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def set_interval(self, interval_s: float) -> None: ...

    def set_paused(self, paused: bool) -> None: ...

    def poll_now(self) -> None: ...

    def watch_clients(self, name: str, on: bool = True) -> None:
        """Fetch target `name`'s CLIENT LIST with its detail while its Clients tab is shown."""

    def set_credentials(self, name: str, username: str | None,
                        password: Secret | None) -> None:
        """Use these credentials for target `name` from its next connection on (`R` after a
        password file changed)."""


class PendingSource:
    """Every target "connecting…", and nothing else: what the dashboard draws its first frame
    from while the real source (the engine client, ~10 ms of imports) is not made yet
    (issue 11: the first frame waits for nothing it does not draw)."""

    def __init__(self, targets: Sequence[Target], interval_s: float) -> None:
        self._targets = {t.name: t for t in targets}
        self._interval_s = interval_s
        now = time.time()
        self._snap = FleetSnapshot.build([pending_figures(t, now) for t in targets],
                                         interval_s, now, 0)

    @property
    def version(self) -> int:
        return 0

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def snapshot(self) -> FleetSnapshot:
        return self._snap

    def series(self, name: str, last_s: float | None = None) -> Mapping[str, Sequence[float]]:
        return {}

    def watch(self, name: str, on: bool = True) -> None:
        pass

    def target(self, name: str) -> Target | None:
        return self._targets.get(name)

    def fleet_history(self) -> Sequence[FleetFigures]:
        return ()

    def events_since(self, seq: int = 0) -> Sequence[Event]:
        return ()

    def notice(self) -> str | None:
        return None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def set_interval(self, interval_s: float) -> None:
        self._interval_s = interval_s

    def set_paused(self, paused: bool) -> None:
        pass

    def poll_now(self) -> None:
        pass

    def watch_clients(self, name: str, on: bool = True) -> None:
        pass

    def set_credentials(self, name: str, username: str | None,
                        password: Secret | None) -> None:
        pass
