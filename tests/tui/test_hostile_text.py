"""Text from the wire is shown literally in every widget and the JSON, never interpreted: cache
labels, key names, slowlog arguments, INFO and settings strings, HELP text and error reasons."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.content import Content
from textual.widget import Widget
from textual.widgets import DataTable, TabbedContent

from cachetop.config import Config
from cachetop.fleet import FleetSnapshot
from cachetop.snapshot_json import snapshot_document
from cachetop.text_safety import plain
from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.action import ActionScreen
from cachetop.tui.screens.fleet import FleetScreen
from cachetop.tui.widgets.fleet_table import FleetTable
from cachetop.tui.widgets.instance_detail import RawView
from tests.integration.test_endpoint_figures import Endpoint
from tests.servers import MemcachedServer, RedisServer
from tests.tui.pilot import cell, config_for, row_order, wait_for
from tests.tui.test_instance_screen import column_values, goto, open_instance

HOSTILE = "[@click=app.quit]x[/] \x1b[31mred\u202e"


def test_markup_and_escapes_in_a_cache_label_are_shown_literally() -> None:
    endpoint = Endpoint()
    label = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')
    endpoint.text = ("# TYPE cache_hits_total counter\n"
                     f'cache_hits_total{{cache="{label}"}} 5\n'
                     "# TYPE cache_misses_total counter\n"
                     f'cache_misses_total{{cache="{label}"}} 5\n')
    config = config_for(f"http://127.0.0.1:{endpoint.port}/metrics", names=["app"])

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: len(row_order(table)) == 2)
            child = row_order(table)[1]
            shown = table.get_cell(child, "name").plain
            assert "[@click=app.quit]x[/]" in shown         # markup shown, not parsed
            assert "\x1b" not in shown                       # ESC never reaches the terminal
            assert "\\x1b[31mred" in shown                   # ...it is shown escaped
            assert "\u202e" not in shown and "\\u202e" in shown
            table.move_cursor(row=1)
            await pilot.click(FleetTable, offset=(3, 2))     # clicking it runs nothing
            await pilot.pause(0.2)
            assert app.is_running
            await pilot.press("q")

    try:
        asyncio.run(scenario())
    finally:
        endpoint.close()


# ---------------------------------------------------------------- every widget, real servers
#
# Each string below is carried by a real server: Redis key names (flush preview samples),
# ECHO arguments (slowlog), the redis-server executable path (INFO `executable`, raw INFO pane),
# memcached `-o ssl_chain_cert` (settings pane), metric labels and HELP text (cache names, raw
# families pane) and a malformed exposition line (the target's reason line).

MARKUP = ("[@click=app.quit]x[/]", "[link=https://evil]y[/link]", "a[/]b", "[/")
ESCAPES = "\x1b]0;PWNED\x07\x1b[2J"
NASTY: tuple[str | bytes, ...] = (*MARKUP, ESCAPES, "r\u202el", "n\x00ul", b"bad\xff\xfeutf8")
HUGE_KEY = b"h:huge:" + b"\x1b" * (1 << 20)
FORBIDDEN = ("\x1b]0;PWNED", "\x1b[2J", "\x1b]8;", "\u202e", "\x00", "\x07")


def terminal_output(app: CachetopApp) -> str:
    """What the app writes to the terminal for the current screen, escape codes included."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(),
                      force_terminal=True, color_system="truecolor", legacy_windows=False,
                      safe_box=False)
    update = app.screen._compositor.render_update(full=True,
                                                  screen_stack=app._background_screens)
    return update.render_segments(console)


def assert_inert(app: CachetopApp, *shown: str) -> None:
    """No terminal control of the hostile strings reaches the terminal, no link or click action
    from them is on screen, and the texts read from the widgets carry no control character."""
    out = terminal_output(app)
    for bad in FORBIDDEN:
        assert bad not in out, (bad, out[:200])
    for strip in app.screen._compositor.render_strips():
        for segment in strip:
            style = segment.style
            if style is not None:
                assert not (style.link and "evil" in style.link)
                assert "app.quit" not in str(style.meta.get("@click", ""))
    for text in shown:
        assert not any(bad in text for bad in FORBIDDEN), ascii(text)


