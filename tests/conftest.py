"""Shared fixtures: real redis-server and memcached processes, started and stopped per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import MemcachedServer, RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def memcached_server() -> Iterator[MemcachedServer]:
    server = MemcachedServer()
    server.start()
    yield server
    server.close()
