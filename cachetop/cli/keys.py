"""Provides main() for `cachetop keys TARGET`: where a cache's memory goes, by key prefix.

Redis: a sampled analysis by default (--sample N keys, estimates with 95 % margins), or every
key with --full; memcached: every item (metadump), with per-prefix hit ratios when `stats
detail` is on (--enable-detail turns it on, and cachetop turns it off again when it exits,
Ctrl-C and SIGTERM included). Ctrl-C, SIGTERM and SIGHUP stop an analysis and print what it
found so far. Exit codes: 0 done, 1 failed, 2 usage or config, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn

from cachetop.actions import ActionError
from cachetop.cli.actions import _positive
from cachetop.cli.target_arg import config_target
from cachetop.collectors.base import Target
from cachetop.errors import ConfigError
from cachetop.keys.document import report_document, report_lines
from cachetop.keys.memcached_detail import DetailSwitch, restore_all
from cachetop.keys.memcached_keys import analyze_memcached
from cachetop.keys.model import KeysReport
from cachetop.keys.prefixes import check_delimiter
from cachetop.keys.redis_scan import DEFAULT_SAMPLE, KeyScanOptions, RedisKeyScan
from cachetop.text_safety import plain

EXIT = {"done": 0, "failed": 1, "cancelled": 130, "running": 1}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _count(what: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number of {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cachetop keys", description=(
        "Where the memory goes: keys and memory per key prefix, the biggest and hottest keys, "
        "TTL and encoding mix (Redis); keys, sizes and hit ratios per prefix (memcached)."))
    p.add_argument("target", metavar="TARGET", help="a URL (redis://host:port/db, "
                   "memcached://host:port) or the name of a target in the config file")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sample", type=_count("keys", 100, 10_000_000), metavar="N",
                      default=DEFAULT_SAMPLE,
                      help=f"Redis: read N keys spread over the keyspace (default "
                      f"{DEFAULT_SAMPLE}); figures are estimates with 95%% margins")
    mode.add_argument("--full", action="store_true", help="Redis: read every key (exact)")
    p.add_argument("--delimiter", default=":", metavar="C",
                   help="what separates a key's levels (default ':')")
    p.add_argument("--depth", type=_count("levels", 1, 3), default=1, metavar="D",
                   help="prefix levels, 1-3 (default 1: 'user:' of 'user:1:cart')")
    p.add_argument("--top", type=_count("keys", 1, 1000), default=10, metavar="N",
                   help="biggest and hottest keys to list (default 10)")
    p.add_argument("--db", type=_count("", 0, 100_000), help="Redis db (default: the target's)")
    p.add_argument("--rate", type=_positive("keys/s"), metavar="N",
                   help="Redis: at most N keys/s (default: as fast as the server's probe "
                   "latency allows)")
    p.add_argument("--enable-detail", action="store_true",
                   help="memcached: turn `stats detail on` for per-prefix hit ratios (this "
                   "changes the server; cachetop turns it off again when it exits)")
    p.add_argument("--interval", type=_positive("seconds"), default=5.0, metavar="S",
                   help="memcached: seconds between the two detail dumps (default 5)")
    p.add_argument("--config", metavar="FILE", help="TOML config file")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def _target(args: argparse.Namespace) -> Target:
    target, _ = config_target(args.target, args.config)
    if target.kind not in ("redis", "memcached"):
        raise ConfigError(f"{plain(target.name)} is a {target.kind} endpoint: key analysis "
                          "needs a Redis or memcached target")
    return target


def _analyse(target: Target, args: argparse.Namespace,
             cancel: threading.Event) -> KeysReport:
    delimiter = os.fsencode(args.delimiter)
    if target.kind == "memcached":
        if args.db not in (None, 0):
            raise ConfigError("memcached has no databases")
        return analyze_memcached(target, delimiter=delimiter, depth=args.depth, top=args.top,
                                 enable_detail=args.enable_detail, interval_s=args.interval,
                                 switch=DetailSwitch(target), cancel=cancel)
    options = KeyScanOptions(mode="full" if args.full else "sampled", sample=args.sample,
                             delimiter=delimiter, depth=args.depth, top=args.top, db=args.db,
                             rate_keys_per_s=args.rate)
    return RedisKeyScan(target, options).run(cancel)


def _run(target: Target, args: argparse.Namespace) -> tuple[KeysReport, bool]:
    """Analyse in a worker thread, so Ctrl-C, SIGTERM and SIGHUP only set the cancel event:
    the analysis stops after its current page and the partial figures are printed."""
    cancel, finished = threading.Event(), threading.Event()
    box: list[KeysReport | BaseException] = []

    def work() -> None:
        try:
            box.append(_analyse(target, args, cancel))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            box.append(exc)
        finally:
            finished.set()

    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, lambda *_: cancel.set()) for signum in stops}
    worker = threading.Thread(target=work, name="cachetop-keys")
    interrupted = False
    worker.start()
    try:
        while not finished.is_set():
            try:
                finished.wait(0.1)
            except KeyboardInterrupt:
                interrupted = True
                cancel.set()
        worker.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result, interrupted or cancel.is_set()


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv[1:]))
    why = check_delimiter(os.fsencode(args.delimiter), args.depth)
    if why:
        print(f"cachetop keys: --delimiter: {why}", file=sys.stderr)
        return 2
    try:
        target = _target(args)
        report, interrupted = _run(target, args)
    except ConfigError as exc:
        print(f"cachetop keys: {exc}", file=sys.stderr)
        return 2
    except ActionError as exc:
        print(f"cachetop keys: {exc}", file=sys.stderr)
        return 1
    finally:
        for error in restore_all():
            print(f"cachetop keys: {error}", file=sys.stderr)
    if args.json:
        print(json.dumps(report_document(report), ensure_ascii=True))
    else:
        print("\n".join(report_lines(report)))
    if interrupted and report.status != "failed":
        return 130
    return EXIT[report.status]
