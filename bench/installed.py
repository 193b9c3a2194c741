"""Provides installed_env: the environment of a user's installed cachetop, for the benches
that time it as a whole process (flush.py, tui.py)."""

from __future__ import annotations

import os
from pathlib import Path


def installed_env(pycache: Path) -> dict[str, str]:
    """Compiled bytecode for every module, as pip writes at install. This machine sets
    PYTHONDONTWRITEBYTECODE, so without a cache of its own each start would compile cachetop's
    ~150 modules (~90 ms; half a second with the actions and redis-py) while textual came
    precompiled from pip. Every process given this prefix shares it; the first fills it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env
