"""A crash inside the app prints a traceback without local variables (they can hold secrets)."""

from __future__ import annotations

import subprocess
import sys

CRASHING_APP = r'''
import dataclasses
from cachetop.config import load_config
from cachetop.demo.scripted import ScriptedMonitor
from cachetop.tui.app import CachetopApp

class Boom(CachetopApp):
    def on_mount(self) -> None:
        url = "redis://admin:TopSecretPw@127.0.0.1:1"
        raise RuntimeError("boom " + str(len(url)))

app = Boom(dataclasses.replace(load_config(None, {}), targets=()), source=ScriptedMonitor())
app.run(headless=True)
'''


def test_crash_report_has_no_locals() -> None:
    out = subprocess.run([sys.executable, "-c", CRASHING_APP], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    text = out.stdout + out.stderr
    assert "RuntimeError" in text
    assert "boom" in text
    assert "TopSecretPw" not in text