def widget_text(widget: Widget) -> str:
    content = widget.render()
    return content.plain if isinstance(content, Text | Content) else str(content)


def _as_str(value: str | bytes) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def hostile_redis(base: Path) -> RedisServer:
    """A redis-server whose executable path (INFO `executable`) holds every hostile string
    that a file name can: a symlink under directories named after them."""
    server = RedisServer()
    parts = [MARKUP[0], MARKUP[1], MARKUP[2], MARKUP[3] + ESCAPES + "\u202e\udcff"]
    # A str, not a Path: Path would fold the "//" of the link's URL, which the kernel ignores.
    link = os.fsencode(str(base) + "/" + "/".join(parts) + "/redis-server")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(server.path, link)
    server.path = os.fsdecode(link)
    return server


def test_hostile_keys_slowlog_and_info_in_the_redis_panes_and_flush_preview(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))       # the audit log, if any
    server = hostile_redis(tmp_path)
    server.start()
    try:
        client = server.client()
        conn = client.connection_pool.get_connection()
        conn.send_command("INFO", "server")
        info = conn.read_response()
        client.connection_pool.release(conn)
        assert MARKUP[1].encode() + b"/a[/]b/[/\x1b]0;PWNED" in info      # a real INFO string
        for value in NASTY:
            client.set(b"h:" + (value.encode() if isinstance(value, str) else value), b"v")
        client.set(HUGE_KEY, b"v")
        client.config_set("slowlog-log-slower-than", 0)
        for value in NASTY:
            client.execute_command("ECHO", value)
        client.execute_command("ECHO", HUGE_KEY)
        client.config_set("slowlog-log-slower-than", 1_000_000)
        asyncio.run(_redis_scenario(config_for(server.url, names=["evil"])))
    finally:
        server.close()


async def _redis_scenario(config: Config) -> None:
    app = CachetopApp(config)
    quits: list[str] = []
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_instance(app, pilot, "evil")
        await goto(pilot, screen, "4", "tab-redis-slowlog")
        slowlog = screen.query_one("#redis-slowlog DataTable", DataTable)
        commands = column_values(slowlog, "cmd")
        for value in NASTY:
            assert any(plain(_as_str(value)) in c for c in commands), ascii((value, commands))
        assert any(c.startswith('ECHO "h:huge:\\x1b\\x1b') for c in commands)  # cut by Redis
        assert_inert(app, *commands)
        app.action_quit = lambda: quits.append("quit")  # type: ignore[method-assign]
        await pilot.click("#redis-slowlog DataTable", offset=(20, 2))    # on a hostile cell
        await pilot.pause(0.2)

        await pilot.press("slash")                                        # raw INFO search
        await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "tab-raw")
        raw = screen.query_one("#raw", RawView)
        await pilot.pause()
        await pilot.press(*"executable")
        await wait_for(pilot, lambda: widget_text(raw.query_one(".raw-count")).startswith("1 of"))
        line = widget_text(raw.query_one(".raw-lines"))
        for text in MARKUP:
            assert text in line
        assert "\\x1b]0;PWNED\\x07\\x1b[2J\\u202e\\xff" in line
        assert_inert(app, line)
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))

        await pilot.press("f")                                            # flush by pattern
        await wait_for(pilot, lambda: isinstance(app.screen, ActionScreen))
        await pilot.press("h", "colon", "asterisk", "enter")
        preview = app.screen.query_one("#action-preview")
        await wait_for(pilot, lambda: "keys: 9" in widget_text(preview))
        shown = widget_text(preview)
        for value in (*NASTY, HUGE_KEY[:40]):
            assert plain(_as_str(value)) in shown, (value, shown)
        assert "…(+" in shown                                           # the 1 MB key, cut
        assert_inert(app, shown)
        await pilot.press("escape")
        assert quits == [] and app.is_running
        await pilot.press("q")


def test_hostile_memcached_settings_are_shown_escaped() -> None:
    # No space (pymemcache's stats() keeps a settings value up to its first space), no comma.
    hostile = "/tmp/" + "".join(MARKUP) + ESCAPES + "\u202e"
    server = MemcachedServer("-o", f"ssl_chain_cert={hostile},ssl_key={hostile}")
    server.start()
    try:
        asyncio.run(_memcached_scenario(config_for(server.url, names=["mc"])))
    finally:
        server.close()


