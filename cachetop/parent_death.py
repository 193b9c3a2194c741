"""Provides die_with_parent(): ask Linux to SIGTERM this process when its parent dies.

Its own module because both the engine (which must die with its front, engine.md) and the
demo's and tests' server processes need it, and the engine must not import the demo.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child (before exec, or first thing): ask Linux to SIGTERM it when its parent dies,
    so a killed front, demo or test run (SIGKILL, a closed terminal) leaves nothing behind.
    A no-op where there is no prctl (macOS)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
