"""glob_match is Redis's own matcher: proven on tricky cases and random patterns against the
keys real `SCAN MATCH` returns from the same key set."""

from __future__ import annotations

import random

import pytest

from cachetop.actions.glob import covers_keyspace, escape_glob, glob_match, matches_every_key
from tests.actions.helpers import fill
from tests.servers import RedisServer

TRICKY_KEYS = [
    b"a", b"b", b"c", b"d", b"ab", b"abc", b"a*b", b"axb", b"a\\b", b"a?b", b"a[b", b"a]b",
    b"u1", b"u[1]", b"-", b"]", b"^", b"*", b"?", b"\\", b"user:1", b"user:22", b"user:",
    b"x y", b"new\nline", b"\x00nul", b"\xff\xfe", b"caf\xc3\xa9", b"\xe9t\xe9", b"z",
    b"[a-c]", b"a-c", b"A", b"\x7f", b"\x80", b"",
]
TRICKY_PATTERNS = [
    b"*", b"a*", b"a*b", b"a\\*b", b"a?b", b"?", b"??", b"[a-c]", b"[c-a]", b"[^a]", b"[^a-c]",
    b"**", b"*?", b"[a-]", b"[-a]", b"[]]", b"[\\]]", b"a[", b"a[b", b"[", b"[^", b"\\",
    b"a\\", b"\\a",
    b"u[1]", b"u\\[1\\]", b"user:*", b"user:?", b"user:??", b"*\\**", b"***b", b"x y",
    b"new\nline", b"*\n*", b"\x00*", b"\xff*", b"[\xe9-z]*", b"[a-\xff]", b"[\x80-\xff]*",
    b"caf?*", b"[[]*", b"*[^a-z0-9:]*", b"a[^]]b", b"[a-c",
]


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    (b"a\\*b", b"a*b", True), (b"a\\*b", b"axb", False), (b"a*b", b"axb", True),
    (b"u[1]", b"u1", True), (b"u[1]", b"u[1]", False), (b"[^a]", b"b", True),
    (b"[^a]", b"a", False), (b"[a-c]", b"b", True), (b"[c-a]", b"b", True),
    (b"?", b"", False), (b"*", b"", True), (b"**", b"", False), (b"a[", b"a[", False),
    # '?' is exactly one byte: a '?' that matched like '*' would pass the cases above.
    (b"?", b"ab", False), (b"a?b", b"axxb", False), (b"a?b", b"ab", False),
    (b"a?b", b"axb", True), (b"??", b"a", False), (b"??", b"\xc3\xa9", True),
    (b"user:?", b"user:22", False),
])
def test_redis_glob_cases(pattern: bytes, key: bytes, expected: bool) -> None:
    assert glob_match(pattern, key) is expected


def _server_matches(client, pattern: bytes) -> set[bytes]:  # type: ignore[no-untyped-def]
    return set(client.scan_iter(match=pattern, count=1000))


def test_glob_equals_scan_match_on_tricky_keys(redis_server: RedisServer) -> None:
    client = redis_server.client()
    fill(client, TRICKY_KEYS)
    for pattern in TRICKY_PATTERNS:
        ours = {k for k in TRICKY_KEYS if glob_match(pattern, k)}
        assert ours == _server_matches(client, pattern), pattern


def test_glob_equals_scan_match_on_random_patterns(redis_server: RedisServer) -> None:
    rnd = random.Random(20240601)
    alphabet = [b"a", b"b", b"c", b"-", b"]", b"[", b"^", b"*", b"?", b"\\", b"\xe9", b"\xff",
                b"z", b"\n", b" "]
    keys: set[bytes] = set()
    while len(keys) < 250:
        keys.add(b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 6))))
    client = redis_server.client()
    fill(client, sorted(keys))
    pieces = [*alphabet, b"[a-c]", b"[^a]", b"\\*", b"[\xe9-z]", b"[a-]"]
    for _ in range(1500):
        pattern = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 6)))
        ours = {k for k in keys if glob_match(pattern, k)}
        assert ours == _server_matches(client, pattern), pattern


def test_signed_char_ranges_follow_redis() -> None:
    # Redis compares range bounds as C (signed) chars: [\xe9-z] spans -23..122, so plain
    # ASCII letters match and \xff (-1) does too.
    assert glob_match(b"[\xe9-z]", b"a")
    assert glob_match(b"[\xe9-z]", b"\xff")
    assert not glob_match(b"[\xe9-z]", b"\x80")


def test_escape_glob_matches_only_itself() -> None:
    literal = b"a*b?[c]\\d"
    assert glob_match(escape_glob(literal), literal)
    assert not glob_match(escape_glob(literal), b"aXb?[c]\\d")


@pytest.mark.parametrize("pattern", [b"*", b"**", b"***"])
def test_only_stars_select_every_key(pattern: bytes) -> None:
    assert matches_every_key(pattern)
    assert covers_keyspace(pattern, 0, 0)  # even on an empty db: it takes what comes


@pytest.mark.parametrize("pattern", [b"user:*", b"*?", b"?*", b" *", b"   ", b" * ", b""])
def test_other_patterns_are_judged_by_the_preview(pattern: bytes) -> None:
    assert not matches_every_key(pattern)
    assert not covers_keyspace(pattern, 98, 100)
    assert covers_keyspace(pattern, 99, 100) and covers_keyspace(pattern, 100, 100)
    assert not covers_keyspace(pattern, 0, 0) and not covers_keyspace(pattern, None, 100)
