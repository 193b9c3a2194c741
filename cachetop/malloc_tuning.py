"""Provides limit_malloc_arenas: fewer glibc malloc arenas for a process of many poll threads.

The poller keeps up to one thread per target. glibc gives threads their own arenas (up to 8 per
core) and returns little of their free memory to the system, so a long run's RSS crept up while
Python's own heap stayed flat (bench/README.md, "Soak"). Two arenas is what MALLOC_ARENA_MAX=2
gives services of this shape; the threads spend their time waiting on sockets, not in malloc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas unless MALLOC_ARENA_MAX already says otherwise. Call before threads
    start: arenas that exist stay. Returns whether the cap was set (False off glibc)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False  # musl and others: no mallopt, nothing to tune
