"""Provides main(), the `cachetop` console script; the command-line entry points live beside it.

The entry points only parse arguments and hand over, above the headless core: the dashboard
with its headless `--once` and `--batch` printers (`dashboard`), the actions (`actions`) and the
key analysis (`keys`). The masking ArgumentParser every command uses stays in
cachetop.cli_parser, because the engine process parses its own arguments with it and the engine
must not import this package.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `cachetop` command (dashboard.main) and return its exit code.

    The dashboard is imported by name, when called: it reaches the TUI, which is outside the
    strictly typed paths, and mypy would follow a plain import from every module of this
    package (`cachetop.cli.keys` is typed strictly) into it.
    """
    dashboard = importlib.import_module("cachetop.cli.dashboard")
    return int(dashboard.main(argv))
