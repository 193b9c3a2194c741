"""Kill tests: the real `cachetop flush` CLI stopped by SIGHUP, SIGTERM or SIGKILL at seeded
random points of a 20,000-key flush always leaves its intent line, and (HUP, TERM) a result
line whose count equals the keys that are gone, counted in the server independently."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.actions.helpers import audit_lines, cli_env, fill
from tests.servers import RedisServer

pytestmark = pytest.mark.slow

KEYS = 20_000
OTHERS = 1_000  # never matched: the flush is not a whole-db wipe, and none may go
SEED = 19
POINTS = 5  # kill points per signal, after the intent line
EARLY = 2  # and from the launch on
RATE = "40000"  # keys/s: the 20,000-key flush takes about half a second, room for the points


def _launch(server: RedisServer, state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cachetop", "flush", server.url, "--pattern",
                             "f:*", "--yes", "--rate", RATE], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(state),
                            stdin=subprocess.DEVNULL)


def _refill(server: RedisServer) -> Any:
    client = server.client()
    client.flushdb()
    fill(client, [b"f:%d" % i for i in range(KEYS)] + [b"o:%d" % i for i in range(OTHERS)])
    assert client.dbsize() == KEYS + OTHERS
    return client


def _records(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit_lines(state)]


def _wait_intent(state: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r["event"] == "intent" for r in _records(state)):
            return
        time.sleep(0.002)
    raise AssertionError(f"no intent line (exit {proc.poll()})")


def _check(proc: subprocess.Popen[str], state: Path, client: Any, signum: int) -> str:
    """The invariants after one kill; returns the outcome, for the spread check."""
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    gone = KEYS + OTHERS - client.dbsize()
    # Every one of the never-matched keys, by name: SCAN may return a key twice while the
    # server rehashes its dict (it shrinks after the flush), so it cannot count them.
    assert client.exists(*[b"o:%d" % i for i in range(OTHERS)]) == OTHERS
    records = _records(state)
    intents = [r for r in records if r["event"] == "intent"]
    results = [r for r in records if r["event"] == "result"]
    if gone:
        assert len(intents) == 1, records  # no key went without its intent on record
    if not intents:
        assert records == [] and gone == 0
        return "before the run"
    if signum == signal.SIGKILL and not results:
        return "killed mid-run" if gone else "killed before a write"
    assert len(intents) == 1 and len(results) == 1, (signal.Signals(signum).name, records)
    assert results[0]["run"] == intents[0]["run"]
    assert results[0]["done"] == gone, (results[0], gone)
    if results[0]["status"] == "done":
        assert gone == KEYS
        return "finished"
    assert results[0]["status"] == "cancelled" and proc.returncode == 130
    return "stopped mid-run" if 0 < gone < KEYS else "stopped at an end"


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGHUP", "SIGTERM", "SIGKILL"])
def test_kill_at_random_points_leaves_a_true_record(signum: int, tmp_path: Path) -> None:
    server = RedisServer()
    server.start()
    rng = random.Random(f"{SEED}-{signum}")
    outcomes = []
    try:
        for point in range(POINTS + EARLY):
            client = _refill(server)
            state = tmp_path / f"state-{point}"
            proc = _launch(server, state)
            if point < EARLY:  # anywhere from start-up and planning into the run
                time.sleep(rng.uniform(0.0, 1.2))
            else:
                _wait_intent(state, proc)
                time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(signum)
            outcomes.append(_check(proc, state, client, signum))
    finally:
        server.close()
    print(signal.Signals(signum).name, outcomes)
    assert any("mid-run" in outcome for outcome in outcomes), outcomes  # the test can bite


def test_sigkill_at_the_first_deleted_key_finds_the_intent_on_disk(tmp_path: Path) -> None:
    """The earliest moment a write is visible in the server, the intent is already on disk."""
    server = RedisServer()
    server.start()
    try:
        client = _refill(server)
        proc = _launch(server, tmp_path)
        deadline = time.monotonic() + 30
        while client.dbsize() == KEYS + OTHERS and time.monotonic() < deadline:
            pass
        proc.kill()
        proc.communicate(timeout=30)
        assert client.dbsize() < KEYS + OTHERS
        assert [r["event"] for r in _records(tmp_path)] == ["intent"]
        assert _records(tmp_path)[0]["planned"] == KEYS
    finally:
        server.close()
