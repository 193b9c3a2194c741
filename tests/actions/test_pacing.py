"""Pacer (keys/s limit spacing and the latency slow-down, on a fake clock) and BatchSizer."""

from __future__ import annotations

import threading

from cachetop.actions.pacing import (
    MIN_BATCH,
    MIN_RATE_KEYS_PER_S,
    PROBE_WINDOW,
    RECOVER_AFTER_PROBES,
    SIZE_WINDOW,
    BatchSizer,
    Pacer,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SleepingEvent(threading.Event):
    """An Event whose wait() advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.slept = 0.0

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.now += timeout or 0.0
        self.slept += timeout or 0.0
        return self.is_set()


def test_limit_spaces_batches_to_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(1000, clock=clock)
    cancel = SleepingEvent(clock)
    size = pacer.chunk_size(1000)
    assert size == 100  # ~10 batches a second
    for _ in range(20):
        assert pacer.wait(size, cancel)
    assert 1.85 <= cancel.slept <= 1.95  # 2,000 keys at 1,000/s: 1.9 s of waiting


def test_unlimited_never_waits() -> None:
    clock = FakeClock()
    pacer = Pacer(None, clock=clock)
    cancel = SleepingEvent(clock)
    assert all(pacer.wait(1000, cancel) for _ in range(100))
    assert cancel.slept == 0
    assert pacer.chunk_size(1000) == 1000


def test_cancel_during_wait_returns_false() -> None:
    clock = FakeClock()
    pacer = Pacer(10, clock=clock)
    cancel = SleepingEvent(clock)
    assert pacer.wait(10, cancel)
    cancel.set()
    assert not pacer.wait(10, cancel)


def _slow(pacer: Pacer, rtt_s: float) -> bool:
    """Feed a window of probes; True if one of them made the pacer slow down."""
    return any([pacer.observe_probe(rtt_s) for _ in range(PROBE_WINDOW)])


def test_slow_probes_halve_the_rate_and_fast_probes_restore_it() -> None:
    clock = FakeClock()
    pacer = Pacer(8000, clock=clock)
    pacer.set_baseline([0.0001, 0.0001, 0.0002])
    assert pacer.slow_threshold_s == 0.001  # the 1 ms floor beats 2 x 0.1 ms
    assert not _slow(pacer, 0.0009)
    assert _slow(pacer, 0.003)
    assert pacer.current == 4000
    assert _slow(pacer, 0.003)
    assert pacer.current == 2000 and pacer.slowdowns == 2
    for _ in range(RECOVER_AFTER_PROBES * 4):
        pacer.observe_probe(0.0001)
    assert pacer.current == 8000  # back to the configured limit, never above it


def test_one_late_probe_in_a_window_does_not_slow_down() -> None:
    pacer = Pacer(8000, clock=FakeClock())
    pacer.set_baseline([0.0001])
    for _ in range(10):
        assert not any(pacer.observe_probe(rtt) for rtt in (0.0001, 0.05, 0.0001, 0.0002,
                                                             0.0001))
    assert pacer.current == 8000 and pacer.slowdowns == 0


def test_slow_down_of_an_unlimited_run_starts_from_the_recent_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(None, clock=clock)
    pacer.set_baseline([0.002])
    for _ in range(11):
        pacer.record(1000)
        clock.now += 0.01  # 100,000 keys/s
    assert not _slow(pacer, 0.003)  # under 2 x baseline (4 ms): not slow
    assert _slow(pacer, 0.005)
    assert pacer.current is not None and 45_000 <= pacer.current <= 55_000


def test_rate_never_drops_below_the_floor() -> None:
    pacer = Pacer(2000, clock=FakeClock())
    for _ in range(10):
        _slow(pacer, 1.0)
    assert pacer.current == MIN_RATE_KEYS_PER_S
    low = Pacer(100, clock=FakeClock())  # a limit below the floor is kept, not raised
    _slow(low, 1.0)
    assert low.current == 100


# -- BatchSizer: command sizes from what other clients wait ------------------------------------


def _window(sizer: BatchSizer, rtt_s: float) -> int:
    """Feed one sizing window of probes of `rtt_s`; the size after it."""
    for _ in range(SIZE_WINDOW):
        size = sizer.observe(rtt_s)
    return size


def test_sizer_shrinks_after_two_slow_windows_and_grows_back_when_fast() -> None:
    sizer = BatchSizer(500, 1000, 0.001)
    sizer.set_baseline([0.0001, 0.0001, 0.0002])
    assert _window(sizer, 0.0001 + 0.0006) == 500  # one slow window (0.6 ms > 0.5 ms): kept
    assert _window(sizer, 0.0001 + 0.0006) == 375  # the second in a row: x 0.75
    assert _window(sizer, 0.0001 + 0.0004) == 375  # between a quarter and a half: kept
    assert _window(sizer, 0.0001 + 0.0002) == 451  # under a quarter of the budget: x 1.2 (+1)
    for _ in range(20):
        _window(sizer, 0.0001)
    assert sizer.size == 1000  # never above the ceiling (--count)


def test_sizer_decides_on_the_median_so_late_wake_ups_do_not_shrink() -> None:
    sizer = BatchSizer(400, 1000, 0.001)
    sizer.set_baseline([0.0001])
    late = [0.05] * (SIZE_WINDOW // 2 - 1) + [0.0001] * (SIZE_WINDOW // 2 + 1)
    for _ in range(10):
        for rtt in late:
            sizer.observe(rtt)
    assert sizer.size == 1000 and sizer.changes > 0  # the fast majority grew it


def test_sizer_never_goes_below_the_floor_and_says_so() -> None:
    sizer = BatchSizer(1000, 1000, 0.001)
    sizer.set_baseline([0.0001])
    for _ in range(100):
        _window(sizer, 0.01)
    assert sizer.size == MIN_BATCH and sizer.at_floor
    assert BatchSizer(1, 500, 0.001).size == MIN_BATCH  # a start below the floor is raised
    assert BatchSizer(1, 5, 0.001).size == 5  # but never above --count
