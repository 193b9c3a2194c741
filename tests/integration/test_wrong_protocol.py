"""A URL of the wrong kind, or a missing password, is said in words a person acts on (issue 20,
item 12), not as a protocol error, a timeout or a cut message."""

from __future__ import annotations

import pytest

from cachetop.collectors.base import CollectError, Deadline
from cachetop.collectors.registry import make_collector
from tests.integration.helpers import memcached_target, redis_target
from tests.servers import MemcachedServer, RedisServer


def error_of(target: object) -> CollectError:
    collector = make_collector(target)  # type: ignore[arg-type]
    try:
        with pytest.raises(CollectError) as caught:
            collector.collect(Deadline(1.0))
    finally:
        collector.close()
    return caught.value


def test_a_redis_url_on_a_memcached_port(memcached_server: MemcachedServer) -> None:
    error = error_of(redis_target(memcached_server.port))
    assert (error.status, error.message) == (
        "bad-data", "this looks like memcached, not Redis (its answer was not RESP; "
                    "use memcached://)")


def test_a_memcached_url_on_a_redis_port_is_no_timeout(redis_server: RedisServer) -> None:
    error = error_of(memcached_target(redis_server.port))
    assert (error.status, error.message) == (
        "bad-data", "this looks like Redis, not memcached (use redis://)")


def test_a_missing_password_says_where_to_give_one() -> None:
    server = RedisServer("--requirepass", "s3cret")
    server.start()
    try:
        error = error_of(redis_target(server.port))
    finally:
        server.close()
    assert error.status == "auth-failed"
    assert error.message == ("the server wants a password (NOAUTH): give one with "
                             "password_env, password_file or the URL")
