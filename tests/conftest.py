"""Shared fixtures: real redis-server and memcached processes, started and stopped per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import MemcachedServer, RedisServer


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every action appends to the audit log: no test may write to the real one."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


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
