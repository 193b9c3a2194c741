"""Provides RedisKeyScan: a paced, cancellable, resumable key analysis of one Redis db.

Full mode walks the whole keyspace with SCAN (bounded COUNT); sampled mode reads SCAN pages
that start at cursors spread over the hash table, one at a random place in each of as many
equal stretches of the walk as pages (Redis walks buckets in reversed-bit order, so the cursor
of walk position p is p with its bits reversed). Each page's keys are
described in batches by redis_script. One command is in flight at a time, so the server
interleaves other clients between every page and every batch; the reply of one batch is
counted while the server works on the next. Between commands a PING probe feeds the Pacer
(actions/pacing.py), which slows the analysis when the server answers slowly, as a flush does.

`run()` returns when the analysis ends, is cancelled or fails; its state (cursor, pending
batches, totals) is kept, so calling `run()` again resumes where it stopped, on a new
connection, unless the server restarted meanwhile (its run_id changed: then it starts over).
"""

# mypy: disallow-untyped-calls=False
# (redis-py's connection methods carry no type hints)
from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from cachetop.actions.connect import redis_client
from cachetop.actions.pacing import Pacer
from cachetop.actions.plan import ActionError
from cachetop.actions.redis_preview import scan_fraction
from cachetop.actions.redis_probe import BASELINE_PROBES, PROBE_EVERY_S, ping_s
from cachetop.actions.redis_wire import Wire
from cachetop.actions.safety import describe_error, read_state
from cachetop.collectors.base import Target
from cachetop.keys.keysizes import sizes_from_keysizes
from cachetop.keys.model import HotKey, KeysReport, Mode, SizeDistribution, Status
from cachetop.keys.redis_hot import LFU_POLICIES, has_hotkeys, hotkeys_session, lfu_reason
from cachetop.keys.redis_script import (
    describe_pipelined,
    is_script_refusal,
    page_args,
    page_from_reply,
    script_for,
)
from cachetop.keys.tally import KeyTally, Row

TOUCHING_POLICIES = frozenset({"allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-lfu"})
DEFAULT_SAMPLE = 20_000
ProgressFn = Callable[[KeysReport], None]


@dataclass(frozen=True, slots=True)
class KeyScanOptions:
    mode: Mode = "sampled"
    sample: int = DEFAULT_SAMPLE  # keys to read in sampled mode
    delimiter: bytes = b":"
    depth: int = 1
    top: int = 10
    db: int | None = None
    scan_count: int = 50  # SCAN COUNT of a page: ~0.2 ms of server time, described
    rate_keys_per_s: float | None = None  # None: as fast as the probes allow
    hot_window_s: float = 5.0  # a HOTKEYS session cachetop starts lasts this long
    seed: int | None = None  # sampled mode's phase; None: random


