"""Provides Monitor: the engine's core. It owns the poller and the trackers, and publishes
fleet snapshots.

Data flows one way: collector -> Sample -> TargetTracker -> TargetFigures -> FleetSnapshot.
Results are applied on the event loop's thread; the lock is held only to swap one reference,
and a snapshot is built only when a reader asks for one. The engine process runs the loop on
its main thread; in-process users (tests, benches) let the Monitor run it on a thread of its own.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from cachetop.collectors.base import Collector, Target
from cachetop.collectors.netloop import PollLoop
from cachetop.collectors.poller import LARGE_FLEET, Poller, PollResult
from cachetop.collectors.secret import Secret
from cachetop.config import Thresholds
from cachetop.events.alerts import AlertEvaluator
from cachetop.events.audit_tail import AuditTail
from cachetop.events.detect import EventDetector
from cachetop.events.model import ALERT, ALERT_CLEARED, Event, EventLog
from cachetop.events.notify import Notifier
from cachetop.events.rules import AlertRule
from cachetop.fleet import FleetFigures, FleetSnapshot, TargetFigures, layer_of
from cachetop.links import server_resolver
from cachetop.malloc_tuning import TRIM_EVERY_S, trim_free_memory
from cachetop.metrics.series import History
from cachetop.tracker import TargetTracker

# A small fleet fetches each target's drill-down detail once at the start (it also finds
# refused optional commands, such as SLOWLOG under an ACL, before anyone opens a screen); a
# large one only for the targets a screen shows: at 5,000 targets that one-time detail cost
# a tenth of a core for the first minute and 150 MB held.
AUDIT_EVERY_S = 1.0  # how often the audit log is read for actions run on the fleet


def history_point(f: TargetFigures) -> dict[str, float | None]:
    """The charted figures of one interval; latency is the server's where known, else probe."""
    latency = f.server_latency if f.server_latency.known else f.probe_latency
    return {"ops_per_s": f.ops_per_s, "hit_ratio": f.hit_ratio, "p50_s": latency.p50_s,
            "p95_s": latency.p95_s, "p99_s": latency.p99_s,
            "memory_used_bytes": f.memory_used_bytes, "evictions_per_s": f.evictions_per_s}