async def _memcached_scenario(config: Config) -> None:
    app = CachetopApp(config)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_instance(app, pilot, "mc")
        await goto(pilot, screen, "4", "tab-mc-settings")
        settings = screen.query_one("#mc-settings", RawView)
        settings.focus_filter()
        await pilot.press(*"ssl_chain_cert")
        await wait_for(pilot, lambda: widget_text(settings.query_one(".raw-count"))
                       .startswith("1 of"))
        line = widget_text(settings.query_one(".raw-lines"))
        for text in MARKUP:
            assert text in line
        assert "\\x1b]0;PWNED\\x07\\x1b[2J\\u202e" in line
        assert_inert(app, line)
        await pilot.press("escape", "escape")
        await pilot.press("q")


LABELS = (*MARKUP, ESCAPES + "z", "r\u202el", "n\x00ul", "big" + "x" * 50_000)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def test_hostile_labels_help_and_errors_in_endpoint_panes_reason_line_and_json() -> None:
    good, bad = Endpoint(), Endpoint()
    lines = [f"# HELP cache_hits_total hits {MARKUP[0]} {ESCAPES}",
             "# TYPE cache_hits_total counter"]
    lines += [f'cache_hits_total{{cache="{_label(v)}"}} {i}' for i, v in enumerate(LABELS, 1)]
    lines += ["# TYPE cache_misses_total counter"]
    lines += [f'cache_misses_total{{cache="{_label(v)}"}} 1' for v in LABELS]
    good.text = "\n".join(lines) + "\n"
    bad.text = (f'cache_hits_total{{cache="a"}} 1\n'
                f'cache_misses_total{{{MARKUP[1]}{ESCAPES}\u202e="1"}} 1\n')
    config = config_for(f"http://127.0.0.1:{good.port}/metrics",
                        f"http://127.0.0.1:{bad.port}/metrics", names=["api", "broken"])
    try:
        asyncio.run(_endpoint_scenario(config))
    finally:
        good.close()
        bad.close()


async def _endpoint_scenario(config: Config) -> None:
    app = CachetopApp(config)
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.fleet_screen.query_one(FleetTable)
        await wait_for(pilot, lambda: cell(table, "broken", "status").endswith("bad-data"))
        table.move_cursor(row=table.get_row_index("broken"))
        await pilot.pause()
        reason = widget_text(app.fleet_screen.query_one("#selection"))
        assert "bad-data: line 2:" in reason and MARKUP[1] in reason
        assert "\\x1b]0;PWNED" in reason
        assert_inert(app, reason)

        snap = app.snapshot
        assert snap is not None
        _json_round_trip(snap)

        screen = await open_instance(app, pilot, "api")
        await goto(pilot, screen, "2", "tab-metrics-caches")
        caches = screen.query_one("#metrics-caches DataTable", DataTable)
        await wait_for(pilot, lambda: len(caches.rows) == len(LABELS))
        names = column_values(caches, "name")
        for value in MARKUP:
            assert value in names
        assert "\\x1b]0;PWNED\\x07\\x1b[2Jz" in names and "r\\u202el" in names
        assert_inert(app, *names)
        await goto(pilot, screen, "3", "tab-raw")
        raw = widget_text(screen.query_one("#raw .raw-lines"))
        assert f"hits {MARKUP[0]} \\x1b]0;PWNED" in raw
        assert_inert(app, raw)
        await pilot.press("q")


def _json_round_trip(snap: FleetSnapshot) -> None:
    """The JSON document is valid, and the hostile names and errors come back identical."""
    doc = snapshot_document(snap)
    text = json.dumps(doc, ensure_ascii=False)
    assert "\x1b" not in text and "\x00" not in text           # JSON escapes every C0 byte
    back = json.loads(text)
    assert back == json.loads(json.dumps(doc))
    api = next(t for t in back["targets"] if t["name"] == "api")
    assert sorted(c["name"] for c in api["caches"]) == sorted(LABELS)   # what was served
    broken = next(t for t in back["targets"] if t["name"] == "broken")
    assert broken["error"] == next(t.error for t in snap.targets if t.name == "broken")
