"""Recording a real redis-server under a known workload: the replay prints what --batch
printed live, and a recorder killed with SIGKILL leaves a readable file missing at most 1 s."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cachetop.record.store import Recording
from tests.servers import RedisServer
from tests.wait import wait_until

TRAFFIC = """
import sys, time, redis
client = redis.Redis(port=int(sys.argv[1]))
client.set("hot", "v")
while True:
    pipe = client.pipeline(transaction=False)
    for _ in range(4):
        pipe.get("hot")
    pipe.get("cold")
    pipe.execute()
    time.sleep(0.002)
"""


@contextmanager
def traffic(server: RedisServer) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-c", TRAFFIC, str(server.port)],
                            stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def cachetop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachetop", *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ), stdin=subprocess.DEVNULL)


def test_replay_prints_what_batch_printed_live(redis_server: RedisServer,
                                               tmp_path: Path) -> None:
    path = tmp_path / "rec.db"
    with traffic(redis_server):
        live = cachetop("--batch", "--json", "--count", "8", "--interval", "0.3", "--record",
                        str(path), redis_server.url)
    assert live.returncode == 0, live.stderr
    printed = [json.loads(line) for line in live.stdout.splitlines()]
    # The workload is 4 hits to 1 miss: the figures are of that workload, not zeros.
    assert printed[-1]["targets"][0]["hit_ratio"] == 0.8
    replayed = cachetop("replay", str(path), "--from", "start", "--to", "end", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert [json.loads(line) for line in replayed.stdout.splitlines()] == printed
    times = Recording(path).times()
    at = cachetop("replay", str(path), "--at", repr(times[4] + 0.01), "--json")
    assert json.loads(at.stdout) == printed[4]


def test_sigkill_leaves_a_readable_file_missing_at_most_a_second(
        redis_server: RedisServer, tmp_path: Path) -> None:
    path = tmp_path / "rec.db"
    proc = subprocess.Popen([sys.executable, "-m", "cachetop", "record", str(path),
                             "--interval", "0.2", redis_server.url], env=dict(os.environ),
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def frames() -> int:
            if not path.exists():
                return 0
            try:
                return len(Recording(path).times())
            except Exception:  # noqa: BLE001 - the file may be mid-creation
                return 0

        wait_until(lambda: frames() >= 10, "ten frames recorded")
    finally:
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    recording = Recording(path)
    span = recording.span()
    assert span is not None
    assert killed_at - span[1] <= 1.0
    assert recording.at(span[1])["targets"][0]["status"] == "up"
    replayed = cachetop("replay", str(path), "--at", "end", "--json")
    assert replayed.returncode == 0 and json.loads(replayed.stdout)["targets"]
