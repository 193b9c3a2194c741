"""`cachetop --once/--batch` end to end, as a script would run it, against real servers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.servers import MemcachedServer, RedisServer, free_port


def cachetop(*args: str, env: dict[str, str] | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CACHETOP_")}
    full_env["XDG_CONFIG_HOME"] = "/nonexistent-cachetop-test"
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "cachetop", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


@contextmanager
def thirty_caches() -> Iterator[tuple[str, list[int]]]:
    """A metrics endpoint of 30 caches where cache i gains i * 10 hits a scrape (c25..c29 are
    the busiest); yields its URL and the scrape list (clear it to start the count again)."""
    from tests.collectors.test_prom_endpoint import RouteServer, respond

    scrapes: list[int] = []

    def body() -> bytes:
        scrapes.append(1)
        return "".join(f'cache_hits_total{{cache="c{i}"}} {i * 10 * len(scrapes)}\n'
                       f'cache_misses_total{{cache="c{i}"}} 1\n' for i in range(30)).encode()

    server = RouteServer()
    server.start()
    try:
        server.routes["/metrics"] = lambda handler: respond(handler, body())
        yield server.url("/metrics"), scrapes
    finally:
        server.close()


def test_once_json_reports_interval_figures(redis_server: RedisServer,
                                            memcached_server: MemcachedServer) -> None:
    client = redis_server.client()
    client.set("hot", "v")
    for i in range(1000):
        client.get(f"cold{i}")                     # lifetime: 1,000 misses
    stop = threading.Event()

    def hits_only() -> None:
        c = redis_server.client()
        while not stop.is_set():
            c.get("hot")
            time.sleep(0.002)

    worker = threading.Thread(target=hits_only)
    worker.start()
    try:
        out = cachetop("--once", "--json", "--interval", "0.5", redis_server.url,
                       memcached_server.url, f"redis://127.0.0.1:{free_port()}")
    finally:
        stop.set()
        worker.join()
    assert out.returncode == 1, out.stderr          # one target is down: 1 (README's codes)
    doc = json.loads(out.stdout)
    redis_doc, mc_doc, down_doc = doc["targets"]
    assert redis_doc["status"] == "up"
    assert redis_doc["hit_ratio"] == 1.0           # the interval had hits only
    assert redis_doc["lifetime_hit_ratio"] < 0.5    # the lifetime ratio did not leak in
    assert redis_doc["ops_per_sec"] > 50
    assert redis_doc["address"] == f"127.0.0.1:{redis_server.port}"
    assert redis_doc["latency_ms"]["probe"]["p50"] > 0
    assert mc_doc["kind"] == "memcached"
    assert mc_doc["hit_ratio"] is None              # no lookups: null, never 0
    assert down_doc["status"] == "down"
    assert down_doc["error"] == "connection refused"
    assert down_doc["ops_per_sec"] is None
    assert doc["fleet"]["targets_up"] == 2
    assert doc["fleet"]["targets_total"] == 3


def test_batch_prints_one_json_line_per_interval(redis_server: RedisServer) -> None:
    started = time.monotonic()
    out = cachetop("--batch", "--count", "3", "--json", "--interval", "0.3", redis_server.url)
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3
    docs = [json.loads(line) for line in lines]
    assert all(d["targets"][0]["status"] == "up" for d in docs)
    assert docs[-1]["targets"][0]["ops_per_sec"] is not None
    assert elapsed < 10


def test_password_never_in_output() -> None:
    server = RedisServer("--requirepass", "S3cretPw")
    server.start()
    try:
        good = cachetop("--once", "--json", "--interval", "0.2",
                        f"redis://:S3cretPw@127.0.0.1:{server.port}")
        bad = cachetop("--once", "--json", "--interval", "0.2",
                       f"redis://:Wr0ngPw@127.0.0.1:{server.port}")
    finally:
        server.close()
    assert json.loads(good.stdout)["targets"][0]["status"] == "up"
    bad_doc = json.loads(bad.stdout)["targets"][0]
    assert bad_doc["status"] == "auth-failed"
    for out, secret in ((good, "S3cretPw"), (bad, "Wr0ngPw")):
        assert secret not in out.stdout
        assert secret not in out.stderr


def test_config_file_targets_and_errors(tmp_path: Path, redis_server: RedisServer) -> None:
    config = tmp_path / "cachetop.toml"
    config.write_text(f'interval = 0.3\n[[targets]]\nname = "sessions"\n'
                      f'url = "{redis_server.url}"\npassword_env = "CT_TEST_PW"\n')
    missing = cachetop("--once", "--config", str(config))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert "targets[0].password_env" in missing.stderr
    assert str(config) in missing.stderr

    config.write_text(f'interval = 0.3\n[[targets]]\nname = "sessions"\nurl = "{redis_server.url}"'
                      '\ncolour = "red"\n')
    unknown = cachetop("--once", "--config", str(config))
    assert unknown.returncode == 2
    assert "targets[0].colour: unknown key" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    config.write_text(f'interval = 0.3\n[[targets]]\nname = "sessions"\n'
                      f'url = "{redis_server.url}"\n')
    ok = cachetop("--once", "--json", env={"CACHETOP_CONFIG": str(config)})
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert [t["name"] for t in doc["targets"]] == ["sessions"]
    assert doc["interval_s"] == 0.3


def test_bad_url_is_one_line_exit_2() -> None:
    out = cachetop("--once", "ftp://127.0.0.1:1")
    assert out.returncode == 2
    assert out.stderr.startswith("cachetop: ")
    assert out.stderr.count("\n") == 1


def test_json_output_is_ascii_and_keeps_hostile_labels_exactly(tmp_path: Path) -> None:
    """A label with a bidi override and an 8-bit CSI would reach the terminal raw with
    ensure_ascii=False; escaped as \\uXXXX the JSON still decodes to the exact label."""
    from tests.collectors.test_prom_endpoint import RouteServer

    label = "a\u202eb\x9b[2Jc"
    body = (f'cache_hits_total{{cache="{label}"}} 5\n'
            f'cache_misses_total{{cache="{label}"}} 1\n').encode()
    server = RouteServer()
    server.start()
    try:
        out = cachetop("--once", "--json", "--interval", "0.2", server.serve("/metrics", body))
    finally:
        server.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.isascii()
    doc = json.loads(out.stdout)
    assert [c["name"] for c in doc["targets"][0]["caches"]] == [label]


def test_caches_limit_keeps_the_busiest_caches_and_says_how_many_were_cut() -> None:
    """30 caches; between the two polls of --once, cache i gets i * 10 more hits, so the five
    busiest are c25..c29. Without the option every cache is listed."""
    with thirty_caches() as (url, scrapes):
        cut = cachetop("--once", "--json", "--interval", "0.3", "--caches-limit", "5", url)
        scrapes.clear()
        whole = cachetop("--once", "--json", "--interval", "0.3", url)
        refused = cachetop("--once", "--json", "--caches-limit", "-1", url)
    assert cut.returncode == 0, cut.stderr
    endpoint = json.loads(cut.stdout)["targets"][0]
    assert [c["name"] for c in endpoint["caches"]] == [f"c{i}" for i in range(25, 30)]
    assert (endpoint["caches_total"], endpoint["caches_cut"]) == (30, 25)
    # The endpoint's own row still covers all 30: 10 x (0 + ... + 29) hits, against
    # 10 x (25 + ... + 29) for the five listed.
    shown_ops = sum(c["ops_per_sec"] for c in endpoint["caches"])
    assert endpoint["ops_per_sec"] / shown_ops == pytest.approx(435 / 135)
    everything = json.loads(whole.stdout)["targets"][0]
    assert sorted(c["name"] for c in everything["caches"]) == sorted(f"c{i}" for i in range(30))
    assert (everything["caches_total"], everything["caches_cut"]) == (30, 0)
    assert refused.returncode == 2 and "--caches-limit must be 0 or more" in refused.stderr


def test_batch_json_lines_written_by_the_engine_keep_the_caches_limit() -> None:
    """`--batch --json` lines are written by the engine (the front only prints them): the
    limit still applies there. Cache i gains i * 10 hits a scrape: c25..c29 are the busiest."""
    with thirty_caches() as (url, _):
        out = cachetop("--batch", "--count", "3", "--json", "--interval", "0.3",
                       "--caches-limit", "5", url)
    assert out.returncode == 0, out.stderr
    endpoint = json.loads(out.stdout.splitlines()[-1])["targets"][0]
    assert [c["name"] for c in endpoint["caches"]] == [f"c{i}" for i in range(25, 30)]
    assert (endpoint["caches_total"], endpoint["caches_cut"]) == (30, 25)
