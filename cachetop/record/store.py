"""Provides Recorder (writes a recording) and Recording (reads and seeks one).

The file is SQLite in WAL mode: a frame per snapshot, committed as it is written, so a writer
killed at any moment (SIGKILL included) leaves a file that opens and holds every frame but
the one being written. Every KEY_EVERY-th frame is a keyframe (codec.py), so a seek decodes
at most KEY_EVERY frames, never from the start. Retention deletes whole keyframe runs older
than `keep_s`, and the events of that time.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cachetop.errors import RecordingError
from cachetop.events.model import Event
from cachetop.record.codec import FrameState, decode, documents, encode
from cachetop.snapshot_json import event_document

FORMAT = 1
KEY_EVERY = 30
RETENTION_EVERY = 60  # frames between retention passes
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS targets (t REAL PRIMARY KEY, identity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS frames (t REAL PRIMARY KEY, key INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, t REAL NOT NULL, frame REAL NOT NULL,
                                   target TEXT, kind TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_t ON events (t);
CREATE INDEX IF NOT EXISTS events_frame ON events (frame);
"""


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives the process dying
    except sqlite3.Error as exc:
        raise RecordingError(f"{path}: cannot open as a recording: {exc}") from None
    return db


class Recorder:
    """Writes documents (snapshot_json's, events included) as frames. Not thread-safe: one
    writer; see RecorderThread to keep disk writes off a UI or poll thread."""

    def __init__(self, path: str | Path, keep_s: float | None = 48 * 3600.0,
                 key_every: int = KEY_EVERY) -> None:
        self.path = Path(path)
        fresh = not self.path.exists()
        self.db = _connect(self.path)
        if fresh:
            os.chmod(self.path, 0o600)  # figures and target addresses: the user's only
        try:
            self.db.executescript(SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT),))
        except sqlite3.Error as exc:
            raise RecordingError(f"{self.path}: cannot write a recording there: {exc}") from None
        _check_format(self.db, self.path)
        self.keep_s = keep_s
        self.key_every = key_every
        self._state = FrameState()
        self._since_key = 0
        self._identity: list[list[str]] | None = None
        self._written = 0
        self._last_t = 0.0

    def write(self, taken_at: float, doc: Mapping[str, Any], events: Sequence[Event] = ()) -> None:
        """One snapshot document and the events that came with it, committed on return."""
        targets = doc["targets"]
        identity = [[t["name"], t["kind"], t["address"]] for t in targets]
        t = max(taken_at, self._last_t + 1e-6)  # times are keys: strictly increasing
        key = identity != self._identity or self._since_key >= self.key_every - 1
        # Everything but the targets and events (time, interval, fleet, layers and any later
        # top-level block), so a document of a newer shape still reads back as written.
        head = {k: v for k, v in doc.items() if k not in ("targets", "events")}
        blob = encode(head, targets, self._state, key)
        self._since_key = 0 if key else self._since_key + 1
        db = self.db
        db.execute("BEGIN")
        try:
            if identity != self._identity:
                db.execute("INSERT OR REPLACE INTO targets VALUES (?, ?)",
                           (t, json.dumps(identity)))
                self._identity = identity
            db.execute("INSERT INTO frames VALUES (?, ?, ?)", (t, int(key), blob))
            db.executemany("INSERT INTO events (t, frame, target, kind, text) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(e.time, t, e.target, e.kind, e.text) for e in events])
            db.execute("COMMIT")
        except sqlite3.Error:
            db.execute("ROLLBACK")
            raise
        self._last_t = t
        self._written += 1
        if self.keep_s is not None and self._written % RETENTION_EVERY == 0:
            self.drop_before(t - self.keep_s)

    def drop_before(self, cutoff: float) -> None:
        """Delete what is older than `cutoff`, keeping the keyframe the rest decodes from."""
        db = self.db
        row = db.execute("SELECT max(t) FROM frames WHERE key = 1 AND t <= ?",
                         (cutoff,)).fetchone()
        start = row[0] if row and row[0] is not None else None
        if start is None:
            return
        db.execute("BEGIN")
        db.execute("DELETE FROM frames WHERE t < ?", (start,))
        db.execute("DELETE FROM events WHERE frame < ?", (start,))
        first_identity = db.execute("SELECT max(t) FROM targets WHERE t <= ?",
                                    (start,)).fetchone()[0]
        if first_identity is not None:
            db.execute("DELETE FROM targets WHERE t < ?", (first_identity,))
        db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


Doc = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


class RecorderThread:
    """A Recorder on a thread of its own: `put` never waits for the disk. A write that fails
    is kept as `error` for the front to show; later puts are dropped."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.error: str | None = None
        self._queue: queue.Queue[tuple[float, Doc, Sequence[Event]] | None] = queue.Queue(
            maxsize=64)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def put(self, taken_at: float, doc: Doc, events: Sequence[Event]) -> None:
        """Queue a document, or a function building it (run on the recorder's thread: at
        1,000 targets a document costs tens of milliseconds a UI thread need not spend)."""
        if self.error is None:
            try:
                self._queue.put_nowait((taken_at, doc, events))
            except queue.Full:
                self.error = "the recording falls behind (disk too slow): recording stopped"

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            taken_at, doc, events = item
            try:
                self.recorder.write(taken_at, doc() if callable(doc) else doc, events)
            except (sqlite3.Error, OSError) as exc:
                self.error = f"recording to {self.recorder.path} failed: {exc}"
                return

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10.0)
        self.recorder.close()


def _check_format(db: sqlite3.Connection, path: Path) -> None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    except sqlite3.Error:
        raise RecordingError(f"{path}: not a cachetop recording") from None
    if row is None or row[0] != str(FORMAT):
        raise RecordingError(f"{path}: not a cachetop recording of format {FORMAT}")


class Recording:
    """A recording opened for reading: frame times, the document at a time, a range."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RecordingError(f"{path}: no such file")
        self.db = _connect(self.path)
        _check_format(self.db, self.path)

    def span(self) -> tuple[float, float] | None:
        row = self.db.execute("SELECT min(t), max(t) FROM frames").fetchone()
        return None if row[0] is None else (float(row[0]), float(row[1]))

    def times(self) -> list[float]:
        return [r[0] for r in self.db.execute("SELECT t FROM frames ORDER BY t")]

    def frame_at(self, at: float) -> float:
        """The time of the frame shown at `at`: the last one at or before it."""
        row = self.db.execute("SELECT max(t) FROM frames WHERE t <= ?", (at,)).fetchone()
        if row[0] is None:
            span = self.span()
            if span is None:
                raise RecordingError(f"{self.path}: the recording is empty")
            raise RecordingError(f"{self.path}: nothing recorded at that time; it covers "
                                 f"{_iso(span[0])} to {_iso(span[1])}")
        return float(row[0])

    def at(self, at: float) -> dict[str, Any]:
        """The document of the frame at or before `at`, with the events since the frame
        before it."""
        t = self.frame_at(at)
        return next(self._documents(t, t))

    def between(self, start: float, end: float) -> Iterator[dict[str, Any]]:
        """Every document from `start` (the frame shown then) to `end`."""
        span = self.span()
        if span is None:
            raise RecordingError(f"{self.path}: the recording is empty")
        return self._documents(self.frame_at(start) if start >= span[0] else span[0], end)

    def events(self, start: float = float("-inf"), end: float = float("inf"),
               target: str | None = None) -> list[Event]:
        sql = "SELECT t, target, kind, text, id FROM events WHERE t > ? AND t <= ?"
        args: list[Any] = [start, end]
        if target is not None:
            sql += " AND target = ?"
            args.append(target)
        return [Event(r[0], r[1] or "", r[2], r[3], r[4])
                for r in self.db.execute(sql + " ORDER BY t, id", args)]

    def target_series(self, name: str, start: float, end: float
                      ) -> list[tuple[float, dict[str, Any]]]:
        """One target's documents from `start` to `end` (charts of a replay)."""
        return [(t, doc) for t, doc in self._frames(start, end, name)]

    def _documents(self, start: float, end: float) -> Iterator[dict[str, Any]]:
        for _, doc in self._frames(start, end, None):
            yield doc

    def _frames(self, start: float, end: float, only: str | None
                ) -> Iterator[tuple[float, dict[str, Any]]]:
        db = self.db
        key_row = db.execute("SELECT max(t) FROM frames WHERE key = 1 AND t <= ?",
                             (start,)).fetchone()
        from_t = key_row[0] if key_row[0] is not None else start
        state = FrameState()
        identity: list[list[str]] = []
        identity_t = None
        rows = db.execute("SELECT t, key, data FROM frames WHERE t >= ? AND t <= ? AND "
                          "(key = 1 OR t >= ?) ORDER BY t", (from_t, end, start)).fetchall()
        for t, key, blob in rows:  # the keyframe, then only the frames asked for
            row = db.execute("SELECT t, identity FROM targets WHERE t <= ? ORDER BY t DESC "
                             "LIMIT 1", (t,)).fetchone()
            if row is not None and row[0] != identity_t:
                identity_t, identity = row[0], json.loads(row[1])
            head, _ = decode(blob, state, bool(key))
            if t < start:
                continue
            if only is not None:
                index = next((i for i, ident in enumerate(identity) if ident[0] == only), None)
                if index is not None:
                    yield t, documents(state, identity, index)[0]
                continue
            events = [Event(r[0], r[1] or "", r[2], r[3]) for r in db.execute(
                "SELECT t, target, kind, text FROM events WHERE frame = ? ORDER BY id", (t,))]
            yield t, {**head, "targets": documents(state, identity),
                      "events": [event_document(e) for e in events]}

    def close(self) -> None:
        self.db.close()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
