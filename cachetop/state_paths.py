"""Provides audit_path(): where the files cachetop keeps for itself live ($XDG_STATE_HOME).

Its own module because two layers share the answer: the actions write the audit log
(cachetop.actions.audit) and the engine reads it for events (cachetop.events.audit_tail),
and the engine must not import the actions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def audit_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the log lives: $XDG_STATE_HOME (if absolute, as the XDG spec says) or the default.

    Args:
        env: the environment to read (os.environ when None).

    Returns:
        `<state>/cachetop/audit.log`, state being $XDG_STATE_HOME or ~/.local/state.
    """
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
        state = str(home / ".local" / "state")
    return Path(state) / "cachetop" / "audit.log"
