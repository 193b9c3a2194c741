"""Provides run_prometheus(): `cachetop --prometheus URL [--match SELECTOR]`, the usual fronts
(the TUI, --once, --batch, --json) over a Prometheus-compatible API instead of polling."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import ssl
import sys
from typing import Any

from cachetop.agent.main import read_token
from cachetop.cli_parser import ArgumentParser
from cachetop.config import load_config
from cachetop.errors import ConfigError
from cachetop.prometheus.api import PrometheusApi
from cachetop.prometheus.source import PrometheusSource

TOKEN_ENV = "CACHETOP_PROMETHEUS_TOKEN"


def run_prometheus(args: argparse.Namespace, parser: ArgumentParser) -> int:
    if args.targets or args.connect:
        parser.error("--prometheus reads the fleet from Prometheus: give no targets or "
                     "--connect")
    env = dict(os.environ)
    try:
        token = (read_token(args.bearer_token_file).decode("ascii") if args.bearer_token_file
                 else env.get(TOKEN_ENV) or None)
        tls = ssl.create_default_context(cafile=args.tls_ca) if args.tls_ca else None
        api = PrometheusApi(args.prometheus, token=token, tls=tls)
        config = load_config(None, env)
    except ValueError as exc:
        parser.error(f"--prometheus: {exc}")
    except ConfigError as exc:
        print(f"cachetop: {parser.mask(str(exc))}", file=sys.stderr)
        return 2
    except (OSError, ssl.SSLError) as exc:
        print(f"cachetop: --tls-ca {args.tls_ca}: {exc}", file=sys.stderr)
        return 2
    interval = args.interval if args.interval is not None else config.interval_s
    if interval <= 0:
        parser.error("--interval must be a positive number of seconds")
    source = PrometheusSource(api, selector=args.match or "", interval_s=interval,
                              mode="once" if args.once else "live")
    # Actions need a direct connection with the targets' credentials: read-only here.
    config = dataclasses.replace(config, read_only=True, interval_s=interval,
                                 caches_limit=args.caches_limit)
    # cachetop.cli by name: it reaches the TUI, outside the strictly typed headless paths.
    cli: Any = importlib.import_module("cachetop.cli.dashboard")
    if args.once:
        code = int(cli.run_once(config, args.json, engine=source))
        notice = source.notice()
        if notice:
            print(f"cachetop: {parser.mask(notice)}", file=sys.stderr)
            return 1
        return code
    if args.batch or args.json:
        return int(cli.run_batch(config, args.json, args.count, engine=source))
    return int(cli.run_tui(config, source))
