"""Writes screenshots/*.svg: the app rendering itself from the scripted fleet.

Run `python scripts/make_screenshots.py` (or `make screenshots`) after a visible change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cachetop.config import load_config  # noqa: E402
from cachetop.demo.scripted import ScriptedMonitor  # noqa: E402
from cachetop.tui.app import CachetopApp  # noqa: E402

SHOTS: list[tuple[str, list[str], str | None]] = [
    ("fleet", [], None),
    ("help", ["question_mark"], None),
    ("instance_redis", [], "catalog-1"),
    ("instance_memcached", [], "pages"),
    ("instance_endpoint", [], "api"),
]


async def shoot(name: str, keys: list[str], instance: str | None, out: Path) -> None:
    config = dataclasses.replace(load_config(None, {}), targets=())
    app = CachetopApp(config, source=ScriptedMonitor())  # type: ignore[arg-type]
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.pause(0.3)
        if instance is not None:
            app.open_instance(instance)
            await pilot.pause(1.5)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        app.save_screenshot(str(out / f"{name}.svg"))


def main() -> int:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    for name, keys, instance in SHOTS:
        asyncio.run(shoot(name, keys, instance, out))
        print(f"wrote screenshots/{name}.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
