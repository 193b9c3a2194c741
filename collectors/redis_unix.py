"""Provides check_is_redis: a unix socket must answer like a Redis before it gets a password.

redis_exporter wrote `AUTH <password>` into a bind-mounted docker.sock through `unix://`
(redis_exporter#1115): a socket path is only a file name, and whatever listens there would get
the credentials of the first command. One PING without credentials tells a Redis (which answers
PONG, or refuses with NOAUTH and friends) from anything else, and costs one round trip per
connect, only for unix targets that carry a password.
"""

from __future__ import annotations

import socket

from cachetop.collectors.base import CollectError

_REDIS_REPLIES = (b"+PONG", b"-NOAUTH", b"-ERR", b"-WRONGPASS", b"-NOPERM", b"-LOADING",
                  b"-BUSY")


def check_is_redis(path: str, timeout_s: float) -> None:
    """Raise CollectError("bad-data") unless the socket at `path` answers PING like a Redis."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        sock.connect(path)
        sock.sendall(b"PING\r\n")
        reply = b""
        while b"\r\n" not in reply and len(reply) < 512:
            chunk = sock.recv(512)
            if not chunk:
                break
            reply += chunk
    except TimeoutError:
        raise CollectError("bad-data", "the unix socket did not answer PING like a Redis: "
                                       "no password sent") from None
    finally:
        sock.close()
    if not reply.startswith(_REDIS_REPLIES):
        raise CollectError("bad-data", "the unix socket is not a Redis (its answer to PING "
                                       "was not Redis's): no password sent")
