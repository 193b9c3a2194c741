"""The layers hold at run time: every module is imported, none is listed by hand.

The import contracts in pyproject.toml (`lint-imports`) read the source; these tests import
each module found by walking the packages (pkgutil.walk_packages) in a fresh interpreter, so
an import done another way (importlib, a plugin) is caught too, and a new module is covered
the day it is added.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from types import ModuleType

import cachetop
from cachetop import collectors

UI_LIBRARIES = ("textual", "rich", "plotext")
TUI = "cachetop.tui"
# Importing a __main__ runs the program.
NOT_IMPORTABLE = ("__main__",)


def _modules(package: ModuleType) -> list[str]:
    """The package and every module below it, by walking the folders (importing only packages)."""
    found = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if info.name.rsplit(".", 1)[-1] not in NOT_IMPORTABLE:
            found.append(info.name)
    return found


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def _first_to_load(modules: list[str], loaded: str) -> str:
    """Import `modules` in order in a fresh interpreter; the first after which a module
    matching the expression `loaded` (over the name `m`) is in sys.modules, else ''."""
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            f"    if any({loaded} for m in sys.modules):\n"
            "        print(name, sorted(m for m in sys.modules if " f"{loaded}))\n"
            "        break\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_walk_finds_every_layer() -> None:
    """The other tests are only as good as the walk: it must find modules deep in each tree."""
    found = _modules(cachetop)
    for module in ("cachetop.collectors.redis_info", "cachetop.tracker", "cachetop.actions.audit",
                   "cachetop.engine.process", "cachetop.cli.dashboard",
                   "cachetop.tui.widgets.metric_chart"):
        assert module in found
    assert "cachetop.collectors.redis_info" in _modules(collectors)


def test_no_module_outside_the_tui_loads_a_ui_library() -> None:
    headless = [m for m in _modules(cachetop) if not _inside(m, TUI)]
    assert len(headless) > 100
    loaded = f"m.split('.')[0] in {UI_LIBRARIES!r}"
    assert _first_to_load(headless, loaded) == ""


def test_collectors_never_import_the_rest_of_cachetop() -> None:
    loaded = ("m.startswith('cachetop.') "
              "and not (m == 'cachetop.collectors' or m.startswith('cachetop.collectors.'))")
    assert _first_to_load(_modules(collectors), loaded) == ""


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


def test_the_first_frame_waits_for_no_config_figures_or_rows_module() -> None:
    """The dashboard draws its first frame before it reads the config (issue 11): what the
    command line and the fleet screen import up front leaves out the config and its TOML
    parser, the figures' and rows' modules, the sources, the collectors' Target, json and the
    sparklines' statistics (each loads after the first frame, when first needed)."""
    late = ("cachetop.config", "cachetop.fleet", "cachetop.tui.rows", "cachetop.source",
            "cachetop.collectors.base", "cachetop.events", "tomllib", "json", "statistics")
    code = ("import sys, cachetop.cli.dashboard, cachetop.tui.app; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {late!r} "
            f"or m in {late!r} or m.startswith({tuple(n + '.' for n in late)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
