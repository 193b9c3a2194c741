"""Provides main(): the `cachetop` command line. Headless paths never import the TUI."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cachetop import __version__
from cachetop.cli_parser import ArgumentParser, config_file, no_token_here
from cachetop.errors import ConfigError, RecordingError

# The dashboard's first frame waits for every module imported here (issue 11): what only the
# headless paths, the engine, a recording or the config's reading (after the first frame)
# need is imported where it is used.
if TYPE_CHECKING:
    from cachetop.config import Config
    from cachetop.engine.client import EngineClient
    from cachetop.record.store import RecorderThread
    from cachetop.source import FleetSource

log = logging.getLogger("cachetop")

# Subcommands handled by cachetop.cli.actions (flush keys, flush a db, delete, tags).
ACTION_COMMANDS = frozenset({"flush", "flushdb", "flushall", "delete", "tags", "invalidate"})
# Every subcommand with its one-line purpose, in the order --help lists them.
COMMAND_HELP = {
    "agent": "serve this fleet's figures: Prometheus /metrics and a stream for --connect",
    "demo": "a local demo fleet and application, watched in the dashboard",
    "record": "record the fleet's snapshots and events to a file, headless (no output)",
    "replay": "a recording in the dashboard with a time cursor, or as JSON (--at, --from)",
    "keys": "key analysis of one target: prefixes, biggest and hot keys",
    "flush": "delete the keys matching a pattern (preview, confirm, paced)",
    "flushdb": "delete every key of one Redis db, or memcached flush_all",
    "flushall": "memcached flush_all (Redis: flushdb one db at a time)",
    "delete": "delete exact keys (KEY...)",
    "tags": "list the tags on a target, by live keys",
    "invalidate": "delete the keys of tags (cachetop, laravel, symfony dialects)",
}
COMMANDS = tuple(COMMAND_HELP)
# What --once and --batch exit with; README.md says the same.
EXIT_ALL_UP, EXIT_NOT_UP, EXIT_USAGE = 0, 1, 2
# A first word like this is meant as a command: a target is always a URL (scheme://...).
_COMMAND_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def build_parser() -> ArgumentParser:
    commands = "\n".join(f"  {name:<11} {what}" for name, what in COMMAND_HELP.items())
    p = ArgumentParser(
        prog="cachetop",
        usage="cachetop [options] [TARGET ...]\n       cachetop COMMAND ... (cachetop COMMAND "
              "--help)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Live figures of every Redis, Memcached and application cache in a fleet.",
        epilog=f"commands:\n{commands}\n\n"
               "targets:\n  redis://[user:pass@]host:port[/db], rediss://..., "
               "unix:///path.sock,\n  memcached://host:port, http(s)://host:port/metrics. "
               "With no target and no\n  config file, cachetop watches what runs on this "
               "machine.\n\n"
               "exit codes of --once and --batch (of the last snapshot printed):\n"
               f"  {EXIT_ALL_UP} every target up, {EXIT_NOT_UP} some target not up (down, "
               f"auth-failed, ...),\n  {EXIT_USAGE} usage or config error",
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="target URLs")
    p.add_argument("--config", type=config_file, metavar="FILE", help="TOML config file")
    p.add_argument("--interval", type=float, metavar="S", help="seconds between polls")
    p.add_argument("--timeout", type=float, metavar="S", help="per-target poll timeout")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="poll twice, print one snapshot")
    mode.add_argument("--batch", action="store_true", help="print a snapshot every interval")
    p.add_argument("--count", type=int, metavar="N",
                   help="with --batch (or --json): stop after N snapshots")
    p.add_argument("--json", action="store_true", help="JSON output (one document per line)")
    p.add_argument("--caches-limit", type=int, metavar="N",
                   help="with --json: at most N caches per endpoint, the busiest (default: all)")
    p.add_argument("--read-only", action="store_true", help="refuse every write action")
    p.add_argument("--record", metavar="FILE",
                   help="record every snapshot and event to FILE (SQLite; cachetop replay FILE)")
    p.add_argument("--record-keep", metavar="DURATION", default="48h",
                   help="with --record: drop what is older than this (default 48h)")
    p.add_argument("--connect", metavar="HOST:PORT",
                   help="show a remote `cachetop agent`'s fleet (https://HOST:PORT for TLS)")
    p.add_argument("--prometheus", metavar="URL",
                   help="read the fleet from a Prometheus-compatible API instead of polling")
    p.add_argument("--match", metavar="SELECTOR",
                   help='with --prometheus: only series matching this, e.g. {job="cache"}')
    p.add_argument("--bearer-token-file", "--token-file", metavar="FILE",
                   dest="bearer_token_file",
                   help="with --connect or --prometheus: a bearer token")
    # Hidden: `--token=X` / `--bearer-token=X` would abbreviate the file option, and the error
    # about a file named X would show the token; these refuse it without the value.
    p.add_argument("--token", type=no_token_here, help=argparse.SUPPRESS)
    p.add_argument("--bearer-token", type=no_token_here, help=argparse.SUPPRESS)
    p.add_argument("--tls-ca", metavar="FILE",
                   help="with --connect https://...: the CA that signed the agent's certificate")
    p.add_argument("--log", metavar="FILE", help="write logs here instead of stderr")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"cachetop {__version__}")
    return p


def load(args: argparse.Namespace, *, warn: bool = True) -> Config:
    """Config from defaults < file < CACHETOP_* env < command line; discovery when empty.
    `warn`: print the config's warnings to stderr now (the dashboard says them itself: it
    reads the config after its first frame, when stderr is the screen)."""
    from cachetop.config import (
        load_config,
        resolve_config_path,
        targets_from_cli,
        with_cli_targets,
    )

    env = dict(os.environ)
    config = load_config(resolve_config_path(args.config, env), env)
    interval = args.interval if args.interval is not None else config.interval_s
    if interval <= 0:
        raise ConfigError("--interval: must be a positive number of seconds")
    if args.timeout is not None and args.timeout <= 0:
        raise ConfigError("--timeout: must be a positive number of seconds")
    config = with_cli_targets(config, targets_from_cli(
        args.targets, timeout_s=args.timeout if args.timeout is not None else config.timeout_s))
    targets = list(config.targets)
    if not targets:
        from cachetop.discovery import discover_local

        targets = discover_local()
        if not targets:
            raise ConfigError("no targets: give a URL (e.g. redis://127.0.0.1:6379), a --config "
                              "file, or start redis-server or memcached on this machine")
    if args.timeout is not None:
        targets = [dataclasses.replace(t, timeout_s=args.timeout) for t in targets]
    if warn:
        print_warnings(config)
    return dataclasses.replace(config, targets=tuple(targets), interval_s=interval,
                               read_only=config.read_only or args.read_only,
                               caches_limit=args.caches_limit)


def print_warnings(config: Config) -> None:
    for warning in config.warnings:
        print(f"cachetop: warning: {warning}", file=sys.stderr)


class Emitter:
    """Prints snapshots (as_json None: prints nothing) with the events since the last one,
    and records what it printed (--record). Returns (targets not up, targets) of what it
    printed, or None when it printed nothing (for the exit status)."""

    def __init__(self, as_json: bool | None, caches_limit: int | None,
                 recorder: RecorderThread | None = None) -> None:
        self.as_json, self.caches_limit, self.recorder = as_json, caches_limit, recorder
        self.seen = 0

    def __call__(self, source: FleetSource) -> tuple[int, int] | None:
        from cachetop.engine.client import EngineClient

        if isinstance(source, EngineClient) and source.documents:
            # The engine wrote the line (with the events since the last one): print it.
            document = source.document(self.caches_limit, max(2.0, source.interval_s))
            if document is None:
                return None
            print(document.json, flush=True)
            return document.not_up, document.total
        return self._from_snapshot(source)

    def _from_snapshot(self, source: FleetSource) -> tuple[int, int]:
        from cachetop.report import render_table
        from cachetop.snapshot_json import snapshot_document

        snap = source.snapshot()
        events = source.events_since(self.seen)
        if events:
            self.seen = events[-1].seq
        doc = (snapshot_document(snap, self.caches_limit, events)
               if self.as_json or self.recorder else None)
        if self.as_json:
            import json

            print(json.dumps(doc, ensure_ascii=True), flush=True)
        elif self.as_json is not None:
            print(render_table(snap), end="\n\n", flush=True)
        if self.recorder is not None and doc is not None:
            self.recorder.put(snap.taken_at, doc, events)
        return snap.not_up()


def _emit(source: FleetSource, as_json: bool,
          caches_limit: int | None = None) -> tuple[int, int] | None:
    return Emitter(as_json, caches_limit)(source)


def open_recorder(path: str | None, keep: str) -> RecorderThread | None:
    """The recorder of --record FILE, on its own thread; RecordingError for a bad file."""
    if not path:
        return None
    from cachetop.events.rules import parse_duration
    from cachetop.record.store import Recorder, RecorderThread

    try:
        keep_s = parse_duration(keep)
    except ValueError as exc:
        raise RecordingError(f"--record-keep: {exc}") from None
    return RecorderThread(Recorder(path, keep_s=keep_s or None))


def exit_code(printed: tuple[int, int] | None) -> int:
    """0 when every target of the last snapshot printed is up, 1 when any is not (down,
    auth-failed, stale, ...; or nothing was printed), so `cachetop --once` works as a check;
    one stderr line says how many were not up. `printed`: (not up, targets)."""
    if printed is None:
        return EXIT_NOT_UP
    not_up, total = printed
    if not not_up:
        return EXIT_ALL_UP
    print(f"cachetop: {not_up} of {total} targets not up", file=sys.stderr)
    return EXIT_NOT_UP


def _engine(config: Config, mode: str, log_file: str | None,
            documents: bool = False) -> EngineClient:
    from cachetop.engine.client import EngineClient

    return EngineClient(config.targets, config.interval_s, history_s=config.interval_s * 4,
                        mode=mode, log_file=log_file, thresholds=config.thresholds,
                        alerts=config.alerts, documents=documents)


def run_once(config: Config, as_json: bool, log_file: str | None = None,
             engine: EngineClient | None = None) -> int:
    """Poll every target twice, one interval apart (in the engine), and print the figures of
    that interval. `engine`: another source of the same kind (a remote agent's)."""
    engine = engine or _engine(config, "once", log_file)
    engine.start()
    try:
        # Two polls, an interval apart, each bounded by its deadline; then some slack.
        if not engine.wait_done(config.interval_s * 3 + 30):
            print("cachetop: the engine did not answer in time", file=sys.stderr)
            return 1
        if engine.notice():
            print(f"cachetop: warning: {engine.notice()}", file=sys.stderr)
        printed = _emit(engine, as_json, config.caches_limit)
    finally:
        engine.stop()
    return exit_code(printed)


def run_batch(config: Config, as_json: bool | None, count: int | None,
              log_file: str | None = None, engine: EngineClient | None = None,
              recorder: RecorderThread | None = None) -> int:
    """Like `top -b`: one snapshot per interval, until --count or a signal (as_json None:
    record only, print nothing: `cachetop record`)."""
    emit = Emitter(as_json, config.caches_limit, recorder)
    # --batch --json: the engine writes each line (its figures are not sent here as well).
    engine = engine or _engine(config, "live", log_file,
                               documents=bool(as_json) and recorder is None)
    engine.start()
    printed = 0
    said: str | None = None
    last: tuple[int, int] | None = None
    try:
        engine.wait_hello(10.0)  # the interval starts when the engine does, not the process
        next_at = time.monotonic() + config.interval_s
        while count is None or printed < count:
            # Print a little after the tick so this interval's polls have landed.
            time.sleep(max(0.0, next_at + min(0.2, config.interval_s / 5) - time.monotonic()))
            next_at += config.interval_s
            notice = engine.notice()
            if notice and notice != said:
                print(f"cachetop: warning: {notice}", file=sys.stderr)
            said = notice
            last = emit(engine) or last
            printed += 1
            if recorder is not None and recorder.error:
                print(f"cachetop: {recorder.error}", file=sys.stderr)
                return EXIT_NOT_UP
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
        if recorder is not None:
            recorder.close()
    return exit_code(last)


def run_tui(config: Config | Callable[[], Config], source: EngineClient | None = None,
            recorder: RecorderThread | None = None) -> int:
    """The dashboard. `config` may be a loader: the app draws its first frame, then reads the
    config (issue 11: a 1,000-target file took 40-60 ms, a third of a bare app's first
    frame); a config error ends the app and is raised here, after the screen is restored."""
    # No cyclic GC until the app has started its source (CachetopApp._start_source): the
    # imports and the first frames make objects that live for the whole run, and the passes
    # over them (a full one among them) cost the first frame ~10 ms, the rows ~30.
    gc.disable()
    try:
        try:
            from cachetop.tui.app import run_app
        except ImportError:
            gc.enable()
            loaded = config() if callable(config) else config
            print_warnings(loaded)
            return run_batch(loaded, as_json=False, count=None, engine=source,
                             recorder=recorder)
        return run_app(config, source, recorder)
    finally:
        gc.enable()
        if recorder is not None:
            recorder.close()


def _setup_logging(args: argparse.Namespace) -> None:
    handler: logging.Handler = (logging.FileHandler(args.log) if args.log
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if args.verbose else logging.WARNING)


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)  # a closed terminal stops the demo cleanly too


