"""The poller against real servers: concurrency, a hung target, recovery."""

from __future__ import annotations

import bisect
import threading
import time

from cachetop.collectors.registry import make_collector
from cachetop.monitor import Monitor
from tests.integration.helpers import memcached_target, redis_target
from tests.servers import MemcachedServer, RedisServer
from tests.wait import wait_until


def test_hung_redis_never_delays_the_others(memcached_server: MemcachedServer) -> None:
    healthy = RedisServer()
    hung = RedisServer()
    healthy.start()
    hung.start()
    interval = 0.5
    targets = [redis_target(hung.port, "hung", timeout_s=interval),
               redis_target(healthy.port, "healthy", timeout_s=interval),
               memcached_target(memcached_server.port, "mc", timeout_s=interval)]
    monitor = Monitor([make_collector(t) for t in targets], interval)
    updates: dict[str, list[float]] = {"healthy": [], "mc": [], "hung": []}
    lock = threading.Lock()

    def record() -> None:
        snap = monitor.snapshot()
        with lock:
            for t in snap.targets:
                times = updates[t.name]
                if not times or times[-1] != t.updated_at:
                    times.append(t.updated_at)

    def after(name: str, since: float) -> list[float]:
        with lock:
            return [t for t in updates[name] if t > since]

    def statuses() -> dict[str, str]:
        return {t.name: t.status for t in monitor.snapshot().targets}

    monitor.subscribe(record)
    try:
        monitor.start()
        wait_until(lambda: set(statuses().values()) == {"up"}, "every target up")
        hung.freeze()
        frozen_at = time.time()
        # ~10 polls of each healthy target while the hung one times out, however long the
        # machine takes to run them.
        wait_until(lambda: statuses()["hung"] == "timeout"
                   and all(len(after(n, frozen_at)) >= 10 for n in ("healthy", "mc")),
                   "the hung target to time out while the others poll on")
        snap = monitor.snapshot()
    finally:
        monitor.stop()
        hung.thaw()
        healthy.close()
        hung.close()
    by_name = {t.name: t for t in snap.targets}
    assert by_name["hung"].status == "timeout"
    assert by_name["hung"].error == f"timeout after {interval:g}s"
    for name in ("healthy", "mc"):
        assert by_name[name].status == "up"
        times = after(name, frozen_at)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps) < interval * 2              # never held up by the hung target


def test_killed_target_goes_down_and_comes_back() -> None:
    server = RedisServer()
    server.start()
    interval = 0.2
    monitor = Monitor([make_collector(redis_target(server.port, "r", timeout_s=interval))],
                      interval)

    def status() -> str:
        return monitor.snapshot().targets[0].status

    try:
        monitor.start()
        wait_until(lambda: status() == "up", "the target up")
        server.stop()
        wait_until(lambda: status() == "down", "the stopped target down")
        down = monitor.snapshot().targets[0]
        assert down.last_good is not None
        assert down.last_good.status == "up"
        server.start()
        wait_until(lambda: monitor.snapshot().targets[0].live, "the restarted target live")
    finally:
        monitor.stop()
        server.close()


def test_failed_scrapes_leave_no_socket_open_even_without_gc() -> None:
    """An HTTP/1.0 endpoint (prometheus_client's own server) hands the socket to the response;
    a failed scrape's traceback cycle used to keep it open in CLOSE_WAIT until gc ran."""
    import gc
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import psutil

    from cachetop.collectors.base import Target
    from cachetop.collectors.poller import poll
    from tests.servers import free_port

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom\n")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Failing)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/metrics"
    collector = make_collector(Target(name="e", kind="metrics", address=url, http_url=url))
    me = psutil.Process()
    gc.collect()
    gc.disable()
    try:
        results = [poll(collector, 0, 1.0) for _ in range(20)]
        open_to_server = [c for c in me.net_connections("tcp")
                          if c.raddr and c.raddr.port == port]
    finally:
        gc.enable()
        server.shutdown()
        server.server_close()
    assert {r.error.status for r in results if r.error} == {"down"}
    assert open_to_server == []


def test_a_shorter_interval_applies_at_once_not_after_the_current_wait() -> None:
    """Issue 20.7: from a 30 s interval back to 1 s, polls resumed only after the 30 s wait
    already scheduled. Counted by the server: its own tally of INFO calls."""
    import redis

    server = RedisServer()
    server.start()
    client = redis.Redis(port=server.port)

    own = 0  # this test's own INFO commandstats calls (each is counted after it replies)

    def infos() -> int:
        nonlocal own
        stats = client.info("commandstats").get("cmdstat_info", {})
        own += 1
        return int(stats.get("calls", 0)) - (own - 1)

    monitor = Monitor([make_collector(redis_target(server.port, "r"))], 30.0)
    try:
        monitor.start()
        wait_until(lambda: monitor.snapshot().targets[0].status == "up", "the first poll")
        before = infos()
        monitor.set_interval(1.0)
        changed_at = time.monotonic()
        wait_until(lambda: infos() >= before + 2, "two polls at the new interval",
                   timeout_s=15.0)
        assert time.monotonic() - changed_at < 15.0  # not the 30 s already scheduled
    finally:
        monitor.stop()
        client.close()
        server.close()


def test_a_fleet_polls_in_even_batches_over_the_interval() -> None:
    """After the first round (bunched, for a quick first screen), each target's polls keep a
    phase of their own: the fleet's polls leave spread over the interval, not all in one
    burst that wakes every server at once (a quiet server's probe then waits for a CPU)."""
    from cachetop.collectors.netloop import PollLoop
    from cachetop.collectors.poller import Poller, PollResult

    server = MemcachedServer("-c", "1024")
    server.start()
    interval, n = 0.5, 100  # first polls within max(interval/10, n/1000 s): two ticks
    collectors = [make_collector(memcached_target(server.port, f"m{i}", timeout_s=interval))
                  for i in range(n)]
    starts: list[float] = []
    lock = threading.Lock()

    def on_result(result: PollResult) -> None:
        with lock:
            starts.append(result.started_at)

    loop = PollLoop()
    poller = Poller(collectors, interval, on_result, loop)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        poller.start()
        wait_until(lambda: len(starts) >= 6 * n, "six rounds of polls", timeout_s=60)
    finally:
        poller.stop()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        poller.close()
        server.close()
    with lock:
        steady = sorted(starts[3 * n:6 * n])  # rounds 4-6: the first one bunches by design
    # The most polls that left within any twentieth of the interval: one tick's batch, about a
    # tenth of the fleet when spread; the whole fleet when bunched.
    window = interval / 20
    most = max(bisect.bisect_left(steady, start + window) - i
               for i, start in enumerate(steady))
    assert most <= 0.25 * n, (most, n)
