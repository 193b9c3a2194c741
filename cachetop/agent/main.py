"""Provides main(): `cachetop agent`, the engine headless and long running behind one port.

It polls its targets (all of a config's, or its `--shard I/N` of them) on the engine's event
loop thread and serves what it has: `/metrics` for Prometheus and the snapshot stream for
`cachetop --connect`. It stops on SIGTERM, SIGINT or SIGHUP, closing every connection.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cachetop.agent.exposition import FleetExposition, monitor_rows
from cachetop.agent.server import AgentServer, is_loopback, parse_listen, tls_context
from cachetop.agent.shard import Shard, parse_shard, shard_targets
from cachetop.agent.stream import StreamHub
from cachetop.cli_parser import ArgumentParser, add_token_file, config_file
from cachetop.collectors.registry import make_collectors
from cachetop.config import Config, read_regular_file
from cachetop.engine.process import raise_nofile
from cachetop.errors import ConfigError
from cachetop.gc_tuning import settle_gc
from cachetop.malloc_tuning import limit_malloc_arenas
from cachetop.monitor import Monitor

log = logging.getLogger("cachetop.agent")

DEFAULT_LISTEN = "127.0.0.1:9470"
MAX_TOKEN_BYTES = 4096
MIN_TOKEN_CHARS = 16


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="cachetop agent", allow_abbrev=False,  # `--token=x` is no `--token-file x`
        description="Poll a fleet (or one shard of it) and serve GET /metrics (Prometheus) and "
                    "the snapshot stream (cachetop --connect) on one port.")
    p.add_argument("targets", nargs="*", metavar="TARGET", help="target URLs")
    p.add_argument("--config", type=config_file, metavar="FILE", help="TOML config file")
    p.add_argument("--interval", type=float, metavar="S", help="seconds between polls")
    p.add_argument("--timeout", type=float, metavar="S", help="per-target poll timeout")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"where to serve (default {DEFAULT_LISTEN}; port 0 picks a free one)")
    add_token_file(p, "a file holding the bearer token clients must send (required to "
                      "listen on a non-loopback address)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key")
    p.add_argument("--shard", metavar="I/N", help="poll only share I of N of the targets "
                   "(Prometheus hashmod of the target name)")
    p.add_argument("--allow-actions", action="store_true",
                   help="let --connect clients run actions here, with this agent's credentials")
    p.add_argument("--log", metavar="FILE", help="write logs here instead of stderr")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def read_token(path: str) -> bytes:
    """The bearer token in `path` (surrounding whitespace dropped); ConfigError otherwise."""
    try:
        raw = read_regular_file(Path(path), MAX_TOKEN_BYTES)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"--token-file {path}: {reason}") from None
    token = raw.strip()
    if len(token) < MIN_TOKEN_CHARS or not all(0x21 <= b <= 0x7E for b in token):
        raise ConfigError(f"--token-file {path}: the token must be at least {MIN_TOKEN_CHARS} "
                          "printable characters without spaces")
    return token


class Agent:
    """A Monitor polling on its own thread, an exposition over it, and the HTTP server."""

    def __init__(self, config: Config, host: str, port: int, *, token: bytes | None,
                 tls: ssl.SSLContext | None, shard: Shard | None,
                 allow_actions: bool = False) -> None:
        self.config = config
        self.targets = shard_targets(config.targets, shard)
        self.shard = shard
        self.allow_actions = allow_actions
        self.monitor = Monitor(make_collectors(self.targets), config.interval_s,
                               history_s=config.history_s, thresholds=config.thresholds,
                               alerts=config.alerts)  # events and alert rules, headless
        self.exposition = FleetExposition(lambda: monitor_rows(self.monitor),
                                          lambda: self.monitor.version,
                                          max_age_s=min(config.interval_s, 1.0))
        self.hub = StreamHub(self.monitor, self.targets, allow_actions=allow_actions)
        self.server = AgentServer(host, port, self.exposition, token=token, tls=tls,
                                  stream=self.hub.serve)

    def start(self) -> None:
        self.monitor.start()

    def serve(self) -> None:
        self.server.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        self.hub.stop()
        self.server.shutdown()
        self.server.server_close()
        self.monitor.stop()


def _options(args: argparse.Namespace, p: ArgumentParser) -> tuple[
        str, int, bytes | None, ssl.SSLContext | None, Shard | None]:
    try:
        host, port = parse_listen(args.listen)
        shard = parse_shard(args.shard) if args.shard else None
    except ValueError as exc:
        p.error(f"--listen/--shard: {exc}")
    token = read_token(args.token_file) if args.token_file else None
    if token is None and not is_loopback(host):
        raise ConfigError(f"--listen {host}: a non-loopback address needs --token-file (a "
                          "bearer token every client must send)")
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    tls = None
    if args.tls_cert:
        try:
            tls = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--tls-cert/--tls-key: {exc}") from None
    return host, port, token, tls, shard


def main(argv: Sequence[str]) -> int:
    """`argv` starts after the word `agent`."""
    limit_malloc_arenas()  # the agent polls in its own process: before any poll thread exists
    # cachetop.cli, imported by name: it reaches the TUI, which is outside the strictly typed
    # headless paths this module belongs to.
    cli: Any = importlib.import_module("cachetop.cli.dashboard")
    p = build_parser()
    args = p.parse_args(argv)
    args.read_only, args.caches_limit = False, None  # what cli.load() reads besides ours
    cli._setup_logging(args)
    try:
        host, port, token, tls, shard = _options(args, p)
        config: Config = cli.load(args)
    except ConfigError as exc:
        print(f"cachetop agent: {p.mask(str(exc))}", file=sys.stderr)
        return 2
    warning = raise_nofile(len(config.targets))
    if warning:
        print(f"cachetop agent: warning: {warning}", file=sys.stderr)
    try:
        agent = Agent(config, host, port, token=token, tls=tls, shard=shard,
                      allow_actions=args.allow_actions)
    except OSError as exc:
        print(f"cachetop agent: cannot listen on {args.listen}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            agent.hub.stop()
            threading.Thread(target=agent.server.shutdown, daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    scheme = "https" if tls is not None else "http"
    shown = f"[{host}]" if ":" in host else host
    share = f", shard {shard}" if shard is not None else ""
    print(f"cachetop agent: serving {scheme}://{shown}:{agent.server.port}/metrics "
          f"({len(agent.targets)} of {len(config.targets)} targets{share})",
          file=sys.stderr, flush=True)
    settle_gc()  # the agent polls like the engine: same allocation pattern
    agent.start()
    try:
        agent.serve()
    finally:
        agent.exposition.close()
        agent.server.server_close()
        agent.monitor.stop()
    return 0