def run_demo(argv: Sequence[str]) -> int:
    """`cachetop demo`: a local fleet with a demo application, then the dashboard on it.

    Every process it starts is stopped on quit, Ctrl-C, SIGTERM, SIGHUP or a crash; a SIGKILL
    reaches them through the parent-death signal (cachetop.parent_death.die_with_parent).
    """
    from cachetop.demo.fleet import DemoFleet, run_headless
    from cachetop.demo.servers import MissingBinaryError

    p = ArgumentParser(prog="cachetop demo",
                                description="Start a local demo fleet with a demo application "
                                            "and watch it; q quits and stops everything.")
    p.add_argument("--no-tui", action="store_true",
                   help="run the fleet and the application only; print their URLs")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between polls")
    p.add_argument("--rate", type=float, default=150.0, metavar="N",
                   help="requests/s of the demo application (default 150)")
    p.add_argument("--cold-start", type=float, default=20.0, metavar="S",
                   help="length of the cold-start phase (default 20)")
    args = p.parse_args(argv)
    if args.interval <= 0 or args.rate <= 0 or args.cold_start < 0:
        p.error("--interval and --rate must be positive, --cold-start not negative")
    from cachetop.config import load_config, targets_from_cli

    _stop_on_sigterm()
    try:
        fleet = DemoFleet(rate=args.rate, cold_start_s=args.cold_start)
        fleet.start()
    except MissingBinaryError as exc:
        print(f"cachetop demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (OSError, RuntimeError) as exc:  # a server or the application did not come up
        print(f"cachetop demo: could not start the demo fleet: {exc}", file=sys.stderr)
        return 1
    try:
        if args.no_tui:
            return run_headless(fleet)
        targets = [dataclasses.replace(t, name=d.name, group=d.group)
                   for t, d in zip(targets_from_cli([d.url for d in fleet.targets]),
                                   fleet.targets, strict=True)]
        config = dataclasses.replace(load_config(None, {}), targets=tuple(targets),
                                     interval_s=args.interval)
        return run_tui(config)
    except KeyboardInterrupt:
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the cleanup
        fleet.stop()


def unknown_command(word: str) -> str:
    """The error for a first word that is no command (and, being no URL, no target either):
    the likely command (difflib), or all of them when none is close."""
    import difflib

    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = repr(close[0]) if close else f"one of: {', '.join(COMMANDS)}"
    return f"no such command {word!r}; did you mean {hint}?"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `cachetop --batch | head` ends quietly
    if argv[:1] == ["demo"]:
        return run_demo(argv[1:])
    if argv[:1] == ["replay"]:
        from cachetop.record.cli import main as replay_main

        return replay_main(argv[1:])
    if argv[:1] == ["record"]:
        return record_main(argv[1:])
    if argv[:1] == ["agent"]:
        from cachetop.agent.main import main as agent_main

        return agent_main(argv[1:])
    if argv[:1] == ["keys"]:
        from cachetop.cli.keys import main as keys_main

        return keys_main(argv)
    if argv[:1] and argv[0] in ACTION_COMMANDS:
        from cachetop.cli.actions import main as actions_main

        return actions_main(argv)
    parser = build_parser()
    if argv and _COMMAND_WORD.fullmatch(argv[0]):
        parser.error(unknown_command(argv[0]))  # before parsing: the rest belongs to it
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if args.count is not None and (args.once or not (args.batch or args.json)):
        parser.error("--count goes with --batch (or --json): --once prints one snapshot"
                     if args.once else "--count goes with --batch (or --json)")
    if args.caches_limit is not None and args.caches_limit < 0:
        parser.error("--caches-limit must be 0 or more")
    _setup_logging(args)
    if args.prometheus:
        from cachetop.prometheus.cli import run_prometheus

        return run_prometheus(args, parser)
    if args.connect:
        from cachetop.agent.connect import run_connected

        return run_connected(args, parser)
    headless = args.once or args.batch or args.json
    try:
        # The dashboard reads its config after the first frame (run_tui).
        config = load(args) if headless else None
        recorder = None if args.once else open_recorder(args.record, args.record_keep)
        if config is None:
            return run_tui(lambda: load(args, warn=False), recorder=recorder)
    except (ConfigError, RecordingError) as exc:
        print(f"cachetop: {parser.mask(str(exc))}", file=sys.stderr)
        return 2
    if args.once:
        return run_once(config, args.json, args.log)
    return run_batch(config, args.json, args.count, args.log, recorder=recorder)


def record_main(argv: Sequence[str]) -> int:
    """`cachetop record FILE [TARGET...] [options]`: --batch that records and prints nothing."""
    parser = build_parser()
    parser.prog = "cachetop record"
    parser.usage = "cachetop record FILE [TARGET ...] [--config FILE] [--interval S] ..."
    if not argv or argv[0].startswith("-"):
        parser.error("give the recording's FILE first: cachetop record FILE [TARGET ...]")
    args = parser.parse_args(list(argv[1:]))
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    _setup_logging(args)
    try:
        config = load(args)
        recorder = open_recorder(argv[0], args.record_keep)
    except (ConfigError, RecordingError) as exc:
        print(f"cachetop record: {parser.mask(str(exc))}", file=sys.stderr)
        return 2
    return run_batch(config, None, args.count, args.log, recorder=recorder)
