"""Provides plain() and exact(): text from a server made safe to print literally on a terminal.

Key names, labels, INFO strings and error texts come off the wire: control characters (ESC
sequences, bidi overrides, zero-width and line-separator characters) are shown escaped, never sent
to the terminal, and a huge text is cut with a marker that says how much was left out. exact()
also escapes the backslash, so a record (audit line, summary) reads back without ambiguity.
"""

from __future__ import annotations

import unicodedata

_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}
# Cc: C0, DEL, C1 (incl. the 8-bit CSI 0x9b); Cf: bidi marks, zero-width characters, BOM;
# Cs/Co: lone surrogates, private use; Zl/Zp: U+2028/U+2029, which break a line.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def plain(text: str | bytes, limit: int = 4096) -> str:
    """Printable form of `text`: controls, bidi marks and invalid UTF-8 become escapes.

    Args:
        text: server text; bytes are decoded as UTF-8 with invalid bytes shown as `\\xNN`.
        limit: characters of `text` kept; the rest is replaced by `…(+N chars)`.

    Returns:
        One line with no character a terminal would interpret; printable ASCII is unchanged.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    out = []
    for ch in text[:limit]:
        if ch in _BIDI or unicodedata.category(ch) in _ESCAPED_CATEGORIES:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    if len(text) > limit:
        out.append(f"…(+{len(text) - limit:,} chars)")
    return "".join(out)


_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def exact(text: str | bytes, limit: int = 1024) -> str:
    """Printable *and unambiguous* form of a key, pattern or tag, for audit lines and summaries.

    plain() shows a real newline and the two characters `\\n` the same way; a record must not.
    Here a backslash is doubled, so every escape is one: `\\n \\r \\t`, `\\xNN` for an ASCII
    control or (in bytes) a byte that is not UTF-8 (always >= 0x80, so the two never meet),
    `\\uNNNN`/`\\UNNNNNNNN` for a non-ASCII character a terminal would act on. Past `limit`
    characters the text is cut with `\\…(+N chars)`, a marker no escaped text can contain.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    out = []
    for ch in text[:limit]:
        code = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # surrogateescape: one byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch in _BIDI or unicodedata.category(ch) in _ESCAPED_CATEGORIES:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    if len(text) > limit:
        out.append(f"\\…(+{len(text) - limit:,} chars)")
    return "".join(out)
