"""memcached key analysis on a real memcached: prefixes from metadump, hit ratios from
`stats detail`, and `stats detail` back to its prior state when cachetop exits (SIGTERM too)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachetop.actions.connect import McConnection
from cachetop.keys.memcached_detail import DetailSwitch, read_settings, restore_all
from cachetop.keys.memcached_keys import analyze_memcached
from cachetop.target_url import parse_target_url
from tests.actions.helpers import cli_env, kill
from tests.servers import MemcachedServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mc() -> Iterator[MemcachedServer]:
    server = MemcachedServer()
    server.start()
    yield server
    restore_all()
    kill(server)


def detail_on(server: MemcachedServer) -> bool:
    with McConnection(parse_target_url(server.url)) as conn:
        return read_settings(conn)[0]


def set_detail(server: MemcachedServer, on: bool) -> None:
    with McConnection(parse_target_url(server.url)) as conn:
        conn.command(b"stats detail " + (b"on" if on else b"off"))


def test_known_hits_and_misses_give_those_ratios_per_prefix(mc: MemcachedServer) -> None:
    client = mc.client()
    for i in range(50):
        client.set(f"user:{i}", b"u" * 10)
    for i in range(20):
        client.set(f"page:{i}", b"p" * 500, expire=1800)

    def workload() -> None:
        """In the interval: user 80 hits / 20 misses, page 30 hits / 70 misses, cart (no
        item at all) 0 of 10."""
        for i in range(80):
            client.get(f"user:{i % 50}")
        for i in range(20):
            client.get(f"user:missing{i}")
        for i in range(30):
            client.get(f"page:{i % 20}")
        for i in range(70):
            client.get(f"page:gone{i}")
        for i in range(10):
            client.get(f"cart:{i}")

    switch = DetailSwitch(parse_target_url(mc.url))
    report = analyze_memcached(parse_target_url(mc.url), enable_detail=True, interval_s=0.5,
                               switch=switch, after_first_dump=workload)
    assert report.status == "done", report.error
    rows = {r.prefix: r for r in report.prefixes}
    assert rows[b"user:"].hit_ratio == pytest.approx(0.8)
    assert rows[b"page:"].hit_ratio == pytest.approx(0.3)
    assert rows[b"cart:"].hit_ratio == 0.0 and rows[b"cart:"].keys.value == 0
    assert rows[b"user:"].keys.value == 50 and rows[b"page:"].keys.value == 20
    assert rows[b"page:"].ttl["under_1h"] == 20 and rows[b"user:"].ttl["none"] == 50
    assert rows[b"page:"].memory_bytes is not None
    assert rows[b"page:"].memory_bytes.value > rows[b"user:"].memory_bytes.value  # type: ignore[union-attr]
    assert report.detail == {"before": "off", "enabled_by_cachetop": "yes",
                             "interval_s": report.detail["interval_s"]}
    assert detail_on(mc)                       # still on: this process has not stopped yet
    assert switch.restore() is None
    assert not detail_on(mc)


def test_without_enable_detail_nothing_changes_and_the_reason_is_said(
        mc: MemcachedServer) -> None:
    mc.client().set("user:1", b"x")
    report = analyze_memcached(parse_target_url(mc.url))
    assert not detail_on(mc)
    assert all(r.hit_ratio is None for r in report.prefixes)
    assert any("--enable-detail" in note for note in report.notes)


def _cli(mc: MemcachedServer, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cachetop", "keys", mc.url, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(tmp_path), cwd=ROOT)


def test_the_cli_turns_detail_back_off_when_it_ends(mc: MemcachedServer,
                                                    tmp_path: Path) -> None:
    mc.client().set("user:1", b"x")
    proc = _cli(mc, tmp_path, "--enable-detail", "--interval", "0.3", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["detail"]["enabled_by_cachetop"] == "yes"
    assert not detail_on(mc)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_interval_still_turns_detail_back_off(mc: MemcachedServer,
                                                           tmp_path: Path,
                                                           signum: int) -> None:
    mc.client().set("user:1", b"x")
    proc = _cli(mc, tmp_path, "--enable-detail", "--interval", "60")
    deadline = time.monotonic() + 30
    while not detail_on(mc):                     # the CLI turned it on: it is in its interval
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "cancelled" in out
    assert not detail_on(mc)


def test_detail_already_on_is_left_on(mc: MemcachedServer, tmp_path: Path) -> None:
    set_detail(mc, True)
    proc = _cli(mc, tmp_path, "--enable-detail", "--interval", "0.3", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["detail"] == {"before": "on", "interval_s": json.loads(out)[
        "detail"]["interval_s"]}
    assert detail_on(mc)
