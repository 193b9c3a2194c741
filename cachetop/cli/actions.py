"""Provides main() for `cachetop flush|flushdb|flushall|delete|tags|invalidate`: the actions CLI.

Plan, show, confirm, run, report. Confirmation: --yes, or y/N on a terminal; a prod target
(any config target covering the instance with env = "prod") and a plan that empties a whole db
need a name (--confirm NAME, or typed on a terminal; --yes alone is not enough). Without a
terminal and without --yes nothing runs. Ctrl-C, SIGTERM and SIGHUP (a dropped session) stop
the run after the current batch and record what was done. Exit codes: 0 done (or dry run),
1 partial or failed, nothing to act on (no such key or tag), or the audit result line could
not be written, 2 usage, config or refused, 130 cancelled. The last stdout line is a summary a
script can rely on (or one JSON document with --json). Errors are one line, never a password.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from cachetop.actions import (
    ActionArgumentError,
    ActionError,
    ActionPlan,
    ActionResult,
    Guard,
    Progress,
    execute,
    list_tags,
    plan_delete,
    plan_flush,
    plan_flushdb,
    plan_invalidate,
    refuse,
)
from cachetop.actions.describe import (
    dry_run_line,
    plan_document,
    plan_lines,
    progress_line,
    result_document,
)
from cachetop.actions.plan import target_label
from cachetop.cli.target_arg import config_target
from cachetop.cli_parser import ArgumentParser, config_file
from cachetop.collectors.base import Target
from cachetop.errors import ConfigError
from cachetop.text_safety import exact, plain

EXIT = {"done": 0, "partial": 1, "failed": 1, "refused": 2, "cancelled": 130}


class _Parser(ArgumentParser):
    """One-line usage errors (`cachetop flush: --rate: ...`), exit 2, masked like every
    cachetop parser's."""

    def fail(self, masked: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {masked} (see --help)\n")


def _positive(what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {what}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a positive number of {what}")
        return value

    return parse


def _parser(command: str) -> _Parser:
    p = _Parser(prog=f"cachetop {command}", description=_HELP[command])
    p.add_argument("target", metavar="TARGET", help="a URL (redis://host:port/db, "
                   "memcached://host:port) or the name of a target in the config file")
    if command == "delete":
        p.add_argument("key", metavar="KEY", nargs="+",
                       help="exact keys (no glob), one or more; a missing one is skipped")
    if command == "flush":
        p.add_argument("--pattern", required=True, help="Redis glob: * ? [a-z] [^a] \\x")
        p.add_argument("--type", dest="type_name", help="only keys of this TYPE (Redis)")
        p.add_argument("--count", type=int, default=1000, help="SCAN COUNT per call")
        p.add_argument("--count-budget", type=_positive("seconds"), metavar="S",
                       help="seconds the preview may scan before it estimates (default 2; "
                       "with --yes or --confirm the preview only samples, and the run "
                       "counts as it deletes)")
        p.add_argument("--max-latency-ms", type=_positive("milliseconds"), default=1.0,
                       metavar="MS", help="how long other clients may wait behind one "
                       "command of the flush (default 1): sizes SCAN COUNT and UNLINK batches")
    if command in ("flush", "invalidate"):
        p.add_argument("--rate", type=_positive("keys/s"), metavar="N",
                       help="at most N keys/s, N > 0 (default: "
                       "as fast as the server's probe latency allows)")
    if command in ("tags", "invalidate"):
        p.add_argument("--dialect", choices=("cachetop", "laravel", "symfony"))
        p.add_argument("--prefix", help="laravel cache prefix (default: the config's)")
    if command == "invalidate":
        p.add_argument("--tag", action="append", required=True, help="a tag (repeatable)")
    if command in ("flushdb", "flushall"):
        p.add_argument("--delay", type=int, default=0, metavar="S",
                       help="memcached: flush_all after S seconds")
    if command != "tags":
        p.add_argument("--dry-run", action="store_true", help="preview only; change nothing")
        p.add_argument("--yes", "-y", action="store_true", help="do not ask (not enough for "
                       "a prod target: add --confirm NAME)")
        p.add_argument("--confirm", metavar="NAME", help="the target's name, to confirm a prod "
                       "target")
        p.add_argument("--read-only", action="store_true", help="refuse every write")
    p.add_argument("--db", type=int, help="Redis db (default: the target's)")
    p.add_argument("--config", type=config_file, metavar="FILE", help="TOML config file")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


_HELP = {
    "flush": "Delete the keys matching a pattern (SCAN MATCH + UNLINK; memcached: metadump).",
    "flushdb": "Delete every key of one Redis db (FLUSHDB ASYNC), or memcached flush_all.",
    "flushall": "memcached flush_all. Redis FLUSHALL is not offered: flushdb one db at a time.",
    "delete": "Delete exact keys: cachetop delete TARGET KEY [KEY ...].",
    "tags": "List the tags found on a target, with their index sizes.",
    "invalidate": "Invalidate tags: delete the keys each tag's index lists (tags.md dialects).",
}


class _CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _target(args: argparse.Namespace) -> tuple[Target, Guard, bytes]:
    """(target, the config's guard, laravel prefix) from a URL or a config name."""
    target, config = config_target(args.target, args.config)
    prefix = args.prefix if getattr(args, "prefix", None) is not None else (
        config.options_for(target.name).prefix)
    return target, Guard(config.targets, config.read_only_sources()), os.fsencode(prefix or "")


def _plan(command: str, args: argparse.Namespace, target: Target, guard: Guard,
          prefix: bytes) -> ActionPlan:
    read_only = bool(getattr(args, "read_only", False))
    if command == "flush":
        # Already said yes (and not a dry run): no counting scan before the run, which
        # counts exactly as it deletes; an explicit --count-budget still asks for the count.
        said_yes = (args.yes or args.confirm is not None) and not args.dry_run
        return plan_flush(target, os.fsencode(args.pattern), db=args.db,
                          type_name=args.type_name, read_only=read_only,
                          rate_keys_per_s=args.rate, scan_count=args.count,
                          count_budget_s=args.count_budget or 2.0, guard=guard,
                          max_latency_s=args.max_latency_ms / 1000,
                          count_all=not said_yes or args.count_budget is not None)
    if command == "flushall" and target.kind == "redis":
        raise _CliError("FLUSHALL is not offered: it wipes every db at once; run `cachetop "
                    "flushdb TARGET --db N` for each db instead", 2)
    if command in ("flushdb", "flushall"):
        return plan_flushdb(target, db=args.db, delay_s=args.delay, read_only=read_only,
                            guard=guard)
    if command == "delete":
        return plan_delete(target, [os.fsencode(k) for k in args.key], db=args.db,
                           read_only=read_only, guard=guard)
    return plan_invalidate(target, [os.fsencode(t) for t in args.tag], dialect=args.dialect,
                           prefix=prefix, db=args.db, read_only=read_only,
                           rate_keys_per_s=args.rate, guard=guard)


def _ask(question: str) -> str:
    print(question, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip()


def _confirmation(plan: ActionPlan, args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(confirmation text, refusal reason): exactly one is set."""
    name = plan.confirm_name
    tty = sys.stdin.isatty()
    if name is not None:
        why = plan.confirm_why or f"{exact(name)} is a prod target"
        if args.confirm is not None:
            if args.confirm == name:
                return name, None
            return None, f"--confirm does not match: {why}; the name to give is {exact(name)}"
        if not tty:
            return None, (f"{why}: pass --confirm {exact(name)} (--yes alone is not enough)")
        typed = _ask(f"{why}. Type {exact(name)} to confirm: ")
        return (name, None) if typed == name else (None, "the typed name did not match")
    if args.yes or (args.confirm is not None and args.confirm == plan.target.name):
        return "", None
    if not tty:
        return None, "no terminal to confirm on: pass --yes to run without asking"
    answer = _ask("Proceed? [y/N] ").lower()
    return ("", None) if answer in ("y", "yes") else (None, "not confirmed")


def _progress_printer() -> Callable[[Progress], None] | None:
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(p: Progress) -> None:
        if p.elapsed_s - last[0] >= 0.1:
            last[0] = p.elapsed_s
            print(f"\r{progress_line(p)}\033[K", end="", file=sys.stderr, flush=True)

    return show


def _run(plan: ActionPlan, confirmation: str) -> tuple[ActionResult, bool]:
    """Execute in a worker thread so Ctrl-C (or SIGTERM) only sets the cancel event: the
    current batch finishes, its reply is counted, and the result reports the truth."""
    cancel, finished = threading.Event(), threading.Event()
    box: list[ActionResult] = []
    show = _progress_printer()

    def work() -> None:
        try:
            box.append(execute(plan, show, cancel, confirmation=confirmation))
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="cachetop-action")
    # SIGTERM and SIGHUP (a dropped SSH session) stop the run like Ctrl-C: after the current
    # batch, with the true counts in the result and in the audit log.
    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, lambda *_: cancel.set()) for signum in stops}
    interrupted = False
    worker.start()
    try:
        # Wait on an Event, not Thread.join: a join interrupted by Ctrl-C can make is_alive()
        # report a live thread as finished (CPython 3.11).
        while not finished.is_set():
            try:
                finished.wait(0.1)
            except KeyboardInterrupt:
                interrupted = True
                cancel.set()
                print("\ncancelling after the current batch...", file=sys.stderr, flush=True)
        worker.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if show is not None:
        _say("", sys.stderr)
    return box[0], interrupted or cancel.is_set()


def _say(text: str, stream: Any) -> None:
    """Print, unless the terminal is gone (SIGHUP): the audit log already has the result."""
    with contextlib.suppress(OSError):
        print(text, file=stream, flush=True)


def _emit(args: argparse.Namespace, plan: ActionPlan | None, result: ActionResult | None,
          final: str) -> None:
    if args.json:
        doc: dict[str, Any] = {"plan": plan_document(plan) if plan else None,
                               "result": result_document(result) if result else None,
                               "dry_run": bool(getattr(args, "dry_run", False)),
                               "summary": final}
        _say(json.dumps(doc, ensure_ascii=True), sys.stdout)
        return
    if result is not None:
        for line in (*(f"not deleted: {why}" for why in result.left),
                     *(f"note: {note}" for note in result.notes)):
            _say(line, sys.stderr)
        if result.audit_error:
            _say(f"cachetop {result.action}: {result.audit_error}", sys.stderr)
    _say(final, sys.stdout)


def _act(command: str, args: argparse.Namespace) -> int:
    target, guard, prefix = _target(args)
    plan = _plan(command, args, target, guard, prefix)
    if not args.json:
        out = sys.stdout if args.dry_run else sys.stderr
        print("\n".join(plan_lines(plan)), file=out, flush=True)
    if plan.refusal:
        result = refuse(plan, plan.refusal)
        _emit(args, plan, result, result.summary)
        return 2
    if args.dry_run:
        _emit(args, plan, None, dry_run_line(plan))
        return 1 if plan.nothing else 0
    if plan.nothing:  # nothing to act on: say so, and fail like `rm` of a missing file
        _emit(args, plan, None, f"{plan.action} {target_label(plan.target)} {plan.subject}: "
              f"{plan.nothing}")
        return 1
    confirmation, reason = _confirmation(plan, args)
    if confirmation is None:
        result = refuse(plan, reason or "not confirmed")
        _emit(args, plan, result, result.summary)
        return 2
    result, interrupted = _run(plan, confirmation)
    _emit(args, plan, result, result.summary)
    if result.status == "cancelled" or (interrupted and result.status == "partial"):
        return 130
    if result.audit_error:
        return max(EXIT[result.status], 1)
    return EXIT[result.status]


def _tags(args: argparse.Namespace) -> int:
    target, _, prefix = _target(args)
    found = list_tags(target, dialect=args.dialect, prefix=prefix, db=args.db)
    rows: list[dict[str, Any]] = [{"tag": plain(t.tag), "size": t.size, "live": t.live,
                                   "live_exact": t.live_exact, "index": plain(t.index_key),
                                   "detail": plain(t.detail)} for t in found]
    if args.json:
        print(json.dumps({"target": target.name, "tags": rows}, ensure_ascii=True))
        return 0
    for row in rows:
        size = "-" if row["size"] is None else row["size"]
        live = "-" if row["live"] is None else f"{'' if row['live_exact'] else '~'}{row['live']}"
        print(f"{row['tag']}\t{size}\t{live}\t{row['index']}\t{row['detail']}".rstrip())
    print(f"tags {plain(target.name)}: {len(rows)} tags (columns: tag, keys the index lists, "
          "live keys (~ sampled), index key, detail)", file=sys.stderr)
    return 0


def main(argv: Sequence[str]) -> int:
    command, rest = argv[0], list(argv[1:])
    parser = _parser(command)
    args = parser.parse_args(rest)
    try:
        return _tags(args) if command == "tags" else _act(command, args)
    except ActionArgumentError as exc:
        print(f"cachetop {command}: {exc}", file=sys.stderr)
        return 2
    except _CliError as exc:
        print(f"cachetop {command}: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:  # may repeat a typed target name or --config path: masked
        print(f"cachetop {command}: {parser.mask(str(exc))}", file=sys.stderr)
        return 2
    except ActionError as exc:
        print(f"cachetop {command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ncachetop {command}: interrupted before anything was written", file=sys.stderr)
        return 130
