"""The events model: ordering and bounds of the log, and what the detector calls news."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from cachetop.config import Thresholds
from cachetop.events.audit_tail import AuditTail
from cachetop.events.detect import CLEAR_INTERVALS, EventDetector
from cachetop.events.model import EventLog
from cachetop.fleet import TargetFigures

UP = TargetFigures(name="r", kind="redis", address="h:1", status="up", interval_s=1.0)


def test_the_log_gives_each_reader_what_it_missed_in_order_and_stays_bounded() -> None:
    log = EventLog(keep=5)
    for i in range(8):
        log.emit("status", f"t{i}", f"text {i}")
    assert [e.target for e in log.since(0)] == ["t3", "t4", "t5", "t6", "t7"]  # 3 dropped
    assert [e.target for e in log.since(6)] == ["t6", "t7"]
    assert log.since(8) == [] and log.since(100) == []
    assert [e.target for e in log.since(0, target="t5")] == ["t5"]


def test_status_changes_say_their_reason_and_quiet_ones_are_not_news() -> None:
    detector = EventDetector(Thresholds())
    pending = replace(UP, status="pending", interval_s=None)
    down = replace(UP, status="down", error="connection refused", interval_s=None)
    restarted = replace(UP, status="restarted", error="uptime went back", interval_s=None)
    steps = [pending, replace(UP, interval_s=None), UP, down, down, restarted, UP]
    found = [detector.observe(0, a, b) for a, b in zip(steps, steps[1:], strict=False)]
    assert found == [[], [], [("status", "down: connection refused")], [],
                     [("restart", "uptime went back")], []]


def test_a_threshold_is_crossed_once_and_cleared_after_holding_good() -> None:
    detector = EventDetector(Thresholds(hit_ratio_below=0.80, evictions_per_s_above=1e9,
                                        p99_ms_above=1e9))
    ratios = [0.95, 0.50, 0.40, 0.90, 0.70, None, 0.90, 0.91, 0.92, 0.93]
    events = []
    prev = UP
    for ratio in ratios:
        cur = replace(UP, hit_ratio=ratio)
        events += [kind for kind, _ in detector.observe(0, prev, cur)]
        prev = cur
    # crossed at 0.50; 0.90 then 0.70 restarts the count; None counts nothing; then 3 good.
    assert CLEAR_INTERVALS == 3
    assert events == ["threshold", "cleared"]


def test_actions_are_read_from_the_audit_log_for_this_fleet_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text(json.dumps({"event": "result", "target": "r", "address": "h:1"}) + "\n")
    tail = AuditTail([("r", "h:1")], path)  # starts at the end: the old line is history
    lines = [
        {"event": "intent", "run": "a", "target": "r", "address": "h:1", "subject": "'k*'"},
        {"event": "result", "run": "a", "target": "r", "address": "h:1", "action": "flush",
         "done": 800, "planned": 800, "status": "done"},
        {"event": "result", "run": "b", "target": "r", "address": "other:1", "action": "flush"},
    ]
    with path.open("a") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines) + '{"event": "res')
    assert tail.read() == [(None, "r", "action", "flush 'k*': deleted 800 of 800 done")]
    with path.open("a") as f:  # the rest of a line that was half written
        f.write('ult", "target": "r", "address": "h:1", "action": "delete", "status": "done"}\n')
    assert tail.read() == [(None, "r", "action", "delete: done")]
