"""Provides config_target: the TARGET argument of the one-target commands (actions, keys).

A URL, or the name of a target in the config file; the config's warnings (and the one for a
password typed on the command line) go to stderr once, here.
"""

from __future__ import annotations

import os
import sys

from cachetop.collectors.base import Target
from cachetop.config import (
    Config,
    command_line_password_warning,
    load_config,
    resolve_config_path,
)
from cachetop.errors import ConfigError
from cachetop.target_url import parse_target_url
from cachetop.text_safety import plain


def config_target(spec: str, config_path: str | None) -> tuple[Target, Config]:
    """(the target `spec` names, the config it was read with); ConfigError for no such name."""
    env = dict(os.environ)
    config = load_config(resolve_config_path(config_path, env), env)
    warnings = list(config.warnings)
    if "://" in spec:
        target = parse_target_url(spec, timeout_s=config.timeout_s)
        warnings += filter(None, [command_line_password_warning(target)])
    else:
        found = [t for t in config.targets if t.name == spec]
        if not found:
            where = config.path or "no config file"
            raise ConfigError(f"no target named {plain(spec)!r} ({where}); give a URL "
                              "such as redis://127.0.0.1:6379")
        target = found[0]
    for warning in warnings:
        print(f"cachetop: warning: {warning}", file=sys.stderr)
    return target, config
