"""Provides Wire: raw pipelined commands on a redis-py client's single connection.

The pattern flush's hot loop sends a SCAN page, an INFO replication and an UNLINK of up to
~1,000 keys per round trip. redis-py's client adds, per call, a pipeline object, response
callbacks and a Python-level check of every argument; at half a million keys a second that
overhead is a third of the run. Wire packs with hiredis in one C call and reads raw RESP2
replies (no callbacks), returning a server error as a value so one failed command does not
hide the replies of the others.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's connection methods carry no type hints)
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # hiredis is a dependency (redis[hiredis]); keep working without it
    _hiredis_pack = None


class Wire:
    """Raw access to `client`'s connection (it must be a single_connection_client)."""

    def __init__(self, client: redis.Redis) -> None:
        connection = client.connection
        if connection is None:
            raise ValueError("Wire needs a single-connection client")
        self._conn = connection

    def _pack(self, command: Sequence[Any]) -> bytes:
        if _hiredis_pack is not None:
            return bytes(_hiredis_pack(tuple(command)))
        return b"".join(self._conn.pack_command(*command))

    def send(self, *commands: Sequence[Any]) -> None:
        """Send `commands` in one write; read their replies with receive(), one each."""
        self._conn.send_packed_command([b"".join(self._pack(c) for c in commands)])

    def receive(self) -> Any:
        """The next raw reply; a server error reply is returned as a redis.ResponseError
        value, a connection failure raises."""
        try:
            return self._conn.read_response()
        except redis.ResponseError as exc:
            return exc

    def call(self, *commands: Sequence[Any]) -> list[Any]:
        """Send `commands` in one write and read one raw reply each (see receive())."""
        self.send(*commands)
        return [self.receive() for _ in commands]


def raise_first_error(replies: Sequence[Any]) -> None:
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise reply
