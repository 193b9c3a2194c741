"""Provides run_connected(): `cachetop --connect HOST:PORT`, the usual fronts (the TUI,
--once, --batch, --json) over a remote agent's stream instead of a local engine."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import ssl
import sys
from typing import Any

from cachetop.agent.main import read_token
from cachetop.agent.remote import ConnectError, RemoteClient
from cachetop.cli_parser import ArgumentParser
from cachetop.config import load_config
from cachetop.errors import ConfigError


def run_connected(args: argparse.Namespace, parser: ArgumentParser) -> int:
    if args.targets or args.config:
        parser.error("--connect shows the agent's targets: give no targets or --config")
    try:
        token = (read_token(args.bearer_token_file).decode("ascii")
                 if args.bearer_token_file else None)
        tls = None
        if args.tls_ca:
            tls = ssl.create_default_context(cafile=args.tls_ca)
        mode = "once" if args.once else "live"
        client = RemoteClient(args.connect, token=token, tls=tls, mode=mode,
                              caches_limit=args.caches_limit)
        client.connect()
    except ValueError as exc:
        parser.error(f"--connect: {exc}")
    except (ConfigError, ConnectError) as exc:
        print(f"cachetop: {parser.mask(str(exc))}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except (OSError, ssl.SSLError) as exc:
        print(f"cachetop: --tls-ca {args.tls_ca}: {exc}", file=sys.stderr)
        return 2
    # Actions need the targets' credentials, which stay with the agent: read-only here.
    config = dataclasses.replace(load_config(None, dict(os.environ)), read_only=True,
                                 caches_limit=args.caches_limit)
    # cachetop.cli by name: it reaches the TUI, outside the strictly typed headless paths.
    cli: Any = importlib.import_module("cachetop.cli.dashboard")
    if args.once:
        return int(cli.run_once(config, args.json, engine=client))
    if args.batch or args.json:
        return int(cli.run_batch(config, args.json, args.count, engine=client))
    return int(cli.run_tui(config, client))
