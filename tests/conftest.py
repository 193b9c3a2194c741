"""Shared fixtures: real redis-server and memcached processes, started and stopped per test;
and the Hypothesis profiles every property test runs under."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.ci import on_ci
from tests.servers import MemcachedServer, RedisServer
from tests.topology_servers import RedisClusterSet, SentinelSet, running

# "ci": the same examples on every run (derandomized, no example database), so CI cannot flake
# on a seed. "dev": fresh random examples each run, failures replayed from .hypothesis/.
# "fuzz" (`make fuzz`): random seeds and ten times the examples, to find what "ci" never tries.
# HYPOTHESIS_PROFILE picks one by name; otherwise CI=true|1 loads "ci".
# Each starts from Hypothesis's "default" profile, not from whatever was loaded at import:
# Hypothesis loads its own "ci" profile when a CI variable is set at all, CI=false included.
_BASE = settings.get_profile("default")
settings.register_profile("ci", _BASE, max_examples=200, deadline=None, derandomize=True,
                          database=None, print_blob=True)
settings.register_profile("dev", _BASE, max_examples=200, deadline=None)
settings.register_profile("fuzz", _BASE, max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if on_ci() else "dev"))


@pytest.fixture(autouse=True)
def sigpipe_kept() -> Iterator[None]:
    """cachetop's main() sets SIGPIPE to its default (`cachetop --batch | head` ends quietly);
    a test that runs it in-process would leave that behind, and the next write to a reset
    socket in any later test then killed the whole run (exit 141, seen in CI). Put it back."""
    handler = signal.getsignal(signal.SIGPIPE)
    yield
    if signal.getsignal(signal.SIGPIPE) != handler:
        signal.signal(signal.SIGPIPE, handler)


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


@pytest.fixture
def cluster() -> Iterator[RedisClusterSet]:
    """A 3-primary/3-replica Redis Cluster (redis-cli --cluster create), stopped after."""
    yield from running(RedisClusterSet())


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    """A master, its replica and a sentinel watching them, stopped after."""
    yield from running(SentinelSet())
