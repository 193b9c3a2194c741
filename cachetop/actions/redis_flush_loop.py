"""Provides flush_node(): the pattern flush of one Redis node, SCAN and UNLINK overlapped.

Redis is the bottleneck of a pattern flush (SCAN visits every key of the db, UNLINK frees the
matching ones), so the loop keeps it busy: the next SCAN page is sent as soon as the previous
page's reply is read, and the UNLINK of keys already found runs while the client reads that
page. Two chains share one connection and alternate in the server's queue:

    scan:   SCAN -> reply -> SCAN -> reply ...            (the cursor comes from the last page)
    delete: UNLINK -> reply, progress -> INFO replication -> reply, role checked -> UNLINK ...

An UNLINK takes a full batch (the size below) of the keys found, or the last ones: the fewer
commands for the same keys, the less server time (each UNLINK also costs an INFO).

The delete chain keeps the safety rule of every write batch: an UNLINK is sent only after the
reply of an INFO replication the server ran *after* the previous UNLINK's reply was read and
reported (so a failover between two batches, or seen by the progress callback, stops the next
one). A failure or a cancel stops both chains, and the replies still in flight are read, so an
UNLINK that ran is counted; a connection lost with an UNLINK in flight is settled on a new
connection (settle_lost_write).

How big each command is (SCAN COUNT, keys per UNLINK) is the BatchSizer's call, fed by a
LatencyProbe on a second connection: what our commands make other clients wait. `--rate` and
the slow-down under other clients' load stay the Pacer's.
"""

# mypy: disallow-untyped-calls=False
# (redis-py's execute_command carries no type hints)
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import redis
from redis.crc import key_slot

from cachetop.actions.connect import redis_client
from cachetop.actions.pacing import BatchSizer, Pacer
from cachetop.actions.plan import FlushPatternSpec, RefusedError
from cachetop.actions.redis_preview import filter_type, scan_args
from cachetop.actions.redis_probe import LatencyProbe
from cachetop.actions.redis_wire import Wire
from cachetop.actions.runner import Tally
from cachetop.actions.safety import check_master, checked_state, verify_master
from cachetop.collectors.base import Target

_SCAN, _ROLE, _UNLINK = "scan", "role", "unlink"
START_SHARE = 1  # the first commands are the largest size (--count); probes shrink them

# Called with the keys of an UNLINK whose reply was lost with its connection, and the error.
SettleFn = Callable[[list[bytes], BaseException], None]


def per_slot(command: bytes, keys: list[bytes]) -> list[tuple[bytes, ...]]:
    """One `command` per hash slot of `keys`, keys in their order within each."""
    slots: dict[int, list[bytes]] = {}
    for key in keys:
        slots.setdefault(key_slot(key), []).append(key)
    return [(command, *group) for group in slots.values()]


