"""Provides the engine channel's messages: length-prefixed JSON frames, and the wire forms of
targets (front -> engine) and of figures, history and detail (engine -> front).

One schema serves the local socket between a front and its engine and, later, an agent's
readers (engine.md): versioned (`PROTOCOL`), plain JSON types only (never pickle across a
process boundary), one writer and any number of readers. A snapshot message carries only the
targets that changed since the reader's last one; the reader keeps the latest of each.
Measured in bench/README.md (poll.py, "channel").
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any

from cachetop.fleet import Latency, TargetFigures
from collectors.base import Target, TlsOptions
from collectors.secret import Secret

PROTOCOL = 1
_HEADER = struct.Struct("!I")
MAX_FRAME_BYTES = 256 * 1024 * 1024  # a corrupt length must not make a reader allocate forever


class ProtocolError(Exception):
    """A frame that is not a message of this protocol (a corrupt or foreign stream)."""


def frame(message: Mapping[str, Any]) -> bytes:
    """One message as a frame: a 4-byte big-endian length, then compact ASCII JSON."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")
    return _HEADER.pack(len(body)) + body


class FrameReader:
    """Cuts frames out of a byte stream fed in arbitrary pieces."""

    def __init__(self) -> None:
        self._buf = bytearray()

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
                message = json.loads(body)
            except ValueError as exc:
                raise ProtocolError(f"not JSON: {exc}") from None
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
    known = {f.name for f in fields(Target)}
    return Target(**{k: v for k, v in kwargs.items() if k in known})


# -- figures (engine -> front) -----------------------------------------------------------------

_LATENCY_FIELDS = ("server_latency", "probe_latency")
_SKIPPED = frozenset({"detail"})  # sent on its own, only for a target a screen shows
_FIGURE_DEFAULTS: list[tuple[str, Any]] = []


def _defaults() -> list[tuple[str, Any]]:
    if not _FIGURE_DEFAULTS:
        sample = TargetFigures(name="", kind="", address="")
        _FIGURE_DEFAULTS.extend((f.name, getattr(sample, f.name)) for f in fields(TargetFigures)
                                if f.name not in _SKIPPED and f.name not in ("name", "kind",
                                                                              "address"))
    return _FIGURE_DEFAULTS


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def figures_to_wire(t: TargetFigures) -> dict[str, Any]:
    """A target's figures as JSON types; fields at their default are left out."""
    out: dict[str, Any] = {"name": t.name, "kind": t.kind, "address": t.address}
    for name, default in _defaults():
        value = getattr(t, name)
        if value == default:
            continue
        if name in _LATENCY_FIELDS:
            value = [_number(value.p50_s), _number(value.p95_s), _number(value.p99_s),
                     value.source]
        elif name == "caches":
            value = [figures_to_wire(c) for c in value]
        elif name == "last_good":
            value = figures_to_wire(value)
        elif name == "degraded":
            value = list(value)
        elif isinstance(value, float):
            value = _number(value)
        out[name] = value
    return out


def figures_from_wire(doc: Mapping[str, Any]) -> TargetFigures:
    kwargs = dict(doc)
    for name in _LATENCY_FIELDS:
        if name in kwargs:
            p50, p95, p99, source = kwargs[name]
            kwargs[name] = Latency(p50, p95, p99, source)
    if "caches" in kwargs:
        kwargs["caches"] = tuple(figures_from_wire(c) for c in kwargs["caches"])
    if "last_good" in kwargs and kwargs["last_good"] is not None:
        kwargs["last_good"] = figures_from_wire(kwargs["last_good"])
    if "degraded" in kwargs:
        kwargs["degraded"] = tuple(kwargs["degraded"])
    return TargetFigures(**kwargs)


# -- history -----------------------------------------------------------------------------------

def series_to_wire(series: Mapping[str, Sequence[float]]) -> dict[str, list[float | None]]:
    """Chart series; NaN (a gap) travels as null, which JSON has and NaN is not."""
    return {name: [v if math.isfinite(v) else None for v in values]
            for name, values in series.items()}


def series_from_wire(doc: Mapping[str, Sequence[float | None]]) -> dict[str, list[float]]:
    return {name: [math.nan if v is None else float(v) for v in values]
            for name, values in doc.items()}
