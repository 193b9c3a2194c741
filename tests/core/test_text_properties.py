"""Properties of the two functions every server string and every URL go through before display
(reliability.md sections 4.4, 4.6 and 6.3): plain() and redact_url() / parse_target_url()."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from urllib.parse import quote

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from cachetop import target_url
from cachetop.collectors.base import Target, TlsOptions
from cachetop.errors import ConfigError
from cachetop.target_url import parse_target_url, redact_url
from cachetop.text_safety import plain
from tests.leak_oracle import forms, leaked, literals

# Examples, deadline and seed come from the profile loaded in tests/conftest.py.
PROPS = settings()
# What a terminal may act on: C0, DEL, C1, bidi controls, zero-width and other format
# characters, line/paragraph separators, surrogates and private use.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_ZERO_WIDTH = set("\u200b\u200c\u200d\u2060\ufeff")
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
_ANY_TEXT = st.text(st.characters(), max_size=300)
_HOSTILE = st.sampled_from([
    "\x1b]0;PWNED\x07\x1b[2J", "\x9b31m", "\u202e", "\u2066x\u2069", "\u200b", "\ufeff", "\x00",
    "\x7f", "\u2028", "\u2029", "\r\n", "\t", "[@click=app.quit]x[/]", "\ud800", "\U000f0000",
])


def _unsafe(ch: str) -> bool:
    return (ch in _BIDI or ch in _ZERO_WIDTH or unicodedata.category(ch) in _UNSAFE_CATEGORIES
            or ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f)


@PROPS
@given(st.one_of(_ANY_TEXT, st.lists(st.one_of(_HOSTILE, _ANY_TEXT), max_size=8).map("".join),
                 st.binary(max_size=300)))
def test_plain_output_holds_nothing_a_terminal_acts_on(text: str | bytes) -> None:
    shown = plain(text)
    assert not any(_unsafe(ch) for ch in shown), ascii(shown)


@PROPS
@given(st.one_of(_ANY_TEXT, st.lists(_HOSTILE, max_size=8).map("".join), st.binary(max_size=300)))
def test_plain_is_idempotent_on_its_own_output(text: str | bytes) -> None:
    once = plain(text)
    assert plain(once) == once


@PROPS
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=4096))
def test_plain_is_the_identity_on_printable_ascii(text: str) -> None:
    assert plain(text) == text


@PROPS
@given(st.binary(max_size=200))
def test_plain_decodes_bytes_with_backslashreplace(raw: bytes) -> None:
    decoded = raw.decode("utf-8", "backslashreplace")
    assert plain(raw) == plain(decoded)
    assert plain(b"key\xff\xfe") == "key\\xff\\xfe"


def test_plain_escapes_the_section_5_key_name_like_redis_cli() -> None:
    assert plain("evil\x1b]0;PWNED\x07\x1b[2Jkey") == "evil\\x1b]0;PWNED\\x07\\x1b[2Jkey"
    assert plain("a\u202eb\u200bc\u2028d\x00") == "a\\u202eb\\u200bc\\u2028d\\x00"


@PROPS
@given(st.integers(1, 3_000_000), st.integers(1, 5000))
def test_huge_text_is_cut_with_a_marker_saying_how_much(length: int, limit: int) -> None:
    shown = plain("k" * length, limit)
    if length <= limit:
        assert shown == "k" * length
    else:
        assert shown == "k" * limit + f"…(+{length - limit:,} chars)"


def test_one_megabyte_key_is_cut_fast() -> None:
    shown = plain(b"\x1b" * (1 << 20), 200)
    assert shown == "\\x1b" * 200 + "…(+1,048,376 chars)"


# ---------------------------------------------------------------- URLs

_USER = st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=8)
_PASSWORD = st.text(st.characters(blacklist_categories=("Cs",)), min_size=4, max_size=24)
_HOST = st.sampled_from(["127.0.0.1", "cache-1.internal", "[::1]", "h"])
_TAIL = st.sampled_from(["", ":6379", ":6379/0", "/3?db=3", ":80/metrics?x=1", ":bad", "/"])
_SCHEME = st.sampled_from(["redis", "rediss", "memcached", "http", "https", "unix", "ftp", ""])


# Found by Hypothesis: a scheme-less URL whose password holds `://` (issue 21), and passwords
# that are also fixed text: a scheme name in the error's list, `://` itself.
_FOUND = [("", "admin", "s3cr3t://x", "cache-1", ":6379", False),
          ("ftp", "", "unix", "h", "", False),
          ("", "", "0://", "h", "", False)]


def _examples(test: Callable[..., None]) -> Callable[..., None]:
    for case in _FOUND:
        test = example(*case)(test)
    return test


@PROPS
@given(_SCHEME, _USER, _PASSWORD, _HOST, _TAIL, st.booleans())
@_examples
def test_redact_url_never_shows_the_password(scheme: str, user: str, password: str, host: str,
                                             tail: str, encode: bool) -> None:
    secret = quote(password, safe="") if encode else password
    prefix = f"{scheme}://" if scheme else ""
    url = f"{prefix}{user}:{secret}@{host}{tail}"
    assume(not any(form in f"{prefix}{user}:@{host}{tail}" for form in forms(password)))
    shown = redact_url(url)
    assert leaked(password, shown, [f"{prefix}{user}:***@{host}{tail}"]) == [], shown
    assert shown.isprintable()


@PROPS
@given(st.sampled_from(["password", "pass", "token", "auth", "Password", "api_key"]),
       st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=6, max_size=20))
def test_redact_url_hides_secret_query_values(name: str, value: str) -> None:
    url = f"http://127.0.0.1:8000/metrics?a=1&{name}={value}&b=2"
    assume(value not in url.replace(f"={value}&", "=&"))
    assert value not in redact_url(url)


@PROPS
@given(_SCHEME, _USER, _PASSWORD, _HOST, _TAIL, st.booleans())
@_examples
def test_parse_errors_and_targets_never_carry_the_password(
    scheme: str, user: str, password: str, host: str, tail: str, encode: bool
) -> None:
    """Every URL, unencoded passwords (`u:p@ss@host`, `/ : % #` in them) included, either parses
    to a Target that keeps the password only in its Secret, or fails with a one-line error."""
    secret = quote(password, safe="") if encode else password
    prefix = f"{scheme}://" if scheme else ""
    url = f"{prefix}{user}:{secret}@{host}{tail}"
    assume(not any(form in f"{prefix}{user}:@{host}{tail}" for form in forms(password)))
    try:
        target = parse_target_url(url)
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text
    else:
        assert target.password is not None
        text = f"{target!r} {target.address} {target.http_url}"
    # What a Target shows whatever its password: field names, defaults, kinds, default ports.
    shape = (f"{Target('', '', '', tls=TlsOptions())!r} redis rediss memcached metrics "
             ":6379 :11211 :80 :443 /metrics")
    try:  # the same URL without its password: what its name, address, http_url or error say
        bare = parse_target_url(f"{prefix}{user}@{host}{tail}")
        shape += f" {bare.name} {bare.address} {bare.http_url}"
    except ConfigError as exc:
        shape += f" {exc}"
    fixed = [f"{prefix}{user}:***@{host}{tail}", shape, literals(target_url)]
    assert leaked(password, text, fixed) == [], text


# -- exact(): what audit lines and summaries use; one reading per record --------------------------

EXACT_PROPS = settings(max_examples=500, deadline=None, derandomize=True)
_KEY_BYTES = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from([b"\\", b"\\n", b"\n", b"\\x0a", b"\x85", b"\xc2\x85", b"\xff",
                              b"\x1b", b"\\u0085", b"\xe2\x80\xae", b"a"]),
             max_size=20).map(b"".join),
)


@EXACT_PROPS
@given(_KEY_BYTES)
def test_exact_reads_back_to_the_same_bytes(raw: bytes) -> None:
    from cachetop.text_safety import exact
    from tests.actions.helpers import unescape_exact

    shown = exact(raw)
    assert unescape_exact(shown) == raw  # so two different keys are never shown the same
    assert not any(_unsafe(ch) for ch in shown), ascii(shown)


@EXACT_PROPS
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=300))
def test_exact_changes_printable_ascii_only_by_doubling_backslashes(text: str) -> None:
    from cachetop.text_safety import exact

    assert exact(text) == text.replace("\\", "\\\\")


def test_exact_marks_a_cut_in_a_way_no_text_can_imitate() -> None:
    from cachetop.text_safety import exact

    assert exact(b"k" * 10, limit=4) == "kkkk\\…(+6 chars)"
    assert exact("kkkk\\…(+6 chars)") == "kkkk\\\\…(+6 chars)"
