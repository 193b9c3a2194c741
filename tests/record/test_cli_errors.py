"""Bad input to record and replay: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cachetop.fleet import FleetSnapshot, TargetFigures
from cachetop.record.store import Recorder
from cachetop.snapshot_json import snapshot_document

T0 = 1_796_000_000.0


def cachetop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachetop", *args], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ), stdin=subprocess.DEVNULL)


def _one_line(done: subprocess.CompletedProcess[str], says: str) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert says in done.stderr.strip().splitlines()[-1], done.stderr


def test_bad_record_and_replay_input_is_one_line(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.db", keep_s=None)
    t = TargetFigures(name="r", kind="redis", address="h:1", status="up", status_since=T0)
    recorder.write(T0, snapshot_document(FleetSnapshot.build([t], 1.0, T0)))
    recorder.close()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database " * 100)
    _one_line(cachetop("record"), "give the recording's FILE first")
    _one_line(cachetop("record", str(tmp_path / "x.db"), "--record-keep", "soon",
                       "redis://127.0.0.1:1"), "--record-keep")
    _one_line(cachetop("replay", str(tmp_path / "missing.db"), "--at", "end", "--json"),
              "no such file")
    _one_line(cachetop("replay", str(notes), "--at", "end", "--json"), "notes.txt")
    _one_line(cachetop("replay", str(tmp_path / "r.db"), "--at", "yesterday", "--json"),
              "is not a time")
    _one_line(cachetop("replay", str(tmp_path / "r.db"), "--at", "2020-01-01T00:00:00Z",
                       "--json"), "nothing recorded at that time")
    _one_line(cachetop("replay", str(tmp_path / "r.db"), "--at", "end"), "add --json")
