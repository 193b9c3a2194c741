"""The channel's wire forms: what the engine sends is what the front rebuilds, exactly."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from cachetop.collectors.base import Target, TlsOptions
from cachetop.collectors.secret import Secret
from cachetop.demo.scripted import scripted_fleet
from cachetop.detail import build_detail, detail_from_wire, detail_to_wire
from cachetop.engine.protocol import (
    CODECS,
    FrameReader,
    ProtocolError,
    figures_from_wire,
    figures_to_wire,
    frame,
    series_from_wire,
    series_to_wire,
    target_from_wire,
    target_to_wire,
)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("figures", scripted_fleet(), ids=lambda f: f.name)
def test_figures_survive_the_wire(figures: object, codec: str) -> None:
    (message,) = FrameReader(codec).feed(frame({"t": "snap", "f": figures_to_wire(figures)},
                                               codec))
    assert figures_from_wire(message["f"]) == figures


@pytest.mark.parametrize("codec", CODECS)
def test_frames_cut_anywhere_are_read_whole_and_in_order(codec: str) -> None:
    data = b"".join(frame({"t": "x", "n": n, "s": "é\x1b" * n}, codec) for n in range(50))
    reader, got = FrameReader(codec), []
    for start in range(0, len(data), 7):
        got.extend(m["n"] for m in reader.feed(data[start:start + 7]))
    assert got == list(range(50))


@pytest.mark.parametrize("codec", CODECS)
def test_a_corrupt_length_or_body_is_refused(codec: str) -> None:
    with pytest.raises(ProtocolError):
        list(FrameReader(codec).feed(b"\xff\xff\xff\xff{}"))
    with pytest.raises(ProtocolError):
        list(FrameReader(codec).feed(b"\x00\x00\x00\x03\xfe\xfd\xfc"))


def test_targets_keep_credentials_and_tls_across_the_private_channel() -> None:
    target = Target(name="s", kind="redis", address="10.0.0.5:6379", host="10.0.0.5",
                    port=6379, db=3, username="app", password=Secret("p@ss w:rd"),
                    tls=TlsOptions(ca_file="/ca.pem", server_name="redis.internal"),
                    mapping={"hits": "h_total"}, group="sessions", timeout_s=0.5)
    (message,) = FrameReader().feed(frame({"t": "config", "x": target_to_wire(target)}))
    back = target_from_wire(message["x"])
    assert back == target
    assert back.password is not None and back.password.reveal() == "p@ss w:rd"


def test_history_gaps_travel_as_null_and_come_back_as_nan() -> None:
    series = {"t": [-2.0, -1.0, 0.0], "hit_ratio": [0.5, math.nan, 0.75]}
    (message,) = FrameReader().feed(frame({"t": "hist", "s": series_to_wire(series)}))
    back = series_from_wire(message["s"])
    assert back["t"] == [-2.0, -1.0, 0.0]
    assert back["hit_ratio"][0] == 0.5 and math.isnan(back["hit_ratio"][1])


def test_redis_detail_is_rated_between_refreshes_and_survives_the_wire() -> None:
    def raw(calls: int, usec_time: int) -> dict[str, object]:
        return {"info": {"server_time_usec": str(usec_time), "cmdstat_get":
                         f"calls={calls},usec={calls * 2},usec_per_call=2.00"},
                "keyspace": {0: (12, 3, 1500)},
                "slowlog": [{"id": 7, "time": 1_700_000_000, "duration_us": 12_000,
                             "args": [b"GET", b"k\x1b[31m"], "client": b"127.0.0.1:5",
                             "client_name": b""}]}

    first = build_detail("redis", raw(100, 10_000_000), None)
    second = build_detail("redis", raw(400, 20_000_000), first)
    assert second is not None and not isinstance(second, type(None))
    get = next(c for c in second.commands if c.name == "get")  # type: ignore[union-attr]
    assert get.calls_per_s == pytest.approx(30.0)  # 300 calls over 10 s of server time
    (message,) = FrameReader().feed(frame({"t": "detail", "d": detail_to_wire(second)}))
    assert detail_from_wire(message["d"]) == second


def test_a_target_with_last_good_and_caches_nests_on_the_wire() -> None:
    fleet = scripted_fleet()
    endpoint = next(f for f in fleet if f.caches)
    down = replace(endpoint, status="down", error="connection refused", last_good=endpoint)
    assert figures_from_wire(figures_to_wire(down)) == down