def flush_node(target: Target, spec: FlushPatternSpec, tally: Tally, pacer: Pacer, *,
               instance_id: str, settle: SettleFn) -> None:
    """Delete the keys of `target` (one node, on connections of its own) matching `spec`,
    counting into `tally`; returns when the SCAN is complete (tally.complete) or on cancel,
    raises what stopped it (RefusedError: not the server previewed, `instance_id`, or no
    longer a master).
    """
    client = redis_client(target, spec.db)
    probe: LatencyProbe | None = None
    aux: redis.Redis | None = None
    try:
        state = checked_state(client, target, instance_id)
        native_type = state.version >= (6,)
        command = b"UNLINK" if state.version >= (4,) else b"DEL"
        sizer = BatchSizer(spec.scan_count // START_SHARE, spec.scan_count, spec.max_latency_s)
        probe = _start_probe(target, spec, sizer, pacer, tally)
        if spec.type_name and not native_type:
            aux = redis_client(target, spec.db)  # TYPE checks: the main connection is busy
        loop = _Loop(client, target, spec, tally, pacer, sizer, probe, command, native_type,
                     aux)
        loop.run(settle)
    finally:
        if probe is not None:
            probe.close()
        if aux is not None:
            aux.close()
        client.close()


def _start_probe(target: Target, spec: FlushPatternSpec, sizer: BatchSizer, pacer: Pacer,
                 tally: Tally) -> LatencyProbe | None:
    """The latency probe, its idle baseline taken now (before any write); None with a note
    when the server refuses it (an ACL without PING)."""
    probe_client = redis_client(target, spec.db)
    probe = LatencyProbe(probe_client)
    try:
        idle = probe.baseline()
    except (redis.RedisError, OSError) as exc:
        probe_client.close()
        tally.notes.append(f"no latency probe ({type(exc).__name__}): command sizes were not "
                           "adapted to other clients' waits")
        return None
    sizer.set_baseline(idle)
    pacer.set_baseline(idle)
    probe.start()
    return probe


class _Loop:
    """The two chains of flush_node on one connection; replies are read in the order sent."""

    def __init__(self, client: redis.Redis, target: Target, spec: FlushPatternSpec,
                 tally: Tally, pacer: Pacer, sizer: BatchSizer, probe: LatencyProbe | None,
                 command: bytes, native_type: bool, aux: redis.Redis | None) -> None:
        self.wire, self.target, self.spec, self.tally = Wire(client), target, spec, tally
        self.pacer, self.sizer, self.probe, self.aux = pacer, sizer, probe, aux
        self.command, self.native_type = command, native_type
        self.replid = check_master(client, target)
        self.expect: deque[str] = deque()  # the kinds of the replies in flight, in order
        self.cursor, self.scan_done = 0, False
        self.pending: list[bytes] = []  # found, not yet sent to UNLINK
        self.unlinking: list[bytes] | None = None  # the UNLINK in flight
        # On a cluster node the UNLINK of one chunk is one command per hash slot (a multi-key
        # command across slots is refused with CROSSSLOT), sent together: its parts' replies.
        self.parts_left, self.parts_deleted, self.parts_failed = 0, 0, False
        self.role_ok = True  # an INFO read since the last write says: still the master
        self.stopping = False
        self.failure: BaseException | None = None

    def run(self, settle: SettleFn) -> None:
        try:
            self._send()
            while self.expect:
                self._take(self.expect.popleft(), self.wire.receive())
                self._send()
        except (redis.ConnectionError, OSError) as exc:
            if self.unlinking is not None:
                settle(self.unlinking, exc)
            raise
        if self.failure is not None:
            raise self.failure
        if self.scan_done and not self.pending and not self.stopping:
            self.tally.complete = True

    def _send(self) -> None:
        """Send what each chain may send now."""
        if self.stopping or self.tally.cancel.is_set():
            self.stopping = True
            return
        size = self.sizer.size
        if _SCAN not in self.expect and not self.scan_done and len(self.pending) < 2 * size:
            self.wire.send(scan_args(self.cursor, self.spec.pattern, size,
                                     self.spec.type_name, self.native_type))
            self.expect.append(_SCAN)
        if self.unlinking is not None or _ROLE in self.expect:
            return
        if not self.role_ok:
            if self.pending or not self.scan_done:
                self.wire.send((b"INFO", b"replication"))
                self.expect.append(_ROLE)
            return
        batch = self.pacer.chunk_size(size)
        if len(self.pending) >= batch or (self.pending and self.scan_done):
            chunk = self.pending[:batch]
            if not self.pacer.wait(len(chunk), self.tally.cancel):
                self.stopping = True
                return
            del self.pending[:len(chunk)]
            self.tally.sent(len(chunk))
            commands = per_slot(self.command, chunk) if self.target.cluster_node else \
                [(self.command, *chunk)]
            self.unlinking, self.role_ok = chunk, False  # before the send: a cut in it settles
            self.parts_left, self.parts_deleted, self.parts_failed = len(commands), 0, False
            self.expect.extend([_UNLINK] * len(commands))
            self.wire.send(*commands)

    def _take(self, kind: str, reply: Any) -> None:
        """One reply. After a failure the rest are still read (an UNLINK in flight is counted)
        and the first failure is raised at the end."""
        if kind == _UNLINK:
            self.parts_left -= 1
            if isinstance(reply, redis.ResponseError):
                self.parts_failed = True
                self._fail(reply)
            else:
                self.parts_deleted += int(reply)
            if self.parts_left:
                return
        if isinstance(reply, redis.ResponseError) or (kind == _UNLINK and self.parts_failed):
            if kind == _UNLINK:
                # The server refused (a part of) it: only what the other parts deleted counts.
                self.unlinking = None
                self.tally.in_flight = 0
                self.tally.deleted += self.parts_deleted
            else:
                self._fail(reply)
            return
        if kind == _UNLINK:
            assert self.unlinking is not None
            sent, self.unlinking = len(self.unlinking), None
            self.tally.deleted_batch(sent, self.parts_deleted)
            self.pacer.record(sent)
            self._absorb_probes()
            self.tally.report()
        elif kind == _ROLE:
            try:
                self.replid = verify_master(reply, self.target, self.replid)
                self.role_ok = True
            except RefusedError as exc:  # no longer the master we started on
                self._fail(exc)
        else:
            raw_cursor, keys = reply
            self.cursor = int(raw_cursor)
            self.scan_done = self.cursor == 0
            if self.aux is not None:
                keys = filter_type(self.aux, list(keys), self.spec.type_name, False)
            self.tally.scanned += len(keys)
            self.pending.extend(keys)

    def _fail(self, exc: BaseException) -> None:
        self.stopping = True
        if self.failure is None:
            self.failure = exc

    def _absorb_probes(self) -> None:
        """Feed the probes measured since the last batch: to the sizer always, and to the
        pacer's slow-down once the sizer can shrink no more (the wait then is not our
        commands' size) or while it is slowed (to let it recover)."""
        if self.probe is None:
            return
        for rtt in self.probe.take():
            self.sizer.observe(rtt)
            if self.sizer.at_floor or self.pacer.current != self.pacer.configured:
                self.pacer.observe_probe(rtt)
        self.tally.slowdowns = self.pacer.slowdowns
        self.tally.limit_keys_per_s = self.pacer.current
