"""Refusals on real servers: replicas (also writable ones), read-only, prod, ACL, LOADING; and the
INFO reading the checks rest on (the collectors' parser, raw or parsed by redis-py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachetop.actions import Progress, RefusedError, execute, plan_delete, plan_flush, plan_flushdb
from cachetop.actions.safety import verify_master
from cachetop.collectors.base import Target
from cachetop.collectors.redis_info import version_tuple
from tests.actions.helpers import confirmed, fill, matching, target_of
from tests.servers import RedisServer, free_port

FAMILY = Path(__file__).parents[1] / "fixtures" / "family"


@pytest.fixture
def master() -> Iterator[RedisServer]:
    server = RedisServer("--repl-diskless-sync-delay", "0")
    server.start()
    fill(server.client(), [b"k:%d" % i for i in range(50)])
    yield server
    server.close()


@pytest.mark.parametrize("extra", [(), ("--replica-read-only", "no")])
def test_replica_is_refused(master: RedisServer, extra: tuple[str, ...]) -> None:
    replica = RedisServer("--replicaof", "127.0.0.1", str(master.port), *extra)
    replica.start()
    try:
        client = replica.client()
        deadline = time.monotonic() + 5
        while client.dbsize() < 50 and time.monotonic() < deadline:
            time.sleep(0.02)
        for plan in (plan_flush(target_of(replica), b"k:*"), plan_flushdb(target_of(replica)),
                     plan_delete(target_of(replica), b"k:1")):
            assert plan.refusal is not None and "replica" in plan.refusal
            result = execute(plan)
            assert (result.status, result.deleted) == ("refused", 0)
        assert client.dbsize() == 50
    finally:
        replica.close()


def test_role_is_checked_before_every_batch() -> None:
    """A master demoted mid-run stops at the next batch, even though, with
    replica-read-only no, the server itself would accept the UNLINK."""
    server = RedisServer("--replica-read-only", "no")
    server.start()
    try:
        client = server.client()
        fill(client, [b"k:%d" % i for i in range(3000)])
        demoted = threading.Event()

        def progress(p: Progress) -> None:
            if not demoted.is_set():
                demoted.set()  # a port nobody listens on: no sync ever wipes the data
                client.execute_command("REPLICAOF", "127.0.0.1", free_port())

        result = confirmed(plan_flush(target_of(server), b"k:*", scan_count=200), progress)
        assert result.status == "partial"
        assert "became a replica" in result.errors[0]
        assert 0 < result.deleted == 3000 - len(matching(client, b"k:*")) < 3000
    finally:
        server.close()


def test_read_only_refuses_every_write(master: RedisServer) -> None:
    for target, flag in ((target_of(master), True), (target_of(master, read_only=True), False)):
        plans = [plan_flush(target, b"k:*", read_only=flag), plan_flushdb(target, read_only=flag),
                 plan_delete(target, b"k:1", read_only=flag)]
        for plan in plans:
            assert plan.refusal is not None and "read" in plan.refusal
            assert execute(plan).status == "refused"
    assert master.client().dbsize() == 50


def test_prod_needs_the_typed_name(master: RedisServer) -> None:
    target = target_of(master, name="sessions-prod", env="prod")
    plan = plan_flush(target, b"k:*")
    assert plan.confirm_name == "sessions-prod" and plan.needs_typed_name
    for wrong in (None, "", "sessions", "yes"):
        result = execute(plan, confirmation=wrong)
        assert result.status == "refused" and "prod" in result.errors[0]
    assert master.client().dbsize() == 50
    assert execute(plan, confirmation="sessions-prod").deleted == 50


def test_acl_user_without_unlink_gets_a_clear_error() -> None:
    server = RedisServer(acl=["user default on nopass ~* &* +@all",
                              "user ops on >ops-pw ~* &* +@all -unlink -del"])
    server.start()
    try:
        fill(server.client(), [b"k:%d" % i for i in range(100)])
        target = target_of(server, username="ops", password="ops-pw")
        result = confirmed(plan_flush(target, b"k:*"))
        assert (result.status, result.deleted) == ("failed", 0)
        assert "NOPERM" in result.errors[0] and "not permitted" in result.errors[0]
        assert "ops-pw" not in result.summary
        assert server.client().dbsize() == 100
    finally:
        server.close()


def test_permission_revoked_mid_run_reports_partial_true_counts() -> None:
    server = RedisServer(acl=["user default on nopass ~* &* +@all",
                              "user ops on >ops-pw ~* &* +@all"])
    server.start()
    try:
        admin = server.client()
        fill(admin, [b"k:%d" % i for i in range(3000)])
        revoked = threading.Event()

        def progress(p: Progress) -> None:
            if not revoked.is_set():
                revoked.set()
                admin.execute_command("ACL", "SETUSER", "ops", "-unlink")

        target = target_of(server, username="ops", password="ops-pw")
        result = confirmed(plan_flush(target, b"k:*", scan_count=200), progress)
        assert result.status == "partial" and "NOPERM" in result.errors[0]
        assert 0 < result.deleted == 3000 - admin.dbsize()
    finally:
        server.close()


def test_loading_server_is_refused() -> None:
    server = RedisServer()
    server.start()
    try:
        fill(server.client(), [b"k:%d" % i for i in range(20000)])
        server.client().save()
        server.args += ["--key-load-delay", "100", "--loading-process-events-interval-bytes",
                        "1024"]
        server.restart()
        plan = plan_flush(target_of(server), b"k:*")
        assert plan.refusal is not None and "LOADING" in plan.refusal
        assert execute(plan).status == "refused"
    finally:
        server.close()


def test_renamed_flushdb_fails_clearly_without_a_broader_fallback() -> None:
    server = RedisServer("--rename-command", "FLUSHDB", "", "--rename-command", "FLUSHALL", "")
    server.start()
    try:
        fill(server.client(), [b"k:%d" % i for i in range(10)])
        result = confirmed(plan_flushdb(target_of(server)))
        assert result.status == "failed" and "disabled or renamed" in result.errors[0]
        assert server.client().dbsize() == 10
    finally:
        server.close()


def test_a_different_server_behind_the_address_is_refused(master: RedisServer) -> None:
    plan = plan_flush(target_of(master), b"k:*")
    master.restart()  # a new run_id: not the server that was previewed
    fill(master.client(), [b"k:1"])
    result = confirmed(plan)
    assert result.status == "refused" and "previewed" in result.errors[0]
    assert master.client().exists(b"k:1") == 1


def test_cluster_mode_is_refused_clearly() -> None:
    server = RedisServer("--cluster-enabled", "yes")
    server.start()
    try:
        for plan in (plan_flush(target_of(server), b"k:*"), plan_flushdb(target_of(server))):
            assert plan.refusal is not None and "cluster mode" in plan.refusal
            assert execute(plan).status == "refused"
    finally:
        server.close()


@pytest.mark.parametrize(("reply", "replid"), [
    # cachetop's own wire hands over the raw reply (a captured one, \r\n and all) ...
    ((FAMILY / "valkey_7.2.info").read_bytes(), "8fd1a27a4e60b9a4b7bd3c9d8a8c0a2d9b4f4a51"),
    # ... redis-py's client an INFO it parsed itself.
    ({"role": "master", "master_replid": "e3b0c442", "redis_version": "7.2.4"}, "e3b0c442"),
])
def test_the_role_check_reads_raw_and_parsed_info_alike(reply: bytes | dict[str, object],
                                                        replid: str) -> None:
    """The actions read INFO with the collectors' parser (one parser for both layers)."""
    target = Target("t", "redis", "redis://127.0.0.1:1")
    assert verify_master(reply, target, None) == replid
    with pytest.raises(RefusedError, match="changed identity"):
        verify_master(reply, target, "another-replid")


@pytest.mark.parametrize(("text", "expected"), [
    ("7.2.4", (7, 2, 4)), ("6.0.20", (6, 0, 20)), ("255.255.255.1", (255, 255, 255)),
    ("7.9.240-rc1", (7, 9)), ("", ()), ("df-v1.2", ()),
])
def test_versions_compare_as_numbers(text: str, expected: tuple[int, ...]) -> None:
    assert version_tuple(text) == expected
