"""Provides no_match_hint(): what a pattern preview that matched nothing shows instead.

A pattern that matches nothing is most often a pattern with the wrong naming (`usr:*` for
`user:*`, a missing prefix): a few of the keys that are there show the naming at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence

from cachetop.actions.audit import escaped

HINT_KEYS = 5  # keys shown; from a bare SCAN (Redis) or the walk itself (memcached)


def no_match_hint(pattern: bytes, others: Sequence[bytes], total: int | None) -> tuple[str, ...]:
    """One warning line for a preview of `pattern` that found no key: the instance is empty,
    or some of its keys (`others`, at most HINT_KEYS shown) for their naming."""
    if total == 0 or not others:
        return (f"no key matches '{escaped(pattern)}': the instance holds no keys here",)
    shown = ", ".join(f"'{escaped(key)}'" for key in list(others)[:HINT_KEYS])
    return (f"no key matches '{escaped(pattern)}'; keys here look like: {shown}",)
