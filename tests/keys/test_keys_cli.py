"""`cachetop keys`: the JSON shape of the issue, the text report, and bad input as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.actions.helpers import cli_env
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachetop", "keys", *args],
                          capture_output=True, text=True, timeout=120, env=cli_env(tmp_path),
                          cwd=ROOT)


def test_json_has_the_shape_of_the_issue(redis_server: RedisServer, tmp_path: Path) -> None:
    client = redis_server.client()
    client.mset({f"user:{i}": "x" * 30 for i in range(300)})
    client.mset({f"cart:{i}": "y" for i in range(100)})
    client.expire("cart:1", 30)
    client.rpush("queue:jobs", *range(50))
    done = run(tmp_path, redis_server.url, "--full", "--json", "--top", "2")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert {"target", "mode", "keys_scanned", "keys_total", "prefixes", "biggest", "hot",
            "hot_unavailable"} <= doc.keys()
    assert (doc["mode"], doc["keys_scanned"], doc["keys_total"]) == ("full", 401, 401)
    prefixes = {p["prefix"]: p for p in doc["prefixes"]}
    assert prefixes["user:"]["keys"] == 300 and prefixes["cart:"]["keys"] == 100
    assert prefixes["cart:"]["ttl"] == {"none": 99, "under_1m": 1, "under_1h": 0, "longer": 0}
    assert doc["prefixes"][0]["prefix"] == "user:"          # the most memory first
    assert len(doc["biggest"]) == 2
    assert {"key", "type", "memory_bytes", "elements"} <= doc["biggest"][0].keys()
    queue = next(t for t in doc["types"] if t["type"] == "list")
    assert queue["most_elements"]["elements"] == 50
    assert doc["hot"] is None and "maxmemory-policy" in doc["hot_unavailable"]


def test_text_report(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.client().mset({f"user:{i}": "x" for i in range(10)})
    done = run(tmp_path, redis_server.url)
    assert done.returncode == 0, done.stderr
    assert "db holds 10 keys" in done.stdout                 # fewer keys than the sample
    assert done.stdout.splitlines()[0].startswith("keys 127.0.0.1:")
    assert "user:" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--depth", "4"], "--depth: must be from 1 to 3"),
    (["--depth", "x"], "--depth: expected a whole number"),
    (["--sample", "5"], "--sample: must be from 100"),
    (["--sample", "100", "--full"], "not allowed with argument"),
    (["--delimiter", ""], "--delimiter: the delimiter cannot be empty"),
    (["--rate", "-3"], "--rate: must be a positive number"),
    (["--top", "0"], "--top: must be from 1"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                               message: str) -> None:
    done = run(tmp_path, "redis://127.0.0.1:1", *args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_bad_targets(tmp_path: Path) -> None:
    unknown = run(tmp_path, "nosuchtarget")
    assert unknown.returncode == 2 and "no target named 'nosuchtarget'" in unknown.stderr
    metrics = run(tmp_path, "http://127.0.0.1:1/metrics")
    assert metrics.returncode == 2 and "needs a Redis or memcached target" in metrics.stderr
    down = run(tmp_path, "redis://user:s3cret@127.0.0.1:1")
    assert down.returncode == 1 and "connection" in down.stdout + down.stderr
    assert "s3cret" not in down.stdout + down.stderr
    assert "Traceback" not in down.stderr
