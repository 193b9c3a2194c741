"""Waiting for a condition instead of sleeping a fixed time, and the slack a deadline may take.

The machine that runs the tests is shared (two cores, other suites at the same time): a fixed
sleep is either too short under load (a flake) or too long when idle, and a tight duration
assert measures the machine, not the code. Wait for what the test needs, with a generous
timeout, and assert orderings and counts; where a deadline itself is the property, allow it
SLACK_S.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLACK_S = 1.5  # what a loaded machine may add to a deadline before the call returns
TIMEOUT_S = 30.0  # how long a condition may take to come true before the test fails


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = TIMEOUT_S,
               step_s: float = 0.02) -> None:
    """Return as soon as `condition()` is true; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(step_s)
