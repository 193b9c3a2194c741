"""Provides glob_match(): Redis's glob (`stringmatchlen`, util.c) on bytes, exactly.

Redis does the matching itself for SCAN MATCH; this is for client-side filtering where the
server cannot (memcached metadump). It is a line-by-line port of Redis 7.0's matcher,
including its corner cases: an unterminated `[` class, `[a-]` (a range up to `]`), reversed
ranges, and ranges compared as *signed* chars, as the C code does on x86/ARM64 Linux.
"""

from __future__ import annotations

from cachetop.actions.plan import ActionArgumentError

_GLOB_SPECIALS = frozenset(b"*?[]\\")


def _signed(byte: int) -> int:
    """The value a C `char` holds: Redis compares range bounds as (signed) chars."""
    return byte - 256 if byte >= 128 else byte


def glob_match(pattern: bytes, key: bytes) -> bool:
    """True if Redis's `SCAN MATCH pattern` (or KEYS) would return `key`."""
    if pattern == b"*":
        return True  # SCAN and KEYS skip matching for "*": even the empty key is returned
    return _match(pattern, 0, key, 0, [False])


def _match(p: bytes, pi: int, s: bytes, si: int, skip_longer: list[bool]) -> bool:
    plen, slen = len(p), len(s)
    while pi < plen and si < slen:
        c = p[pi]
        if c == 0x2A:  # '*'
            while pi + 1 < plen and p[pi + 1] == 0x2A:
                pi += 1
            if pi + 1 == plen:
                return True
            while si < slen:
                if _match(p, pi + 1, s, si, skip_longer):
                    return True
                if skip_longer[0]:
                    return False
                si += 1
            # No match for the rest of the pattern anywhere in the rest of the string: longer
            # matches for earlier stars cannot help either (the CVE-2022-36021 fix).
            skip_longer[0] = True
            return False
        if c == 0x3F:  # '?'
            si += 1
        elif c == 0x5B:  # '['
            pi, matched = _bracket(p, pi + 1, s[si])
            if not matched:
                return False
            si += 1
        else:
            if c == 0x5C and plen - pi >= 2:  # '\' escapes the next pattern byte
                pi += 1
            if p[pi] != s[si]:
                return False
            si += 1
        pi += 1
        if si == slen:
            while pi < plen and p[pi] == 0x2A:
                pi += 1
            break
    return pi == plen and si == slen


def _bracket(p: bytes, pi: int, ch: int) -> tuple[int, bool]:
    """Match `ch` against the class starting at p[pi] (just after '['); returns the index of
    the class's last byte (its ']' or, unterminated, the pattern's last byte) and the result."""
    plen = len(p)
    negate = pi < plen and p[pi] == 0x5E  # '^'
    if negate:
        pi += 1
    matched = False
    while True:
        left = plen - pi
        if left >= 2 and p[pi] == 0x5C:
            pi += 1
            if p[pi] == ch:
                matched = True
        elif left > 0 and p[pi] == 0x5D:  # ']'
            break
        elif left == 0:
            pi -= 1
            break
        elif left >= 3 and p[pi + 1] == 0x2D:  # 'x-y'
            start, end = _signed(p[pi]), _signed(p[pi + 2])
            if start > end:
                start, end = end, start
            pi += 2
            if start <= _signed(ch) <= end:
                matched = True
        elif p[pi] == ch:
            matched = True
        pi += 1
    return pi, matched != negate


def escape_glob(literal: bytes) -> bytes:
    """`literal` as a pattern that matches only itself (for "delete by prefix" flows)."""
    return b"".join(b"\\" + bytes([b]) if b in _GLOB_SPECIALS else bytes([b]) for b in literal)


def check_pattern(pattern: bytes) -> None:
    """An empty pattern selects nothing a person means; anything else is a pattern, including
    `' *'` (keys that start with a space). Whether it covers everything is the preview's call
    (covers_keyspace), not the text's."""
    if not pattern:
        raise ActionArgumentError("give a pattern (a Redis glob such as 'user:*')")


def matches_every_key(pattern: bytes) -> bool:
    """True for `*`, `**`, ...: a pattern that selects every key whatever the keyspace holds."""
    return bool(pattern) and set(pattern) == {0x2A}


# A preview that counts at least this share of the keyspace is a flush of everything.
WIPE_SHARE = 0.99


def covers_keyspace(pattern: bytes, count: int | None, keyspace: int) -> bool:
    """Whether a pattern flush empties the whole db (or instance): decided by what the preview
    found (`count` of `keyspace` keys, an estimate included), and, for an empty keyspace, by
    whether the pattern selects every key."""
    if matches_every_key(pattern):
        return True
    return keyspace > 0 and count is not None and count >= WIPE_SHARE * keyspace
