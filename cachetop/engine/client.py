"""Provides EngineClient: the FleetSource a front reads, backed by an engine process.

It starts `python -m cachetop.engine` on one end of a socket pair, sends it the targets, and a
reader thread keeps the latest figures of each target from the deltas the engine sends; the
front's thread only takes immutable snapshots. If the engine dies, the client says so
(`notice()`), starts a new one and resumes; the history held by the dead engine is lost and
the notice says that too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import cachetop
from cachetop.collectors.base import Target
from cachetop.collectors.secret import Secret
from cachetop.config import Thresholds
from cachetop.detail import Detail, detail_from_wire
from cachetop.engine.protocol import (
    FrameReader,
    ProtocolError,
    figures_from_wire,
    frame,
    series_from_wire,
    target_to_wire,
)
from cachetop.events.model import Event, EventLog, event_from_wire
from cachetop.events.rules import AlertRule, rules_to_wire
from cachetop.fleet import (
    FleetFigures,
    FleetSnapshot,
    pending_figures,
)

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (0.2, 1.0, 2.0, 5.0, 10.0)
CODEC = "marshal"  # this front starts the engine itself, from the same interpreter
STABLE_S = 10.0  # an engine that lived this long resets the restart backoff


def series_now(sent_at: float, series: Mapping[str, Sequence[float]],
               last_s: float | None) -> dict[str, Sequence[float]]:
    """Series whose times were relative to `sent_at`, made relative to now, and cut to the
    last `last_s` seconds."""
    shift = time.time() - sent_at
    times = [t - shift for t in series.get("t", [])]
    keep = 0 if last_s is None else next(
        (i for i, t in enumerate(times) if t >= -last_s), len(times))
    out: dict[str, Sequence[float]] = {k: v[keep:] for k, v in series.items()
                                       if k not in ("t", "restarts")}
    out["t"] = times[keep:]
    out["restarts"] = [r - shift for r in series.get("restarts", [])
                       if last_s is None or r - shift >= -last_s]
    return out


@dataclass(frozen=True, slots=True)
class Document:
    """One `--batch --json` line as the engine wrote it, and how many targets were not up."""

    id: int
    json: str
    not_up: int
    total: int


def describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class EngineClient:
    """A FleetSource over an engine process. Thread-safe: a reader thread writes the state,
    the front's thread reads snapshots and sends commands."""

    codec = CODEC

    def __init__(self, targets: Sequence[Target], interval_s: float, history_s: float = 600.0,
                 *, mode: str = "live", log_file: str | None = None,
                 caches_limit: int | None = None, thresholds: Thresholds | None = None,
                 alerts: Sequence[AlertRule] = (), documents: bool = False) -> None:
        """`documents`: `--batch --json` reads whole documents (document()) and no figures;
        snapshot() then stays "connecting…"."""
        self._targets = list(targets)
        self.documents = documents
        self._doc_cond = threading.Condition()
        self._doc_asked = 0
        self._doc: Document | None = None
        self._thresholds = thresholds
        self._alerts = list(alerts)
        self.events = EventLog()
        self._by_name = {t.name: t for t in self._targets}
        self._interval_s = interval_s
        self._history_s = history_s
        self._mode = mode
        self._log_file = log_file
        self._caches_limit = caches_limit  # an endpoint's caches beyond this: one "more" row
        self._lock = threading.Lock()
        now = time.time()
        self._figures = [pending_figures(t, now) for t in self._targets]
        self._version = 0
        self._taken_at = now
        self._snap: FleetSnapshot | None = None
        self._snap_version = -1
        self._details: dict[str, Detail] = {}
        self._history: dict[str, tuple[float, dict[str, list[float]]]] = {}
        self._watched: set[str] = set()
        self._clients: set[str] = set()  # targets whose Clients tab is shown
        self._paused = False
        self._notice: str | None = None
        self._warning: str | None = None
        self._done = threading.Event()
        self._hello = threading.Event()
        self._stopping = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()  # the socket and whether it is configured
        self._write_lock = threading.Lock()  # one frame on the socket at a time
        self._configured = False
        self._outbox: list[bytes] = []  # frames the front sent before the config went
        self._thread: threading.Thread | None = None
        self.restarts = 0

    # -- FleetSource --------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @property
    def pid(self) -> int | None:
        """The engine process's pid (tests, and `ps`-minded users)."""
        return self._proc.pid if self._proc is not None else None

    def snapshot(self) -> FleetSnapshot:
        with self._lock:
            if self._snap is not None and self._snap_version == self._version:
                return self._snap
            figures = list(self._figures)
            details = dict(self._details)
            version = self._version
            taken = self._taken_at
        if details:
            figures = [replace(f, detail=details[f.name]) if f.name in details else f
                       for f in figures]
        snap = FleetSnapshot.build(figures, self._interval_s, taken, version)
        with self._lock:
            self._snap, self._snap_version = snap, version
        return snap

    def series(self, name: str, last_s: float | None = None) -> Mapping[str, Sequence[float]]:
        with self._lock:
            held = self._history.get(name)
        if held is None:
            return {}
        return series_now(*held, last_s)

    def events_since(self, seq: int = 0) -> list[Event]:
        return self.events.since(seq)

    def document(self, caches_limit: int | None, timeout_s: float) -> Document | None:
        """The engine's JSON document of the fleet now (only with `documents`), or None if it
        did not come within `timeout_s` (the engine died: notice() says so)."""
        with self._doc_cond:
            self._doc_asked += 1
            asked = self._doc_asked
        self._send({"t": "doc", "id": asked, "caches_limit": caches_limit})
        deadline = time.monotonic() + timeout_s
        with self._doc_cond:
            while self._doc is None or self._doc.id != asked:
                left = deadline - time.monotonic()
                if left <= 0 or not self._doc_cond.wait(left):
                    return None
            return self._doc

    def watch(self, name: str, on: bool = True) -> None:
        with self._lock:
            if on:
                self._watched.add(name)
            else:
                self._watched.discard(name)
                self._details.pop(name, None)
                self._history.pop(name, None)
                self._version += 1
        self._send({"t": "watch", "name": name, "on": on})

    def target(self, name: str) -> Target | None:
        return self._by_name.get(name)

    def fleet_history(self) -> Sequence[FleetFigures]:
        return ()

    def notice(self) -> str | None:
        return self._notice or self._warning

    def set_interval(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._send({"t": "interval", "s": interval_s})

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        self._send({"t": "pause", "on": paused})

    def poll_now(self) -> None:
        self._send({"t": "poll_now"})

    def watch_clients(self, name: str, on: bool = True) -> None:
        with self._lock:
            (self._clients.add if on else self._clients.discard)(name)
        self._send({"t": "clients", "name": name, "on": on})

    def set_credentials(self, name: str, username: str | None,
                        password: Secret | None) -> None:
        """New credentials for `name`, kept for an engine started later too."""
        old = self._by_name.get(name)
        if old is None:
            return
        new = replace(old, username=username, password=password)
        self._targets = [new if t.name == name else t for t in self._targets]
        self._by_name[name] = new
        self._send({"t": "credentials", "name": name, "username": username,
                    "password": None if password is None else {"secret": password.reveal()}})

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._read_forever, name="engine-reader",
                                         daemon=True)
        self._thread.start()

    def wait_done(self, timeout_s: float) -> bool:
        """--once: wait for the engine's one snapshot."""
        return self._done.wait(timeout_s)

    def wait_hello(self, timeout_s: float) -> bool:
        return self._hello.wait(timeout_s)

    def stop(self) -> None:
        """Stop the engine: ask, then SIGTERM, then SIGKILL; never leaves it running."""
        self._stopping = True
        self._send({"t": "stop"})
        proc, sock = self._proc, self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if proc is not None:
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        if sock is not None:
            sock.close()

    # -- the engine process -------------------------------------------------------------------

    def _spawn(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.abspath(cachetop.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        argv = [sys.executable, "-m", "cachetop.engine", "--fd", str(child.fileno()),
                "--parent", str(os.getpid()), "--codec", CODEC]
        if self._log_file:
            argv += ["--log", self._log_file]
        try:
            self._proc = subprocess.Popen(argv, pass_fds=[child.fileno()], env=env,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, close_fds=True)
        finally:
            child.close()
        with self._send_lock:
            self._sock, self._configured = parent, False
        self._started_at = time.monotonic()

    def _configure(self) -> None:
        """Send a new engine its config, then what the front asked for meanwhile. Runs on the
        reader thread: until the engine's interpreter reads it, a 1,000-target config fills
        the socket's buffer, and the UI thread must not wait for that (~0.2 s after the
        first frame, measured)."""
        with self._send_lock:
            sock = self._sock
            frames = [frame({
                "t": "config", "targets": [target_to_wire(t) for t in self._targets],
                "interval_s": self._interval_s, "history_s": self._history_s,
                "mode": self._mode, "caches_limit": self._caches_limit,
                "thresholds": asdict(self._thresholds) if self._thresholds else None,
                "alerts": rules_to_wire(self._alerts), "documents": self.documents},
                self.codec)]
            frames += [frame({"t": "watch", "name": name, "on": True}, self.codec)
                       for name in sorted(self._watched)]
            frames += [frame({"t": "clients", "name": name, "on": True}, self.codec)
                       for name in sorted(self._clients)]
            if self._paused:
                frames.append(frame({"t": "pause", "on": True}, self.codec))
        while True:
            if sock is not None:
                with self._write_lock, contextlib.suppress(OSError):
                    for data in frames:
                        sock.sendall(data, socket.MSG_NOSIGNAL)
            with self._send_lock:
                frames, self._outbox = self._outbox, []
                if not frames:
                    self._configured = True
                    return

    def _send(self, message: Mapping[str, Any]) -> None:
        data = frame(message, self.codec)
        with self._send_lock:
            if not self._configured:
                # Sent after the config by the reader thread (a message that repeats what
                # the config already says, a watch, is idempotent in the engine).
                self._outbox.append(data)
                return
            sock = self._sock
        if sock is None:
            return
        # An engine that is gone makes this fail: the reader thread sees it and restarts it.
        with self._write_lock, contextlib.suppress(OSError):
            sock.sendall(data, socket.MSG_NOSIGNAL)

    def _read_forever(self) -> None:
        backoff = 0
        while True:
            self._configure()
            reason = self._read_until_gone()
            if self._stopping or self._mode != "live":
                self._done.set()
                return
            lived = time.monotonic() - self._started_at
            backoff = 0 if lived >= STABLE_S else min(backoff + 1, len(RESTART_BACKOFF_S) - 1)
            self.restarts += 1
            self._notice = (f"the engine {reason} at {time.strftime('%H:%M:%S')}; a new one "
                            "was started (history before that is lost)")
            with self._lock:
                self._history.clear()
                self._details.clear()
                self._version += 1
            time.sleep(RESTART_BACKOFF_S[backoff])
            if self._stopping:
                return
            try:
                self._spawn()
            except OSError as exc:
                self._notice = f"the engine {reason} and could not be restarted: {exc}"
                return

    def _read_until_gone(self) -> str:
        """Read frames until the engine goes away; returns how it went."""
        sock, proc = self._sock, self._proc
        assert sock is not None and proc is not None
        reader = FrameReader(CODEC)
        while True:
            try:
                data = sock.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                break
            try:
                for message in reader.feed(data):
                    self._handle(message)
            except (ProtocolError, KeyError, TypeError, ValueError) as exc:
                log.error("the engine sent a message this front does not understand: %s", exc)
                break
        sock.close()
        try:
            code = proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        return describe_exit(code)

    def _handle(self, message: Mapping[str, Any]) -> None:
        kind = message["t"]
        if kind == "snap":
            updates = [(int(i), figures_from_wire(doc)) for i, doc in message["ch"]]
            for row in message.get("ev") or ():
                self.events.add(event_from_wire(row))
            with self._lock:
                for index, figures in updates:
                    if 0 <= index < len(self._figures):
                        self._figures[index] = figures
                self._taken_at = float(message["at"])
                self._interval_s = float(message["iv"])
                self._version += 1
            if self._notice and time.monotonic() - self._started_at > STABLE_S:
                self._notice = None
        elif kind == "detail":
            name, detail = str(message["name"]), detail_from_wire(message["d"])
            with self._lock:
                if detail is not None and name in self._watched:
                    self._details[name] = detail
                    self._version += 1
        elif kind == "hist":
            name = str(message["name"])
            with self._lock:
                if name in self._watched:
                    self._history[name] = (float(message["at"]), series_from_wire(message["s"]))
        elif kind == "doc":
            doc = Document(int(message["id"]), str(message["json"]), int(message["not_up"]),
                           int(message["total"]))
            with self._doc_cond:
                self._doc = doc
                self._doc_cond.notify_all()
        elif kind == "hello":
            self._warning = message.get("warning") or None
            self._hello.set()
        elif kind == "done":
            self._done.set()
