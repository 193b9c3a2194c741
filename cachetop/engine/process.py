"""Provides the engine process: `python -m cachetop.engine --fd N` polls the fleet on its main
thread's event loop and serves snapshots over the socket it was given.

The front (TUI, --once/--batch) starts it, sends the targets (credentials included: the socket
is private to the two processes) and reads snapshots; the engine never opens a terminal,
ignores Ctrl-C (the front stops it), and exits when the front goes away: the parent-death
signal, a parent that is already gone, or the socket closing, whichever comes first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

from cachetop.cli_parser import ArgumentParser
from cachetop.collectors.netloop import PollLoop
from cachetop.collectors.poller import poll_all
from cachetop.collectors.registry import make_collectors
from cachetop.collectors.secret import Secret
from cachetop.config import Thresholds
from cachetop.engine.protocol import (
    CODECS,
    PROTOCOL,
    FrameReader,
    ProtocolError,
    figures_to_wire,
    frame,
    target_from_wire,
)
from cachetop.engine.publish import Publisher
from cachetop.events.rules import rule_from_wire
from cachetop.fleet import FleetSnapshot
from cachetop.gc_tuning import settle_gc
from cachetop.malloc_tuning import limit_malloc_arenas
from cachetop.monitor import Monitor
from cachetop.parent_death import die_with_parent

log = logging.getLogger("cachetop.engine")

FLUSH_S = 0.1  # snapshots leave at most this often; a slow reader gets the latest, not a queue
FD_RESERVE = 64  # descriptors kept for the channel, logs, name resolution


def raise_nofile(targets: int) -> str | None:
    """Raise the soft RLIMIT_NOFILE toward the hard limit; a warning when the fleet needs more
    descriptors than allowed (one socket per target, plus a few)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = targets + FD_RESERVE
    if soft < wanted or soft < hard:
        new = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    if soft < wanted:
        return (f"the fleet has {targets} targets but this process may open only {soft} "
                f"descriptors (ulimit -n, hard limit {hard}): about {max(0, soft - FD_RESERVE)} "
                "targets can be polled; raise the limit (ulimit -Hn, limits.conf)")
    return None


