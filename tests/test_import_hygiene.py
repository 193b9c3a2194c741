"""The headless layers never load the TUI stack, and collectors never import cachetop."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEADLESS = ["collectors", "collectors.registry", "collectors.redis_info",
            "collectors.memcached_stats", "collectors.prom_endpoint", "collectors.poller",
            "cachetop.tracker", "cachetop.fleet", "cachetop.monitor", "cachetop.config",
            "cachetop.cli", "cachetop.snapshot_json", "cachetop.report", "cachetop.actions",
            "cachetop.cli.actions", "cachetop.actions.tagging", "cachetop.actions.audit",
            "cachetop.demo.app",
            "cachetop.tui.table_model"]


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_module_loads_no_ui(module: str) -> None:
    code = (f"import sys, {module}; bad = [m for m in ('textual', 'rich', 'plotext') "
            "if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_collectors_never_import_cachetop() -> None:
    code = ("import sys, collectors.registry, collectors.poller, collectors.redis_info, "
            "collectors.memcached_stats, collectors.prom_endpoint; "
            "print([m for m in sys.modules if m == 'cachetop' or m.startswith('cachetop.')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_fleet_screen_loads_no_instance_screen_action_or_chart() -> None:
    """The first frame waits for nothing it does not draw (issue 11): the instance and action
    screens, the actions, plotext, redis-py and prometheus_client load when first needed."""
    code = ("import sys, cachetop.cli.dashboard, cachetop.tui.app, cachetop.tui.screens.fleet; "
            "print([m for m in sys.modules if m.startswith(('plotext', 'redis', 'pymemcache', "
            "'prometheus_client', 'cachetop.actions', 'cachetop.keys', "
            "'cachetop.tui.screens.instance', 'cachetop.tui.screens.action', "
            "'cachetop.tui.screens.help'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