class Monitor:
    """Polls a fleet and keeps its latest figures and history."""

    def __init__(self, collectors: Sequence[Collector], interval_s: float,
                 history_s: float = 600.0, loop: PollLoop | None = None,
                 caches_limit: int | None = None, thresholds: Thresholds | None = None,
                 watch_audit: bool = True, alerts: Sequence[AlertRule] = ()) -> None:
        self.collectors = list(collectors)
        large = len(self.collectors) > LARGE_FLEET
        for collector in self.collectors:
            collector.want_detail(False)  # detail only for what a screen shows (watch())
            if large:
                collector.defer_first_detail(math.inf)
        resolve = server_resolver([c.target for c in self.collectors])
        self.trackers = [TargetTracker(c.target, caches_limit, resolve) for c in self.collectors]
        self.history = History(history_s, interval_s)
        # history_s 0: no reader wants charts (`--batch --json`): the rings are not fed.
        self._keep_history = history_s > 0
        self._lock = threading.Lock()
        self._figures: list[TargetFigures] = [
            TargetFigures(name=c.target.name, kind=c.target.kind, address=c.target.address,
                          group=c.target.group, status="pending", status_since=time.time(),
                          layer=layer_of(c.target))
            for c in self.collectors
        ]
        self._version = 0
        self._changed = [0] * len(self.collectors)  # the version each target last changed at
        self._subscribers: list[Callable[[], None]] = []
        self._own_loop = loop is None
        self.loop = loop if loop is not None else PollLoop()
        self._thread: threading.Thread | None = None
        self._poller = Poller(self.collectors, interval_s, self.apply, self.loop)
        self._trim_at = time.monotonic() + TRIM_EVERY_S
        self.events = EventLog()
        self._detector = EventDetector(thresholds or Thresholds())
        self._audit = (AuditTail([(c.target.name, c.target.address) for c in self.collectors])
                       if watch_audit else None)
        self._alerts = (AlertEvaluator(alerts, [(c.target.name, c.target.group, c.target.kind)
                                                for c in self.collectors]) if alerts else None)
        self.notifier = Notifier(self.events.emit)
        self._topology_seen: dict[int, Mapping[str, str]] = {}

    def subscribe(self, callback: Callable[[], None]) -> None:
        """`callback()` runs on the loop's thread after each applied result: keep it cheap."""
        self._subscribers.append(callback)

    def apply(self, result: PollResult) -> None:
        tracker = self.trackers[result.index]
        if result.sample is not None:
            figures = tracker.update(result.sample)
            if self._keep_history:
                self.history.record(figures.name, result.sample.taken_at,
                                    history_point(figures),
                                    restarted=figures.status == "restarted"
                                    and figures.interval_s is None)
        else:
            assert result.error is not None
            figures = tracker.fail(result.error)
            if self._keep_history:
                self.history.record(figures.name, result.finished_at, {})
        prev = self._figures[result.index]
        for kind, text in self._detector.observe(result.index, prev, figures):
            self.events.emit(kind, figures.name, text)
        if figures.events:
            self._topology_events(result.index, figures)
        if self._alerts is not None:
            for change in self._alerts.observe(result.index, figures, time.monotonic()):
                self.events.emit(ALERT if change.fired else ALERT_CLEARED, change.target,
                                 change.text())
                self.notifier.notify(change)
        with self._lock:
            self._figures[result.index] = figures
            self._version += 1
            self._changed[result.index] = self._version
            trim = result.finished_at >= self._trim_at
            if trim:
                self._trim_at = result.finished_at + TRIM_EVERY_S
        if trim:
            trim_free_memory()  # one poll thread a minute; see malloc_tuning
        for callback in self._subscribers:
            callback()

    def emit(self, kind: str, target: str, text: str) -> Event:
        """Record an event (a failover, a topology change...) from any thread."""
        return self.events.emit(kind, target, text)

    def events_since(self, seq: int = 0) -> list[Event]:
        return self.events.since(seq)

    def _topology_events(self, index: int, figures: TargetFigures) -> None:
        """A cluster's or Sentinel set's topology changes (failovers...), which its figures
        carry as their recent list, into the events model once each."""
        recent = list(figures.events)
        seen = self._topology_seen.get(index)
        if seen is not None:
            after = next((i for i in range(len(recent) - 1, -1, -1) if recent[i] == seen), None)
            recent = recent[after + 1:] if after is not None else recent
        if not recent:
            return
        self._topology_seen[index] = recent[-1]
        for event in recent:
            node = event.get("node")
            text = str(event.get("text", "")) + (f" ({node})" if node else "")
            try:
                at: float | None = float(event.get("time") or 0) or None
            except ValueError:
                at = None
            self.events.emit(str(event.get("kind", "topology")),
                             str(event.get("target") or figures.name), text, at)

    def _read_audit(self) -> None:
        if self._audit is None:
            return
        self.loop.call_later(AUDIT_EVERY_S, self._read_audit)
        for at, target, kind, text in self._audit.read():
            self.events.emit(kind, target, text, at)

    def snapshot(self) -> FleetSnapshot:
        with self._lock:
            figures, version = list(self._figures), self._version
        return FleetSnapshot.build(figures, self._poller.interval_s, time.time(), version)

    # -- FleetSource (cachetop.source) ---------------------------------------------------------

    def series(self, name: str, last_s: float | None = None) -> Mapping[str, Sequence[float]]:
        return self.history.series(name, last_s)

    def target(self, name: str) -> Target | None:
        return next((c.target for c in self.collectors if c.target.name == name), None)

    def fleet_history(self) -> Sequence[FleetFigures]:
        return ()

    def notice(self) -> str | None:
        return None

    def changes_since(self, version: int) -> tuple[int, list[tuple[int, TargetFigures]]]:
        """The current version and the targets whose figures changed after `version`."""
        with self._lock:
            current, figures, changed = self._version, self._figures, self._changed
            return current, [(i, figures[i]) for i, v in enumerate(changed) if v > version]

    def all_figures(self) -> list[TargetFigures]:
        """Every target's latest figures, in the config's order."""
        with self._lock:
            return list(self._figures)

    def figures(self, name: str) -> TargetFigures | None:
        with self._lock:
            return next((f for f in self._figures if f.name == name), None)

    @property
    def version(self) -> int:
        return self._version

    def start(self) -> None:
        self._poller.start()
        self.loop.call_soon_threadsafe(self._read_audit)
        if self._own_loop:
            self._thread = threading.Thread(target=self.loop.run_forever, name="engine-loop",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop polling and close every connection (after the loop has let go of them)."""
        self._poller.stop()
        if self._own_loop:
            self.loop.stop()
            if self._thread is not None:
                self._thread.join(5)
        self._poller.close()
        if self._own_loop and (self._thread is None or not self._thread.is_alive()):
            self.loop.close()

    @property
    def interval_s(self) -> float:
        return self._poller.interval_s

    def set_interval(self, interval_s: float) -> None:
        self._poller.set_interval(interval_s)

    def set_paused(self, paused: bool) -> None:
        self._poller.set_paused(paused)

    def watch(self, name: str, on: bool = True) -> None:
        """Fetch drill-down detail for target `name` (a screen shows it) or stop."""
        for collector in self.collectors:
            if collector.target.name == name:
                self.loop.call_soon_threadsafe(functools.partial(collector.want_detail, on))

    def poll_now(self) -> None:
        self._poller.poll_now()

    def watch_clients(self, name: str, on: bool = True) -> None:
        """Fetch CLIENT LIST with target `name`'s detail (its Clients tab is shown) or stop."""
        def apply() -> None:
            for collector in self.collectors:
                if collector.target.name == name:
                    setattr(collector, "clients_wanted", on)  # noqa: B010 - redis only reads it
                    if on:
                        collector.want_detail(True)  # at the next poll, not in ~10 s

        self.loop.call_soon_threadsafe(apply)

    def set_credentials(self, name: str, username: str | None,
                        password: Secret | None) -> None:
        """Credentials for target `name` from its next connection on. A connection open now
        keeps the session it has; a failed one was dropped, so the next poll logs in anew."""
        def apply() -> None:
            for collector in self.collectors:
                if collector.target.name == name:
                    collector.target = dataclasses.replace(
                        collector.target, username=username, password=password)

        self.loop.call_soon_threadsafe(apply)