class Channel:
    """The engine's end of the socket: commands in, snapshots out, never blocking the loop."""

    def __init__(self, sock: socket.socket, loop: PollLoop, codec: str = "json",
                 reader: FrameReader | None = None) -> None:
        self.sock = sock
        self.loop = loop
        self.codec = codec
        sock.setblocking(False)
        self._reader = reader if reader is not None else FrameReader(codec)
        self._out = bytearray()
        self.closed = False
        self.on_message: Any = None
        loop.add_reader(sock.fileno(), self._on_events)

    def send(self, message: Mapping[str, Any]) -> None:
        if self.closed:
            return
        self._out += frame(message, self.codec)
        self._write()

    @property
    def busy(self) -> bool:
        """Output still waiting: the reader has not caught up (latest-wins: skip a flush)."""
        return bool(self._out)

    def _write(self) -> None:
        try:
            while self._out:
                sent = self.sock.send(self._out, socket.MSG_NOSIGNAL)
                del self._out[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close()
            return
        self.loop.watch_writable(self.sock.fileno(), bool(self._out))

    def _on_events(self, events: int) -> None:
        if events & 0x004:  # EPOLLOUT
            self._write()
        if not events & (0x001 | 0x008 | 0x010):  # EPOLLIN, EPOLLERR, EPOLLHUP
            return
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close()
            return
        try:
            for message in self._reader.feed(data):
                self.on_message(message)
        except ProtocolError:
            log.error("the front sent a corrupt frame; stopping")
            self._close()

    def take_pending(self) -> None:
        """Handle what arrived in the same read as the config (a `watch` sent right after
        start): the reader still holds it, and no socket event will say it is there."""
        for message in self._reader.feed(b""):
            self.on_message(message)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.loop.stop()  # the front is gone: so is the engine's reason to poll


class Engine:
    """A Monitor on the loop, publishing to one channel: deltas every FLUSH_S, history and
    detail for the targets the front watches."""

    def __init__(self, config: Mapping[str, Any], channel: Channel, loop: PollLoop) -> None:
        self.channel, self.loop = channel, loop
        self.targets = [target_from_wire(t) for t in config["targets"]]
        self.interval_s = float(config["interval_s"])
        self.collectors = make_collectors(self.targets)
        limit = config.get("caches_limit")
        # An endpoint's caches past this many arrive as the busiest and one "N more" row
        # (a screen shows 100; 20,000 would cost the front seconds and the engine a tracker each).
        self.caches_limit: int | None = int(limit) if limit is not None else None
        thresholds = config.get("thresholds")
        # `--batch --json`: the front asks for each document and only prints it, so the figures
        # of every target are not also sent to it as deltas, and no chart history is kept
        # (bench/README.md: poll.py).
        self.documents = bool(config.get("documents"))
        self.monitor = Monitor(self.collectors, self.interval_s,
                               history_s=0.0 if self.documents else float(
                                   config.get("history_s", 600.0)), loop=loop,
                               caches_limit=self.caches_limit,
                               thresholds=Thresholds(**thresholds) if thresholds else None,
                               alerts=[rule_from_wire(r) for r in config.get("alerts") or ()])
        self._paused = False
        self.publisher = Publisher(self.monitor, self.caches_limit)
        self._doc_event = 0
        channel.on_message = self.on_command

    def hello(self, warning: str | None) -> None:
        self.channel.send({"t": "hello", "v": PROTOCOL, "pid": os.getpid(),
                           "interval_s": self.interval_s, "warning": warning})

    def start(self) -> None:
        self.monitor.start()
        self._tick()

    def on_command(self, message: Mapping[str, Any]) -> None:
        kind = message.get("t")
        if kind == "interval":
            self.interval_s = float(message["s"])
            self.monitor.set_interval(self.interval_s)
        elif kind == "pause":
            self._paused = bool(message["on"])
            self.monitor.set_paused(self._paused)
        elif kind == "poll_now":
            self.monitor.poll_now()
        elif kind == "clients":
            self.monitor.watch_clients(str(message["name"]), bool(message["on"]))
        elif kind == "credentials":  # the private channel: it carries the password
            password = message.get("password")
            self.monitor.set_credentials(
                str(message["name"]), message.get("username"),
                Secret(password["secret"]) if isinstance(password, dict) else None)
        elif kind == "watch":
            self.publisher.watch(str(message["name"]), bool(message["on"]))
        elif kind == "doc":
            self._send_document(message)
        elif kind == "stop":
            self.loop.stop()

    def _send_document(self, message: Mapping[str, Any]) -> None:
        """The JSON document of metrics.md, as `--batch --json` prints it, with the events
        since the last one; and how many targets are not up (the front's exit status)."""
        from cachetop.snapshot_json import snapshot_document

        limit = message.get("caches_limit")
        snap = FleetSnapshot.build([self.publisher.cut(f) for f in self.monitor.all_figures()],
                                   self.interval_s, time.time())
        events = self.monitor.events_since(self._doc_event)
        if events:
            self._doc_event = events[-1].seq
        doc = snapshot_document(snap, None if limit is None else int(limit), events)
        not_up, total = snap.not_up()
        self.channel.send({"t": "doc", "id": message.get("id"),
                           "json": json.dumps(doc, ensure_ascii=True),
                           "not_up": not_up, "total": total})

    def _tick(self) -> None:
        self.loop.call_later(FLUSH_S, self._tick)
        if not self.channel.busy and not self.documents:
            self.publisher.tick(self.channel.send, self._paused)

    def stop(self) -> None:
        self.monitor.stop()


def run_once(engine: Engine) -> None:
    """--once: every target polled twice, one interval apart, then one snapshot and `done`."""
    started = time.monotonic()
    for result in poll_all(engine.collectors, engine.interval_s):
        engine.monitor.apply(result)
    time.sleep(max(0.0, started + engine.interval_s - time.monotonic()))
    for result in poll_all(engine.collectors, engine.interval_s):
        engine.monitor.apply(result)
    version, changed = engine.monitor.changes_since(0)
    engine.channel.send({"t": "snap", "v": version, "at": time.time(),
                         "iv": engine.interval_s, "paused": False,
                         "ch": [[i, figures_to_wire(f)] for i, f in changed],
                         "ev": engine.publisher.new_events()})
    engine.channel.send({"t": "done"})


def _read_config(sock: socket.socket, codec: str) -> tuple[dict[str, Any], FrameReader]:
    """The config frame, and the reader holding whatever followed it in the same read."""
    reader = FrameReader(codec)
    sock.settimeout(30.0)
    while True:
        data = sock.recv(65536)
        if not data:
            raise SystemExit(0)  # the front went away before configuring us
        for message in reader.feed(data):
            if message.get("t") == "config":
                return message, reader
            raise ProtocolError(f"expected config, got {message.get('t')!r}")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="cachetop-engine")
    parser.add_argument("--fd", type=int, required=True, help="the channel socket's descriptor")
    parser.add_argument("--parent", type=int, default=0, help="the front's pid")
    parser.add_argument("--log", default=None, help="log file")
    parser.add_argument("--codec", choices=CODECS, default="json",
                        help="marshal only from a front that started this engine itself")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the front's to handle
    die_with_parent()
    if args.parent and os.getppid() != args.parent:
        return 0  # the front died before the parent-death signal was armed
    limit_malloc_arenas()
    logging.basicConfig(filename=args.log, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s engine: %(message)s")
    sock = socket.socket(fileno=args.fd)
    try:
        config, reader = _read_config(sock, args.codec)
    except (ProtocolError, OSError) as exc:
        log.error("no configuration from the front: %s", exc)
        return 2
    warning = raise_nofile(len(config["targets"]))
    loop = PollLoop()
    channel = Channel(sock, loop, args.codec, reader)
    engine = Engine(config, channel, loop)
    settle_gc()  # after the collectors and trackers are made: they live as long as the engine
    engine.hello(warning)
    channel.take_pending()
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        loop.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    profile_to = os.environ.get("CACHETOP_ENGINE_PROFILE")  # bench/README.md: where CPU goes
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        if config.get("mode") == "once":
            run_once(engine)
            loop.run_until(lambda: not channel.busy or channel.closed)
        else:
            engine.start()
            loop.run_forever()
    finally:
        if profiler is not None and profile_to:
            profiler.disable()
            profiler.dump_stats(profile_to)
        engine.stop()
        loop.close()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
