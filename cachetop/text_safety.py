"""Provides plain(): text from a server made safe to print literally on a terminal.

Key names, labels, INFO strings and error texts come off the wire: control characters (ESC
sequences, bidi overrides) are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

import unicodedata

_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}


def plain(text: str | bytes, limit: int = 4096) -> str:
    """Printable form of `text`: controls, bidi marks and invalid UTF-8 become escapes."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    out = []
    for ch in text[:limit]:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co"):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out) + ("…" if len(text) > limit else "")
