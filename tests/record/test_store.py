"""The recording file: what goes in comes out exactly (JSON-equal), keyframes and deltas,
retention, and a file that is not a recording."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachetop.errors import RecordingError
from cachetop.events.model import Event
from cachetop.fleet import FleetSnapshot, Latency, TargetFigures
from cachetop.record.store import Recorder, Recording
from cachetop.snapshot_json import snapshot_document

T0 = 1_796_000_000.0
STATUSES = ["up", "down", "restarted", "timeout"]
maybe = st.one_of(st.none(), st.floats(0, 1e12, allow_nan=False))


@st.composite
def fleet(draw: st.DrawFn, n: int) -> list[TargetFigures]:
    out = []
    for i in range(n):
        status = draw(st.sampled_from(STATUSES))
        out.append(TargetFigures(
            name=f"t{i}", kind="redis", address=f"10.0.0.{i}:6379", group=draw(
                st.sampled_from(["", "a"])), status=status,
            error=draw(st.one_of(st.none(), st.text(max_size=20))),
            status_since=T0 - draw(st.integers(0, 10_000)), last_success=T0,
            ops_per_s=draw(maybe), hit_ratio=draw(st.one_of(st.none(), st.floats(0, 1))),
            memory_used_bytes=draw(st.one_of(st.none(), st.integers(0, 2**40))),
            keys=draw(st.one_of(st.none(), st.integers(0, 10**9))),
            server_latency=Latency(draw(maybe), None, draw(maybe), "interval"),
            probe_latency=Latency(draw(maybe), draw(maybe), draw(maybe), "probe 60s"),
            degraded=tuple(draw(st.lists(st.text(max_size=5), max_size=2)))))
    return out


@settings(max_examples=40)  # each example is a SQLite file
@given(frames=st.lists(fleet(3), min_size=1, max_size=8), key_every=st.integers(1, 4))
def test_every_frame_reads_back_as_the_document_that_was_written(
        tmp_path_factory: pytest.TempPathFactory, frames: list[list[TargetFigures]],
        key_every: int) -> None:
    path = tmp_path_factory.mktemp("rec") / "r.db"
    recorder = Recorder(path, keep_s=None, key_every=key_every)
    written = []
    for i, targets in enumerate(frames):
        snap = FleetSnapshot.build(targets, 1.0, T0 + i)
        events = [Event(T0 + i - 0.5, "t0", "status", f"event {i}")] if i % 2 else []
        doc = snapshot_document(snap, None, events)
        recorder.write(snap.taken_at, doc, events)
        written.append(doc)
    recorder.close()
    recording = Recording(path)
    assert list(recording.between(T0, T0 + len(frames))) == written
    middle = len(frames) // 2
    assert recording.at(T0 + middle + 0.3) == written[middle]  # the frame shown then


def _doc(i: int) -> dict[str, object]:
    t = TargetFigures(name="r", kind="redis", address="h:1", status="up", status_since=T0,
                      last_success=T0 + i, ops_per_s=float(i))
    return snapshot_document(FleetSnapshot.build([t], 1.0, T0 + i))


def test_retention_drops_old_frames_and_events_and_what_is_left_decodes(
        tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.db", keep_s=50.0, key_every=10)
    for i in range(200):
        recorder.write(T0 + i, _doc(i), [Event(T0 + i, "r", "status", f"e{i}")])
    recording = Recording(tmp_path / "r.db")
    first, last = recording.span()  # type: ignore[misc]
    # Retention runs every 60 frames (at 59, 119, 179) and keeps from the keyframe at or
    # before the cutoff: the last pass at 179 cut at 129, whose keyframe is 120.
    assert (first - T0, last - T0) == (120.0, 199.0)
    assert recording.at(first)["targets"][0]["ops_per_sec"] == 120.0  # type: ignore[index]
    assert [e.text for e in recording.events()][:1] == ["e120"]


def test_a_file_that_is_not_a_recording_is_one_clear_error(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    with pytest.raises(RecordingError, match="not a cachetop recording"):
        Recording(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 1000)
    with pytest.raises(RecordingError, match="notes.txt"):
        Recording(text)
    with pytest.raises(RecordingError, match="no such file"):
        Recording(tmp_path / "missing.db")


def test_a_document_of_another_shape_round_trips(tmp_path: Path) -> None:
    """A cluster's document has `topology` and `nodes` and no `caches`: kept as written."""
    t = TargetFigures(name="c", kind="redis-cluster", address="h:1", status="up",
                      status_since=T0, last_success=T0, ops_per_s=5.0)
    doc = snapshot_document(FleetSnapshot.build([t], 1.0, T0))
    target = doc["targets"][0]
    for key in ("caches", "caches_total", "caches_cut"):
        target.pop(key, None)
    target["topology"] = {"nodes_up": 3, "nodes_total": 3, "master": None}
    target["nodes"] = [{"name": "n1", "role": "primary", "slots": [[0, 5460]]}]
    recorder = Recorder(tmp_path / "r.db", keep_s=None)
    recorder.write(T0, doc)
    recorder.write(T0 + 1, doc)
    recorder.close()
    assert list(Recording(tmp_path / "r.db").between(T0, T0 + 1)) == [doc, doc]