class _Pipe(Wire):
    """Wire with the send and the read apart: one command in flight while a reply is counted.
    `client` (the same single connection) serves one-off commands when nothing is in flight."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.client = client


@dataclass(frozen=True, slots=True)
class _Server:
    """What the analysis learned about the server when it started."""

    run_id: str
    version: tuple[int, ...]
    policy: str
    cluster: bool
    keys_total: int
    sizes: SizeDistribution | None


class RedisKeyScan:
    """One analysis; lives in one worker thread (reports are what leave it)."""

    def __init__(self, target: Target, options: KeyScanOptions | None = None) -> None:
        self.target = target
        self.options = options or KeyScanOptions()
        self.db = self.target.db if self.options.db is None else self.options.db
        self.notes: list[str] = []
        self._reset()

    def _reset(self) -> None:
        """A fresh start (also after the server restarted mid-analysis)."""
        self.mode: Mode = self.options.mode
        self.tally = KeyTally(delimiter=self.options.delimiter, depth=self.options.depth,
                              top=self.options.top)  # memory: set in _capabilities
        self.server: _Server | None = None
        self.cursor = 0
        self.scan_done = False
        self.positions: list[int] = []
        self.page = 0
        self.elapsed_s = 0.0
        self.status: Status = "running"
        self.hot: tuple[HotKey, ...] | None = None
        self.hot_source: str | None = None
        self.hot_unavailable: str | None = None
        self.use_script = True
        self.memory = self.counts = self.freq = False
        self.sha = ""
        self.slowdowns = self.unreadable = 0
        self.error: str | None = None
        self.pacer = Pacer(self.options.rate_keys_per_s)
        self._probed_at = 0.0

    # -- running ------------------------------------------------------------------------------

    def run(self, cancel: threading.Event | None = None, progress: ProgressFn | None = None,
            progress_every_s: float = 0.5) -> KeysReport:
        """Analyse until done, cancelled or failed; never raises for server trouble (the report
        says it). Call again to resume."""
        cancel = cancel or threading.Event()
        started = time.monotonic()
        self.error = None
        try:
            client = redis_client(self.target, self.db)
        except ActionError as exc:
            return self._stopped("failed", str(exc), started)
        try:
            self._prepare(client, cancel)
            status = self._loop(client, cancel, progress, progress_every_s, started)
            return self._stopped(status, None, started)
        except (redis.RedisError, OSError, ValueError) as exc:
            return self._stopped("failed", f"{self.target.name}: {describe_error(exc)}", started)
        finally:
            client.close()

    def report(self, elapsed_s: float | None = None) -> KeysReport:
        """The figures so far."""
        server = self.server
        return self.tally.report(
            target=self.target.name, kind="redis", db=self.db, mode=self.mode,
            status=self.status, keys_total=server.keys_total if server else 0,
            elapsed_s=self.elapsed_s if elapsed_s is None else elapsed_s,
            progress=self.progress(), hot=self.hot, hot_unavailable=self.hot_unavailable,
            hot_source=self.hot_source, sizes=server.sizes if server else None,
            notes=[*self.notes, *self._tally_notes()], error=self.error)

    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        if self.mode == "sampled":
            return self.page / len(self.positions) if self.positions else 0.0
        total = self.server.keys_total if self.server else 0
        if self.scan_done:
            return 1.0
        return scan_fraction(self.cursor, max(1, (max(total, 2) - 1).bit_length()))

    def _stopped(self, status: Status, error: str | None, started: float) -> KeysReport:
        self.status, self.error = status, error
        self.elapsed_s += time.monotonic() - started
        return self.report()

    # -- the server ---------------------------------------------------------------------------

    def _prepare(self, client: redis.Redis, cancel: threading.Event) -> None:
        state = read_state(client)
        if state.loading:
            raise ActionError(f"{self.target.name} is loading its dataset; try again later")
        if self.server is not None:
            if state.run_id == self.server.run_id:
                self._connection_setup(client)
                return
            self.notes.append("the server restarted since the analysis began: started over")
            self._reset()
        info = client.info("memory")
        policy = str(info.get("maxmemory_policy", ""))
        keys_total = int(client.execute_command("DBSIZE"))
        (raw_sizes,) = Wire(client).call((b"INFO", b"keysizes"))  # raw: redis-py's parser
        sizes = None if isinstance(raw_sizes, redis.ResponseError) else sizes_from_keysizes(
            raw_sizes, self.db)                                   # mangles these lines
        self.server = _Server(state.run_id, state.version, policy, state.cluster, keys_total,
                              sizes)
        if self.mode == "sampled" and keys_total <= self.options.sample:
            self.mode = "full"
            self.notes.append(f"the db holds {keys_total} keys, no more than the sample of "
                              f"{self.options.sample}: every key was read")
        if self.mode == "sampled":
            self.positions = sample_cursors(keys_total, self.options.sample,
                                            self.options.scan_count, self.options.seed)
        self._capabilities(client, state.version, policy, state.cluster)
        self._connection_setup(client)
        self._hot_keys(client, cancel)

    def _capabilities(self, client: redis.Redis, version: tuple[int, ...], policy: str,
                      cluster: bool) -> None:
        self.memory = version >= (4,)
        self.tally.memory_read = self.memory
        if not self.memory:
            self.notes.append("memory not measured: MEMORY USAGE needs Redis 4")
        no_touch = self._no_touch(client)
        self.counts = no_touch or policy not in TOUCHING_POLICIES
        if not self.counts:
            self.notes.append(
                f"element counts not read: STRLEN, LLEN, ... would refresh every key's "
                f"{'LFU counter' if 'lfu' in policy else 'LRU clock'}, which maxmemory-policy "
                f"{policy} evicts by (Redis < 7.2 has no CLIENT NO-TOUCH)")
        elif not no_touch:
            self.notes.append("element counts (STRLEN, LLEN, ...) refresh each key's idle time "
                              "(OBJECT IDLETIME) on Redis < 7.2; maxmemory-policy "
                              f"{policy or 'unknown'} does not evict by it")
        self.use_script = not cluster
        if cluster:
            self.notes.append("cluster mode: keys described by pipelined commands (a script "
                              "cannot take keys of many slots), this node's keys only")

    def _no_touch(self, client: redis.Redis) -> bool:
        """CLIENT NO-TOUCH ON (Redis >= 7.2): this connection's commands leave LRU/LFU alone."""
        try:
            client.execute_command("CLIENT", "NO-TOUCH", "ON")
        except redis.ResponseError:
            return False
        return True

    def _connection_setup(self, client: redis.Redis) -> None:
        """Per connection (again on resume): NO-TOUCH, the script, the probe's baseline."""
        if self.counts and self.server is not None and self.server.version >= (7, 2):
            self._no_touch(client)
        if self.use_script and self.server is not None:
            try:
                self.sha = str(client.script_load(script_for(self.server.version)))
            except redis.ResponseError as exc:
                self._script_refused(exc)
        self.pacer = Pacer(self.options.rate_keys_per_s)
        self.pacer.set_baseline([ping_s(client) for _ in range(BASELINE_PROBES)])
        self._probed_at = time.monotonic()

    def _script_refused(self, exc: redis.ResponseError) -> None:
        self.use_script = False
        self.notes.append(f"scripts refused ({describe_error(exc)[:120]}): keys described by "
                          "pipelined commands, slower")

    def _hot_keys(self, client: redis.Redis, cancel: threading.Event) -> None:
        assert self.server is not None
        policy, top = self.server.policy, self.options.top
        if has_hotkeys(client):
            try:
                self.hot, self.hot_source = hotkeys_session(client, top,
                                                            self.options.hot_window_s, cancel)
                return
            except redis.ResponseError as exc:
                self.hot_unavailable = f"HOTKEYS failed: {describe_error(exc)}"
        self.freq = self.memory and policy in LFU_POLICIES
        if not self.freq and self.hot_unavailable is None:
            self.hot_unavailable = lfu_reason(policy, False) or "OBJECT FREQ needs Redis 4"

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self, client: redis.Redis, cancel: threading.Event, progress: ProgressFn | None,
              progress_every_s: float, started: float) -> Status:
        """One page in flight: its reply's cursor is read, the next page is sent, and only
        then are the reply's rows counted, while the server works on the next page."""
        pipe = _Pipe(client)
        in_flight: int | None = None
        reported_at = time.monotonic()
        while True:
            rows: list[Row] | None = None
            if in_flight is not None:
                page, in_flight = in_flight, None
                rows = self._absorb(pipe, page, pipe.receive())
            if cancel.is_set():
                self._count(rows)
                return "cancelled"
            cursor = self._next()
            if cursor is not None:
                if not self._pace(pipe, cancel):
                    self._count(rows)
                    return "cancelled"
                if self.use_script:
                    pipe.send(page_args(self.sha, cursor, self.options.scan_count,
                                        memory=self.memory, counts=self.counts, freq=self.freq))
                    in_flight = cursor
                else:
                    self._count(rows)
                    rows = self._pipelined_page(pipe, cursor)
            self._count(rows)
            now = time.monotonic()
            if progress is not None and now - reported_at >= progress_every_s:
                reported_at = now
                progress(self.report(self.elapsed_s + now - started))
            if cursor is None and in_flight is None:
                self.status = "done"
                return "done"

    def _next(self) -> int | None:
        """The cursor of the next page to read (None: no more)."""
        if self.mode == "full":
            return None if self.scan_done else self.cursor
        if self.page < len(self.positions):
            return self.positions[self.page]
        return None

    def _advance(self, next_cursor: int) -> None:
        if self.mode == "full":
            self.cursor = next_cursor
            self.scan_done = next_cursor == 0
        else:
            self.page += 1

    def _pace(self, pipe: _Pipe, cancel: threading.Event) -> bool:
        """Probe (nothing is in flight: the PING waits only behind other clients), then wait
        for the pacer's go for about a page of keys; False if cancelled while waiting."""
        now = time.monotonic()
        if now - self._probed_at >= PROBE_EVERY_S:
            self._probed_at = now
            if self.pacer.observe_probe(ping_s(pipe.client)):
                self.slowdowns = self.pacer.slowdowns
        return self.pacer.wait(self.options.scan_count, cancel)

    def _absorb(self, pipe: _Pipe, cursor: int, reply: Any) -> list[Row] | None:
        """Take a page script's reply. A script the server refuses switches the analysis to
        pipelined commands; a page whose script failed is read again that way."""
        if not isinstance(reply, redis.ResponseError):
            next_cursor, listed, rows = page_from_reply(reply)
            self._advance(next_cursor)
            self.tally.gone += listed - len(rows)
            return rows
        if str(reply).startswith("NOSCRIPT") and self.server is not None:
            self.sha = str(pipe.client.script_load(script_for(self.server.version)))
            return self._pipelined_page(pipe, cursor)
        if is_script_refusal(reply):
            self._script_refused(reply)
        else:
            self.notes.append(f"a page failed in the script ({describe_error(reply)[:120]}): "
                              "read again with pipelined commands")
        return self._pipelined_page(pipe, cursor)

    def _pipelined_page(self, pipe: _Pipe, cursor: int) -> list[Row]:
        (page,) = pipe.call((b"SCAN", b"%d" % cursor, b"COUNT", b"%d" % self.options.scan_count))
        if isinstance(page, redis.ResponseError):
            raise page
        raw_cursor, keys = page
        rows, unreadable = describe_pipelined(pipe.call, list(keys), memory=self.memory,
                                              counts=self.counts, freq=self.freq)
        self._advance(int(raw_cursor))
        self.unreadable += unreadable
        self.tally.gone += len(keys) - len(rows) - unreadable
        return rows

    def _count(self, rows: list[Row] | None) -> None:
        if rows is not None:
            self.tally.add(rows)
            self.pacer.record(len(rows))

    def _tally_notes(self) -> list[str]:
        t, notes = self.tally, []
        server = self.server
        if self.mode == "sampled" and server is not None and t.keys:
            notes.append(f"sampled {t.keys} of {server.keys_total} keys from "
                         f"{self.page} SCAN pages spread over the hash table: figures are "
                         "estimates with 95 % margins; a kind of key held by fewer than "
                         f"~{math.ceil(3 * server.keys_total / t.keys)} keys may be missing "
                         "from the sample (--full reads every key)")
        if self.mode == "full":
            notes.append("one SCAN of every key: keys written or deleted while it runs may "
                         "be missed or counted (SCAN's guarantee)")
        if t.duplicates:
            notes.append(f"{t.duplicates} keys listed twice by SCAN were counted once")
        if t.gone:
            notes.append(f"{t.gone} keys were gone (expired or deleted) when read")
        if self.unreadable:
            notes.append(f"{self.unreadable} keys could not be read (refused by the ACL?)")
        if t.overflow_keys:
            notes.append(f"{t.overflow_keys} keys of prefixes past the first "
                         f"{t.max_prefixes} are in one '(more prefixes)' row")
        if self.slowdowns:
            notes.append(f"slowed down {self.slowdowns} times: the server answered probes "
                         "slowly (other clients were waiting)")
        return notes


def reverse_bits(value: int, bits: int) -> int:
    return int(format(value & ((1 << bits) - 1), f"0{bits}b")[::-1], 2) if bits else 0


def sample_cursors(keys_total: int, sample: int, scan_count: int,
                   seed: int | None = None) -> list[int]:
    """SCAN cursors of pages spread over the hash table's walk: the walk cut in as many equal
    strata as pages, one page at a random place in each (stratified: evenly spread, and two
    analyses draw independent samples).

    The table has about 2^bits buckets for `keys_total` keys (a bigger or smaller real table
    still gets evenly spread positions: the positions scale by a power of two)."""
    pages = max(1, math.ceil(sample / max(1, scan_count)))
    bits = max(1, (max(keys_total, 2) - 1).bit_length())
    draw = random.Random(seed).random
    size = 1 << bits
    return [reverse_bits(int((i + draw()) * size / pages) % size, bits) for i in range(pages)]
