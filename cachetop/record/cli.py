"""Provides `cachetop replay`: a recording's snapshots as JSON (`--at`, `--from/--to`) or in
the dashboard with a time cursor. (`cachetop record` and `--record` are in cachetop.cli.)"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence

from cachetop.cli_parser import ArgumentParser
from cachetop.errors import RecordingError
from cachetop.record.store import Recording
from cachetop.record.times import parse_time


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="cachetop replay",
                       description="Replay a recording made with --record or cachetop record: "
                                   "the dashboard with a time cursor, or JSON.")
    p.add_argument("file", metavar="FILE", help="the recording")
    p.add_argument("--at", metavar="TIME", help="the snapshot at TIME (ISO, 23:40:05 UTC, -5m, "
                                                "start, end)")
    p.add_argument("--from", dest="start", metavar="TIME", help="with --to: every snapshot")
    p.add_argument("--to", dest="end", metavar="TIME", help="end of --from's range")
    p.add_argument("--json", action="store_true", help="print JSON documents, one per line")
    return p


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if args.at and (args.start or args.end):
        parser.error("give --at or --from/--to, not both")
    if (args.at or args.start or args.end) and not args.json:
        parser.error("--at and --from/--to print JSON: add --json (without, the dashboard "
                     "replays the recording)")
    try:
        recording = Recording(args.file)
    except RecordingError as exc:
        print(f"cachetop replay: {exc}", file=sys.stderr)
        return 2
    try:
        span = recording.span()
        if span is None:
            raise RecordingError(f"{args.file}: the recording is empty")
        if not args.json:
            # The TUI is imported by name: this module stays headless (and strictly typed).
            replay = importlib.import_module("cachetop.tui.replay")
            return int(replay.run_replay(recording))
        if args.at:
            docs = [recording.at(parse_time(args.at, span))]
        else:
            start = parse_time(args.start, span) if args.start else span[0]
            end = parse_time(args.end, span) if args.end else span[1]
            if end < start:
                parser.error("--to is before --from")
            docs = list(recording.between(start, end))
        for doc in docs:
            print(json.dumps(doc, ensure_ascii=True), flush=True)
    except (RecordingError, ValueError) as exc:
        print(f"cachetop replay: {exc}", file=sys.stderr)
        return 2
    finally:
        recording.close()
    return 0
