"""Provides memcached's per-prefix counters (`stats detail`) and the switch that turns them on.

memcached counts get/hit/set/del per key prefix (the key up to its first `-D` delimiter,
`:` by default) only while `stats detail on`: turning it on changes the server (every request
then updates a prefix table), so cachetop does it only when asked (the TUI asks; the CLI needs
--enable-detail), says so, and turns it off again when it stops, if it was off before.
DetailSwitch remembers that; restore_all() (atexit, and the CLI's and TUI's exits) undoes
every switch this process turned on.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cachetop.actions.connect import McConnection, check_reply
from cachetop.actions.plan import ActionError
from cachetop.actions.safety import describe_error
from cachetop.collectors.base import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PrefixCounters:
    gets: int
    hits: int
    sets: int
    deletes: int


@dataclass(frozen=True, slots=True)
class PrefixRates:
    """One prefix over an interval: hit ratio 0..1 (None: no gets) and rates per second."""

    hit_ratio: float | None
    gets_per_s: float
    hits_per_s: float
    sets_per_s: float


def parse_detail_dump(lines: Iterable[bytes]) -> dict[bytes, PrefixCounters]:
    """`PREFIX user get 10 hit 8 set 5 del 0` lines -> counters per prefix (bytes)."""
    out: dict[bytes, PrefixCounters] = {}
    for line in lines:
        parts = line.split(b" ")
        if len(parts) < 2 or parts[0] != b"PREFIX":
            continue
        fields = dict(zip(parts[2::2], parts[3::2], strict=False))
        try:
            out[parts[1]] = PrefixCounters(int(fields.get(b"get", 0)), int(fields.get(b"hit", 0)),
                                           int(fields.get(b"set", 0)), int(fields.get(b"del", 0)))
        except ValueError:
            continue
    return out


def interval_rates(before: Mapping[bytes, PrefixCounters], after: Mapping[bytes, PrefixCounters],
                   interval_s: float) -> dict[bytes, PrefixRates]:
    """Per-prefix figures between two dumps. A prefix new in `after` counts from zero (it had
    no request before); one whose counters went down (stats reset) is left out."""
    if interval_s <= 0:
        return {}
    out: dict[bytes, PrefixRates] = {}
    zero = PrefixCounters(0, 0, 0, 0)
    for prefix, now in after.items():
        then = before.get(prefix, zero)
        gets, hits, sets = now.gets - then.gets, now.hits - then.hits, now.sets - then.sets
        if gets < 0 or hits < 0 or sets < 0:
            continue
        out[prefix] = PrefixRates(hits / gets if gets > 0 else None, gets / interval_s,
                                  hits / interval_s, sets / interval_s)
    return out


def _read_until_end(conn: McConnection, command: bytes) -> list[bytes]:
    conn.send(command + b"\r\n")
    lines = []
    while (line := check_reply(conn.read_line())) != b"END":
        lines.append(line)
    return lines


def read_settings(conn: McConnection) -> tuple[bool, bytes]:
    """(detail on?, the prefix delimiter) from `stats settings`."""
    enabled, delimiter = False, b":"
    for line in _read_until_end(conn, b"stats settings"):
        parts = line.split(b" ", 2)
        if len(parts) == 3 and parts[1] == b"detail_enabled":
            enabled = parts[2] == b"yes"
        elif len(parts) == 3 and parts[1] == b"stat_key_prefix":
            delimiter = parts[2]
    return enabled, delimiter


def read_dump(conn: McConnection) -> dict[bytes, PrefixCounters]:
    return parse_detail_dump(_read_until_end(conn, b"stats detail dump"))


class DetailSwitch:
    """`stats detail` for one target: on when asked, back to how it was by restore()."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.was_on: bool | None = None
        self.turned_on = False

    def enable(self, conn: McConnection) -> bool:
        """Turn detail on unless it is; True if cachetop turned it on now."""
        enabled, _ = read_settings(conn)
        if self.was_on is None:
            self.was_on = enabled
        if enabled:
            return False
        if check_reply(conn.command(b"stats detail on")) != b"OK":
            raise ActionError(f"{self.target.name}: memcached did not turn stats detail on")
        self.turned_on = True
        _register(self)
        return True

    def restore(self) -> str | None:
        """Turn detail off if cachetop turned it on; an error line if that failed."""
        if not self.turned_on:
            return None
        try:
            with McConnection(self.target) as conn:
                conn.command(b"stats detail off")
        except (ActionError, OSError) as exc:
            message = (f"{self.target.name}: could not turn stats detail off again: "
                       f"{describe_error(exc)}")
            log.warning("%s", message)
            return message
        self.turned_on = False
        _unregister(self)
        return None


_LOCK = threading.Lock()
_ON: dict[int, DetailSwitch] = {}


def _register(switch: DetailSwitch) -> None:
    with _LOCK:
        _ON[id(switch)] = switch


def _unregister(switch: DetailSwitch) -> None:
    with _LOCK:
        _ON.pop(id(switch), None)


def switched_on() -> list[DetailSwitch]:
    with _LOCK:
        return list(_ON.values())


def restore_all() -> list[str]:
    """Turn off every `stats detail` this process turned on; the errors, if any."""
    errors = []
    for switch in switched_on():
        error = switch.restore()
        if error:
            errors.append(error)
    return errors


atexit.register(restore_all)
