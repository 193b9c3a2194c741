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
TRIM_EVERY_S = 60.0


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas unless MALLOC_ARENA_MAX already says otherwise. Call before threads
    start: arenas that exist stay. Returns whether the cap was set (False off glibc)."""
    if _LIBC is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        return bool(_LIBC.mallopt(M_ARENA_MAX, arenas))
    except AttributeError:
        return False  # musl and others: no mallopt, nothing to tune


def trim_free_memory() -> bool:
    """Give the free pages glibc keeps in its arenas back to the system (malloc_trim(0)).

    glibc returns only the top of a heap on its own; pages freed in the middle stay in RSS, so
    a process that runs for days grows although nothing it holds does. A trim takes about a
    millisecond with capped arenas; the monitor runs one a minute.
    """
    if _LIBC is None:
        return False
    try:
        return bool(_LIBC.malloc_trim(0))
    except AttributeError:
        return False
