"""Whether the tests run under CI, and what a missing prerequisite means there.

`CI` counts as true only when it is `true` or `1` (any case): `CI=false` or `CI=0` is a
developer's machine. Under CI a missing server binary, tool or matching snapshot fails the
test; elsewhere it skips, with the reason.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def missing(reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere: CI must never pass by skipping what it should check."""
    if on_ci():
        pytest.fail(reason)
    pytest.skip(reason)
