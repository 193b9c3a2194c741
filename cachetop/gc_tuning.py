"""Provides settle_gc: fewer cyclic-GC passes in a process that polls a fleet.

A poll allocates a few dozen container objects (the sample's dicts, the figures, the timers);
with CPython's default young-generation threshold (700 allocations) the engine ran ~14
collections a second at 1,000 targets, and every tenth one also walked the middle generation:
0.54 s of GC in 31 s, a tenth of the engine's CPU, measured with gc.callbacks (bench/README.md,
poll.py). What a poll allocates dies within the poll or lives until the target's next poll, so
passing over it less often frees the same objects; the objects made at start (the config,
the collectors, the modules) are frozen out of every pass. Reference cycles made and dropped
between two passes are still collected by the next young pass.
"""

from __future__ import annotations

import gc

YOUNG = 10_000  # allocations between young passes (CPython's default: 700)
MIDDLE = 10  # young passes between middle-generation passes (default 10)
OLD = 10  # middle passes before a full one is considered (default 10)


def settle_gc() -> None:
    """Call once the process has built what lives for its whole run."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
