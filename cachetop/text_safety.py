"""Provides plain(): text from a server made safe to print literally on a terminal.

Key names, labels, INFO strings and error texts come off the wire: control characters (ESC
sequences, bidi overrides, zero-width and line-separator characters) are shown escaped, never sent
to the terminal, and a huge text is cut with a marker that says how much was left out.
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
