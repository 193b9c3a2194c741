"""Provides the per-key description of a Redis key analysis: one Lua call per batch of keys.

Why a script: a key needs TYPE, OBJECT ENCODING, MEMORY USAGE, PTTL and an element count; as
separate pipelined commands that is five replies per key to parse in Python (measured: 20-50 k
keys/s), in a script it is one reply per batch of ~100 keys, with the RESP parsing done by
hiredis (150-300 k keys/s). The batch is small so the server is never held for long (a script
runs atomically: ~100 keys take ~0.3 ms). None of these commands reads a value, and TYPE,
OBJECT, MEMORY USAGE and PTTL leave the key's LRU/LFU clock alone; the element counts (STRLEN,
LLEN, ...) do not, so the caller asks for them only when that is harmless (see
redis_scan.touch_note). The script writes nothing (`no-writes`, Redis >= 7), so it runs on a
replica and on a server out of memory.

When the server refuses scripts (ACL without EVALSHA, cluster mode: keys of many slots), the
same facts come from pipelined commands (describe_pipelined), slower but equal.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's connection methods carry no type hints)
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from cachetop.keys.tally import RowFacts

_BODY = """
local call = redis.call
local ENC = {embstr=1, int=1, quicklist=2, linkedlist=2, intset=3, skiplist=4, stream=6}
local TYPES = {string=1, list=2, set=3, zset=4, hash=5, stream=6}
local COUNT = {'STRLEN', 'LLEN', 'SCARD', 'ZCARD', 'HLEN', 'XLEN'}
local memory = ARGV[1] == '1'
local counts = ARGV[2] == '1'
local freq = ARGV[3] == '1'
local out = {}
local n = 0
for i = 1, #KEYS do
  local k = KEYS[i]
  local e = call('OBJECT', 'ENCODING', k)
  if e then
    local t = ENC[e] or TYPES[call('TYPE', k)['ok']] or 7
    out[n + 1] = t
    out[n + 2] = e
    out[n + 3] = memory and call('MEMORY', 'USAGE', k) or -1
    out[n + 4] = call('PTTL', k)
    out[n + 5] = (counts and COUNT[t]) and call(COUNT[t], k) or -1
    out[n + 6] = freq and call('OBJECT', 'FREQ', k) or -1
  else
    out[n + 1] = 0
    out[n + 2] = ''
    out[n + 3] = -1
    out[n + 4] = -2
    out[n + 5] = -1
    out[n + 6] = -1
  end
  n = n + 6
end
return out
"""
# Redis 7 reads the flags line: no-writes lets the script run on replicas and under OOM.
SCRIPT_7 = "#!lua flags=no-writes\n" + _BODY
SCRIPT_OLD = _BODY
FIELDS = 6
_TYPE_CODES = {b"string": 1, b"list": 2, b"set": 3, b"zset": 4, b"hash": 5, b"stream": 6}
_COUNT_COMMANDS = {1: b"STRLEN", 2: b"LLEN", 3: b"SCARD", 4: b"ZCARD", 5: b"HLEN", 6: b"XLEN"}


def script_for(version: tuple[int, ...]) -> str:
    return SCRIPT_7 if version >= (7,) else SCRIPT_OLD


def script_args(sha: str, keys: Sequence[bytes], *, memory: bool, counts: bool,
                freq: bool) -> tuple[Any, ...]:
    return (b"EVALSHA", sha, len(keys), *keys, b"1" if memory else b"0",
            b"1" if counts else b"0", b"1" if freq else b"0")


def rows_from_reply(reply: Sequence[Any]) -> list[RowFacts]:
    """The script's flat reply (6 values per key) as one RowFacts per key."""
    if len(reply) % FIELDS:
        raise ValueError(f"analysis script reply of {len(reply)} values is not {FIELDS} per key")
    it = iter(reply)
    return [(int(t), bytes(e), int(m), int(p), int(c), int(f))
            for t, e, m, p, c, f in zip(it, it, it, it, it, it, strict=True)]


def is_script_refusal(exc: redis.ResponseError) -> bool:
    """Errors that mean "no scripts here" (ACL, disabled, cluster slots), not "this batch"."""
    text = str(exc)
    return (text.startswith(("NOPERM", "CROSSSLOT", "NOSCRIPT")) or "unknown command" in text
            or "not allowed" in text or "No matching script" in text)


def describe_pipelined(call: Any, keys: Sequence[bytes], *, memory: bool, counts: bool,
                       freq: bool) -> tuple[list[RowFacts], int]:
    """The script's facts from pipelined commands: one round trip for TYPE, OBJECT ENCODING,
    MEMORY USAGE, PTTL (and OBJECT FREQ), one more for the element counts. `call` sends
    commands and returns their replies (errors as values). Returns the rows and how many
    keys could not be read (a refused key counts as gone)."""
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
    for index in range(len(keys)):
        got = replies[index * step:(index + 1) * step]
        kind, encoding, pttl = got[0], got[1], got[2]
        size = got[3] if memory else -1
        lfu = got[3 + int(memory)] if freq else -1
        if any(isinstance(v, Exception) for v in got) or not isinstance(encoding, bytes):
            unreadable += any(isinstance(v, Exception) for v in got)
            partial.append([0, b"", -1, -2, -1, -1])
            continue
        code = _TYPE_CODES.get(kind if isinstance(kind, bytes) else b"", 7)
        partial.append([code, encoding, _int(size), _int(pttl), -1, _int(lfu)])
    if counts:
        _add_counts(call, keys, partial)
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in partial], unreadable


def _add_counts(call: Any, keys: Sequence[bytes], rows: list[list[Any]]) -> None:
    wanted = [(i, _COUNT_COMMANDS[row[0]]) for i, row in enumerate(rows)
              if row[0] in _COUNT_COMMANDS]
    if not wanted:
        return
    replies = call(*[(command, keys[i]) for i, command in wanted])
    for (i, _), reply in zip(wanted, replies, strict=True):
        rows[i][4] = _int(reply)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1
