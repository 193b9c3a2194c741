"""Provides the engine channel's messages: length-prefixed frames, and the wire forms of
targets (front -> engine) and of figures, history and detail (engine -> front).

One schema serves the local socket between a front and its engine and, later, an agent's
readers (engine.md): versioned (`PROTOCOL`), plain JSON types only, one writer and any number of
readers. A snapshot message carries only the targets that changed since the reader's last one;
the reader keeps the latest of each.

Two codecs carry those types. `json` is for any reader. `marshal` is only for a front and the
engine it started itself from the same interpreter (the rule is "never unpickle what a process
you did not start wrote"; marshal builds data, never runs code, but its format is the
interpreter's own): at 1,000 targets a second it costs a fifth of JSON to write and a seventh to
read (bench/README.md, poll.py "channel").
"""

from __future__ import annotations

import json
import marshal
import math
import operator
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any, cast

from cachetop.collectors.base import Target, TlsOptions
from cachetop.collectors.secret import Secret
from cachetop.fleet import Latency, TargetFigures

PROTOCOL = 1
_HEADER = struct.Struct("!I")
MAX_FRAME_BYTES = 256 * 1024 * 1024  # a corrupt length must not make a reader allocate forever


class ProtocolError(Exception):
    """A frame that is not a message of this protocol (a corrupt or foreign stream)."""


CODECS = ("json", "marshal")
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


def frame(message: Mapping[str, Any], codec: str = "json") -> bytes:
    """One message as a frame: a 4-byte big-endian length, then the body in `codec`.

    A non-finite float has no JSON form: it travels as null (a figure that cannot be computed).
    """
    if codec == "marshal":
        body = marshal.dumps(cast(Any, message))  # plain types only (see above)
    else:
        try:
            body = _ENCODE(message).encode("ascii")
        except ValueError:
            body = _ENCODE(_finite(message)).encode("ascii")
    return _HEADER.pack(len(body)) + body


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class FrameReader:
    """Cuts frames out of a byte stream fed in arbitrary pieces."""

    def __init__(self, codec: str = "json") -> None:
        self._buf = bytearray()
        self._decode = marshal.loads if codec == "marshal" else json.loads

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        buf = self._buf
        buf += data
        while len(buf) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(buf)
            if length > MAX_FRAME_BYTES:
                raise ProtocolError(f"frame of {length} bytes")
            if len(buf) < _HEADER.size + length:
                return
            body = bytes(buf[_HEADER.size:_HEADER.size + length])
            del buf[:_HEADER.size + length]
            try:
                message = self._decode(body)
            except (ValueError, EOFError, TypeError) as exc:
                raise ProtocolError(f"not a frame body: {exc}") from None
            if not isinstance(message, dict) or "t" not in message:
                raise ProtocolError("not a message")
            yield message


# -- targets (front -> engine, on the private channel only: they carry credentials) -------------

def target_to_wire(target: Target) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Target):
        value = getattr(target, f.name)
        if isinstance(value, Secret):
            value = {"secret": value.reveal()}
        elif isinstance(value, TlsOptions):
            value = {g.name: getattr(value, g.name) for g in fields(TlsOptions)}
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


def target_from_wire(doc: Mapping[str, Any]) -> Target:
    kwargs = dict(doc)
    password = kwargs.get("password")
    kwargs["password"] = Secret(password["secret"]) if isinstance(password, dict) else None
    tls = kwargs.get("tls")
    kwargs["tls"] = TlsOptions(**tls) if isinstance(tls, dict) else None
    kwargs["seeds"] = tuple(kwargs.get("seeds") or ())
    known = {f.name for f in fields(Target)}
    return Target(**{k: v for k, v in kwargs.items() if k in known})


# -- figures (engine -> front) -----------------------------------------------------------------
# A target's figures travel as a list in TargetFigures' field order (without `detail`, which is
# sent on its own, only for a target a screen shows): a JSON array costs a fraction of an
# object to write and to read, and the reader builds the dataclass positionally.

_NAMES = tuple(f.name for f in fields(TargetFigures) if f.name != "detail")
_LATENCY_AT = tuple(_NAMES.index(name) for name in ("server_latency", "probe_latency"))
_DEGRADED_AT = _NAMES.index("degraded")
_SERVES_AT = _NAMES.index("serves")
_CACHES_AT = _NAMES.index("caches")
_EVENTS_AT = _NAMES.index("events")
_LAST_GOOD_AT = _NAMES.index("last_good")
_NO_LATENCY = Latency()
_DETAIL_POSITION = [f.name for f in fields(TargetFigures)].index("detail")


def _latency(value: Latency) -> list[Any]:
    return [value.p50_s, value.p95_s, value.p99_s, value.source]


_ROW = operator.attrgetter(*_NAMES)  # every field in one C call


def figures_to_wire(t: TargetFigures) -> list[Any]:
    """A target's figures as a JSON array (see above)."""
    row: list[Any] = list(_ROW(t))
    for at in _LATENCY_AT:
        row[at] = _latency(row[at])
    row[_DEGRADED_AT] = list(t.degraded) if t.degraded else None
    row[_CACHES_AT] = [figures_to_wire(c) for c in t.caches] if t.caches else None
    row[_EVENTS_AT] = [dict(e) for e in t.events] if t.events else None
    if t.last_good is not None:
        row[_LAST_GOOD_AT] = figures_to_wire(t.last_good)
    return row


def figures_from_wire(row: Sequence[Any]) -> TargetFigures:
    values = list(row)
    if len(values) != len(_NAMES):
        raise ValueError(f"figures with {len(values)} fields, expected {len(_NAMES)}")
    for at in _LATENCY_AT:
        latency = values[at]
        values[at] = _NO_LATENCY if latency is None else Latency(*latency)
    values[_DEGRADED_AT] = tuple(values[_DEGRADED_AT] or ())
    values[_SERVES_AT] = tuple(values[_SERVES_AT] or ())
    values[_EVENTS_AT] = tuple(values[_EVENTS_AT] or ())
    caches = values[_CACHES_AT]
    values[_CACHES_AT] = tuple(figures_from_wire(c) for c in caches) if caches else ()
    if values[_LAST_GOOD_AT] is not None:
        values[_LAST_GOOD_AT] = figures_from_wire(values[_LAST_GOOD_AT])
    values.insert(_DETAIL_POSITION, None)
    return TargetFigures(*values)


# -- history -----------------------------------------------------------------------------------

def series_to_wire(series: Mapping[str, Sequence[float]]) -> dict[str, list[float | None]]:
    """Chart series; NaN (a gap) travels as null, which JSON has and NaN is not."""
    return {name: [v if math.isfinite(v) else None for v in values]
            for name, values in series.items()}


def series_from_wire(doc: Mapping[str, Sequence[float | None]]) -> dict[str, list[float]]:
    return {name: [math.nan if v is None else float(v) for v in values]
            for name, values in doc.items()}
