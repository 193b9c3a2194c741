"""Provides the per-key description of a Redis key analysis: one Lua call per batch of keys.

Why a script: a key needs TYPE, OBJECT ENCODING, MEMORY USAGE, PTTL and an element count; as
separate pipelined commands that is five replies per key to parse in Python (measured: 20-50 k
keys/s). The page script runs one SCAN page (COUNT ~50) and describes its keys in the same
call: one reply per page, parsed by hiredis, and the keys never travel back to the server
(measured: 2-4 us of server time per key, all included). A page is small so the server is
never held for long (a script runs atomically: ~50 keys take ~0.2 ms). None of these
commands reads a value, and TYPE, OBJECT, MEMORY USAGE and PTTL leave the key's LRU/LFU clock
alone; the element counts (STRLEN, LLEN, ...) do not, so the caller asks for them only when
that is harmless (redis_scan._capabilities). The script writes nothing (`no-writes`, Redis
>= 7), so it runs on a replica and on a server out of memory.

When the server refuses scripts (ACL without EVALSHA, cluster mode: keys of many slots), the
same facts come from pipelined commands (describe_pipelined), slower but equal.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's connection methods carry no type hints)
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from cachetop.keys.tally import Row

_BODY = """
local call = redis.call
local ENC = {embstr=1, int=1, quicklist=2, linkedlist=2, intset=3, skiplist=4, stream=6}
local TYPES = {string=1, list=2, set=3, zset=4, hash=5, stream=6}
local COUNT = {'STRLEN', 'LLEN', 'SCARD', 'ZCARD', 'HLEN', 'XLEN'}
local page = call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local memory = ARGV[3] == '1'
local counts = ARGV[4] == '1'
local freq = ARGV[5] == '1'
local keys = page[2]
local out = {page[1], #keys}
local n = 2
for i = 1, #keys do
  local k = keys[i]
  local e = call('OBJECT', 'ENCODING', k)
  if e then
    local t = ENC[e] or TYPES[call('TYPE', k)['ok']] or 7
    out[n + 1] = k
    out[n + 2] = t
    out[n + 3] = e
    out[n + 4] = memory and call('MEMORY', 'USAGE', k) or -1
    out[n + 5] = call('PTTL', k)
    out[n + 6] = (counts and COUNT[t]) and call(COUNT[t], k) or -1
    out[n + 7] = freq and call('OBJECT', 'FREQ', k) or -1
    n = n + 7
  end
end
return out
"""
# Redis 7 reads the flags line: no-writes lets the script run on replicas and under OOM.
SCRIPT_7 = "#!lua flags=no-writes\n" + _BODY
SCRIPT_OLD = _BODY
FIELDS = 7
_TYPE_CODES = {b"string": 1, b"list": 2, b"set": 3, b"zset": 4, b"hash": 5, b"stream": 6}
_COUNT_COMMANDS = {1: b"STRLEN", 2: b"LLEN", 3: b"SCARD", 4: b"ZCARD", 5: b"HLEN", 6: b"XLEN"}


def script_for(version: tuple[int, ...]) -> str:
    return SCRIPT_7 if version >= (7,) else SCRIPT_OLD


def page_args(sha: str, cursor: int, count: int, *, memory: bool, counts: bool,
              freq: bool) -> tuple[Any, ...]:
    """EVALSHA of the page script: SCAN from `cursor`, then describe the page's keys."""
    return (b"EVALSHA", sha, b"0", b"%d" % cursor, b"%d" % count, b"1" if memory else b"0",
            b"1" if counts else b"0", b"1" if freq else b"0")


def page_from_reply(reply: Sequence[Any]) -> tuple[int, int, list[Row]]:
    """(next cursor, keys SCAN listed, one Row per key that still existed)."""
    if len(reply) < 2 or (len(reply) - 2) % FIELDS:
        raise ValueError(f"the page script's reply of {len(reply)} values is malformed")
    it = iter(reply[2:])
    rows: list[Row] = list(zip(it, it, it, it, it, it, it, strict=True))
    return int(reply[0]), int(reply[1]), rows


def is_script_refusal(exc: redis.ResponseError) -> bool:
    """Errors that mean "no scripts here" (ACL, disabled, cluster slots), not "this batch"."""
    text = str(exc)
    return (text.startswith(("NOPERM", "CROSSSLOT", "NOSCRIPT")) or "unknown command" in text
            or "not allowed" in text or "No matching script" in text)


def describe_pipelined(call: Any, keys: Sequence[bytes], *, memory: bool, counts: bool,
                       freq: bool) -> tuple[list[Row], int]:
    """The script's facts from pipelined commands: one round trip for TYPE, OBJECT ENCODING,
    PTTL (MEMORY USAGE, OBJECT FREQ), one more for the element counts. `call` sends commands
    and returns their replies (errors as values). Returns the rows of the keys that exist and
    how many keys could not be read (refused, e.g. by a key pattern of the ACL)."""
    commands: list[tuple[Any, ...]] = []
    for key in keys:
        commands += [(b"TYPE", key), (b"OBJECT", b"ENCODING", key), (b"PTTL", key)]
        if memory:
            commands.append((b"MEMORY", b"USAGE", key))
        if freq:
            commands.append((b"OBJECT", b"FREQ", key))
    replies = call(*commands) if commands else []
    step = 3 + int(memory) + int(freq)
    partial: list[list[Any]] = []
    unreadable = 0
    for index, key in enumerate(keys):
        got = replies[index * step:(index + 1) * step]
        if any(isinstance(v, Exception) for v in got):
            unreadable += 1
            continue
        kind, encoding, pttl = got[0], got[1], got[2]
        if not isinstance(encoding, bytes):
            continue  # gone since SCAN listed it
        size = got[3] if memory else -1
        lfu = got[3 + int(memory)] if freq else -1
        code = _TYPE_CODES.get(kind if isinstance(kind, bytes) else b"", 7)
        partial.append([key, code, encoding, _int(size), _int(pttl), -1, _int(lfu)])
    if counts:
        _add_counts(call, partial)
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in partial], unreadable


def _add_counts(call: Any, rows: list[list[Any]]) -> None:
    wanted = [(row, _COUNT_COMMANDS[row[1]]) for row in rows if row[1] in _COUNT_COMMANDS]
    if not wanted:
        return
    replies = call(*[(command, row[0]) for row, command in wanted])
    for (row, _), reply in zip(wanted, replies, strict=True):
        row[5] = _int(reply)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1
