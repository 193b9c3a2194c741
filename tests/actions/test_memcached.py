"""memcached actions on a real memcached: flush_all, delete, pattern flush via metadump."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cachetop.actions import ActionError, Progress, execute, plan_delete, plan_flush, plan_flushdb
from cachetop.actions.glob import glob_match
from cachetop.actions.memcached_dump import parse_metadump_line
from tests.actions.helpers import cli_env, confirmed, kill, target_of
from tests.servers import MemcachedServer


def _fill(server: MemcachedServer, keys: list[bytes], ttl: int = 0) -> None:
    client = server.client()
    client.set_many(dict.fromkeys(keys, b"v"), expire=ttl, noreply=False)


def test_metadump_line_is_url_decoded() -> None:
    item = parse_metadump_line(b"key=a%3Ab%25c%C3%A9 exp=-1 la=1 cas=4 fetch=no cls=1 size=65")
    assert item is not None and item.key == b"a:b%c\xc3\xa9" and item.exp == -1
    assert item.size == 65


def test_flush_all(mc_server: MemcachedServer) -> None:
    _fill(mc_server, [b"k%d" % i for i in range(100)])
    plan = plan_flushdb(target_of(mc_server))
    assert plan.action == "flush_all" and plan.count == 100
    assert plan.wipes_all and plan.confirm_name == f"127.0.0.1:{mc_server.port}"
    assert execute(plan).status == "refused"  # flush_all needs the name typed
    assert mc_server.client().get(b"k1") == b"v"
    result = execute(plan, confirmation=plan.confirm_name)
    assert (result.status, result.deleted) == ("done", 100)
    assert mc_server.client().get(b"k1") is None


def test_flush_all_with_a_delay(mc_server: MemcachedServer) -> None:
    _fill(mc_server, [b"k1"])
    plan = plan_flushdb(target_of(mc_server), delay_s=3)
    assert "in 3s" in plan.description
    assert execute(plan, confirmation=plan.confirm_name).status == "done"
    assert mc_server.client().get(b"k1") == b"v"  # not yet: the flush is 3 s away


def test_delete_one_key(mc_server: MemcachedServer) -> None:
    _fill(mc_server, [b"a*b", b"axb"], ttl=100)
    plan = plan_delete(target_of(mc_server), b"a*b")
    assert plan.count == 1 and plan.sample[0].ttl_s is not None and plan.sample[0].ttl_s > 90
    assert execute(plan).deleted == 1
    client = mc_server.client()
    assert client.get(b"a*b") is None and client.get(b"axb") == b"v"
    missing = plan_delete(target_of(mc_server), b"gone")
    assert missing.count == 0 and execute(missing).already_gone == 1


def test_keys_that_would_inject_commands_are_refused(mc_server: MemcachedServer) -> None:
    with pytest.raises(ActionError, match="spaces or control"):
        plan_delete(target_of(mc_server), b"x\r\nflush_all")


def test_pattern_flush_deletes_exactly_the_glob_matches(
        mc_server: MemcachedServer) -> None:
    keys = ([b"user:%d" % i for i in range(300)] + [b"other:%d" % i for i in range(300)]
            + [b"user:caf\xc3\xa9", b"user:%41", b"User:1", b"user", b"usr:1", b"user:[x]"])
    _fill(mc_server, keys, ttl=300)
    pattern = b"user:[0-9]*"
    expected = {k for k in keys if glob_match(pattern, k)}
    plan = plan_flush(target_of(mc_server), pattern)
    assert (plan.count, plan.count_exact) == (len(expected), True) and len(plan.sample) == 20
    assert any("point-in-time" in w for w in plan.warnings)
    assert plan.memory_bytes and plan.memory_bytes > 0
    result = execute(plan)
    assert (result.status, result.deleted) == ("done", len(expected))
    client = mc_server.client()
    for key in keys:
        assert (client.get(key) is None) == (key in expected), key


def test_cancelled_pattern_flush_reports_the_true_count(
        mc_server: MemcachedServer) -> None:
    keys = [b"c:%d" % i for i in range(2000)]
    _fill(mc_server, [*keys, *(b"keep:%d" % i for i in range(100))])
    cancel = threading.Event()

    def progress(p: Progress) -> None:
        if p.deleted:
            cancel.set()

    result = execute(plan_flush(target_of(mc_server), b"c:*"), progress, cancel)
    client = mc_server.client()
    gone = sum(1 for k in keys if client.get(k) is None)
    assert result.status == "cancelled" and 0 < result.deleted == gone < 2000


def test_metadump_disabled_is_a_clear_error_not_a_timeout() -> None:
    server = MemcachedServer("-X")
    server.start()
    try:
        started = time.monotonic()
        with pytest.raises(ActionError, match="-X"):
            plan_flush(target_of(server), b"user:*")
        assert time.monotonic() - started < 1.0
    finally:
        kill(server)


def test_keys_a_walk_misses_are_deleted_by_the_next_walk(
        mc_server: MemcachedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The crawler can skip items the LRU maintainer is moving (seen here about once in 50
    walks right after a multi-get); simulate that on the real server's first walk."""
    from cachetop.actions import memcached_flush

    keys = [b"m:%d" % i for i in range(300)]
    _fill(mc_server, keys)
    real = memcached_flush.metadump
    walks: list[int] = []

    def first_walk_misses_some(conn, budget_s):  # type: ignore[no-untyped-def]
        walks.append(1)
        items = list(real(conn, budget_s))
        return items[::2] if len(walks) == 1 else items

    plan = plan_flush(target_of(mc_server), b"m:*")
    monkeypatch.setattr(memcached_flush, "metadump", first_walk_misses_some)
    result = confirmed(plan)  # every key: the name typed
    assert (result.status, result.deleted) == ("done", 300)
    assert len(walks) == 3 and "walk 2 found 150 more" in result.notes[0]


