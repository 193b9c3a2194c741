"""One incident on a real redis-server, step by step, and the events it must produce.

Each step changes the server (kill, restart, a workload, a flush from another process); the
caller waits, in its own way (pilot or JSON lines), for the step's event before the next, so
the expected order is the order things were done in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.servers import RedisServer

THRESHOLDS_TOML = """
[thresholds]
hit_ratio_below = 0.80
p99_ms_above = 100000      # a loaded machine must not add latency events to the story
evictions_per_s_above = 1000000
"""

# (kind, words the text has) in the order the steps produce them.
EXPECTED = [("status", "down"), ("restart", ""), ("threshold", "hit ratio 0.0% below 80%"),
            ("action", "flush pattern 'k*': deleted 1 of 1 done")]


def kill(server: RedisServer) -> None:
    assert server.proc is not None
    server.proc.kill()  # SIGKILL: no shutdown, no save
    server.proc.wait()
    server.proc = None


def restart(server: RedisServer) -> None:
    server.start()  # same port, a new instance: its run_id differs


def hits(server: RedisServer, n: int = 800) -> None:
    client = server.client()
    client.set("k1", "v")
    client.set("other", "v")  # the flush pattern must not match every key
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        pipe.get("k1")
    pipe.execute()


def misses(server: RedisServer, n: int = 400) -> None:
    pipe = server.client().pipeline(transaction=False)
    for i in range(n):
        pipe.get(f"nothing:{i}")
    pipe.execute()


def flush(server: RedisServer) -> None:
    """`cachetop flush` in another process: the audit log is how the watcher learns of it."""
    done = subprocess.run([sys.executable, "-m", "cachetop", "flush", server.url,
                           "--pattern", "k*", "--yes"], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr


def in_order(seen: list[tuple[str, str]], expected: list[tuple[str, str]] = EXPECTED) -> bool:
    """`expected` appears in `seen` as a subsequence (other events may come between)."""
    it = iter(seen)
    return all(any(kind == k and words in text for k, text in it) for kind, words in expected)


def thresholds_file(tmp_path: Path) -> Path:
    path = tmp_path / "cachetop.toml"
    path.write_text(THRESHOLDS_TOML)
    path.chmod(0o600)
    return path


Step = Callable[[RedisServer], None]
