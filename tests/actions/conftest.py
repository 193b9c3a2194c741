"""Fixtures for the actions tests: the audit log goes to a temporary XDG state dir, always."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.actions.helpers import kill
from tests.servers import MemcachedServer


@pytest.fixture
def mc_server() -> Iterator[MemcachedServer]:
    """A memcached for one test, killed at the end: a SIGTERMed memcached that has served a
    connection takes a second to exit, and memcached keeps nothing worth a clean shutdown."""
    server = MemcachedServer()
    server.start()
    yield server
    kill(server)
