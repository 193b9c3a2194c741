"""FLUSHDB and single-key delete on a real Redis."""

from __future__ import annotations

from cachetop.actions import execute, plan_delete, plan_flushdb
from tests.actions.helpers import fill, target_of
from tests.servers import RedisServer


def test_flushdb_flushes_only_the_selected_db(redis_server: RedisServer) -> None:
    db0, db3 = redis_server.client(db=0), redis_server.client(db=3)
    fill(db0, [b"a:%d" % i for i in range(40)])
    fill(db3, [b"b:%d" % i for i in range(25)])
    plan = plan_flushdb(target_of(redis_server), db=3)
    assert plan.count == 25 and len(plan.sample) == 20
    assert "FLUSHDB ASYNC" in plan.description
    assert plan.wipes_all and plan.confirm_name == f"127.0.0.1:{redis_server.port}"
    assert execute(plan, confirmation="yes").status == "refused"  # the name, not a yes
    assert db3.dbsize() == 25
    result = execute(plan, confirmation=f"127.0.0.1:{redis_server.port}")
    assert (result.status, result.deleted) == ("done", 25)
    assert db3.dbsize() == 0 and db0.dbsize() == 40


def test_delete_one_exact_key_never_globs(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, [b"a*b", b"axb", b"bin\x00\n\xff"], ttl=60)
    plan = plan_delete(target_of(redis_server), b"a*b")
    assert plan.count == 1 and plan.sample[0].exists and plan.sample[0].ttl_s is not None
    result = execute(plan)
    assert (result.deleted, result.already_gone) == (1, 0)
    assert client.exists(b"a*b") == 0 and client.exists(b"axb") == 1
    assert execute(plan_delete(target_of(redis_server), b"bin\x00\n\xff")).deleted == 1


def test_delete_of_a_missing_key_counts_it_as_already_gone(redis_server: RedisServer) -> None:
    plan = plan_delete(target_of(redis_server), b"nope")
    assert plan.count == 0 and plan.sample[0].exists is False
    result = execute(plan)
    assert (result.status, result.deleted, result.already_gone) == ("done", 0, 1)