def test_flush_all_disabled_with_minus_f_fails_clearly() -> None:
    server = MemcachedServer("-F")
    server.start()
    try:
        _fill(server, [b"k1"])
        plan = plan_flushdb(target_of(server))
        result = execute(plan, confirmation=plan.confirm_name)
        assert (result.status, result.deleted) == ("failed", 0)
        assert "flush_all not allowed" in result.errors[0]
        assert server.client().get(b"k1") == b"v"
    finally:
        kill(server)


# -- keys the text protocol cannot carry, and keys that are not deleted -----------------------

BINARY_KEYS = [b"user: space", b"user:\r\nflush_all", b"user:\x00", b"user:\t", b"user:\xff\xfe"]


def _meta(server: MemcachedServer, line: bytes) -> bytes:
    """One meta command on a raw socket (pymemcache has no meta commands)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(line)
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(4096)
        return reply.strip()


def _store_b64(server: MemcachedServer, key: bytes) -> None:
    assert _meta(server, b"ms " + base64.b64encode(key) + b" 1 b\r\nv\r\n") == b"HD"


def _exists_b64(server: MemcachedServer, key: bytes) -> bool:
    return _meta(server, b"mg " + base64.b64encode(key) + b" b v\r\n").startswith(b"VA")


def test_binary_and_space_keys_are_deleted_as_previewed(mc_server: MemcachedServer) -> None:
    for key in [*BINARY_KEYS, b"user:ok"]:
        _store_b64(mc_server, key)  # stored as an application with meta commands does
    _fill(mc_server, [b"user:t", b"other:1", b"other:2"])
    plan = plan_flush(target_of(mc_server), b"user:*")
    assert (plan.count, plan.count_exact) == (7, True) and not plan.wipes_all
    result = execute(plan)
    assert (result.status, result.deleted, result.left) == ("done", 7, ())
    for key in [*BINARY_KEYS, b"user:ok", b"user:t"]:
        assert not _exists_b64(mc_server, key), key
    assert _exists_b64(mc_server, b"other:1") and _exists_b64(mc_server, b"other:2")


def test_keys_left_behind_make_the_run_partial_in_text_and_json(
        mc_server: MemcachedServer, state_home: Path) -> None:
    """A writer adding matching keys faster than the walks end: what is left is said."""
    _fill(mc_server, [b"w:%d" % i for i in range(500)] + [b"other:%d" % i for i in range(20000)])
    stop = threading.Event()

    def writer() -> None:
        client = mc_server.client()
        i = 0
        while not stop.wait(0.002):  # ~500 keys/s, all through both runs
            client.set(b"w:new:%d" % i, b"v", noreply=False)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        env = cli_env(state_home)
        runs = [subprocess.run([sys.executable, "-m", "cachetop", "flush", mc_server.url,
                                "--pattern", "w:*", "--yes", "--rate", "3000", *extra],
                               capture_output=True, text=True, env=env, timeout=60,
                               stdin=subprocess.DEVNULL) for extra in ([], ["--json"])]
    finally:
        stop.set()
        thread.join()
    text, as_json = runs
    assert text.returncode == 1 and as_json.returncode == 1, text.stderr
    assert text.stdout.splitlines()[-1].endswith(
        ": partial: matching keys were still listed after 3 walks (a writer keeps adding them?)")
    assert "not deleted: matching keys were still listed" in text.stderr
    doc = json.loads(as_json.stdout)
    assert doc["result"]["status"] == "partial"
    assert doc["result"]["left"] == ["matching keys were still listed after 3 walks "
                                     "(a writer keeps adding them?)"]
