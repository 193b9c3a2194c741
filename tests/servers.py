"""Test access to the real-server launchers: a missing binary fails under CI=true, else skips."""

from __future__ import annotations

from typing import Any

from cachetop.demo import servers as _servers
from cachetop.demo.servers import MissingBinaryError, free_port
from tests.ci import missing

__all__ = ["MemcachedServer", "RedisServer", "free_port"]


def _guard(cls: type[Any]) -> type[Any]:
    class Guarded(cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().__init__(*args, **kwargs)
            except MissingBinaryError as exc:
                missing(str(exc))

    Guarded.__name__ = cls.__name__
    return Guarded


RedisServer = _guard(_servers.RedisServer)
MemcachedServer = _guard(_servers.MemcachedServer)
