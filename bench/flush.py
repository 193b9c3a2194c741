"""Pattern flush at 1 M of 2 M keys: cachetop's whole process against the usual ways, same run.

One redis-server (no persistence) holds `user:0..N-1` and `other:0..N-1` (DEBUG POPULATE, so
the fill costs a second). Each contender deletes every `user:*` key while another client in its
own process sends GETs at a steady rate and records each one's latency; that client also runs
alone first, for the same-run idle baseline. The contenders, each on a fresh keyspace:

- `cachetop`: `python -m cachetop flush URL --pattern 'user:*' --yes`, timed as a user runs it
  (interpreter start, preview, run, summary), default settings;
- `redis-cli`: `redis-cli --scan --pattern 'user:*' | xargs -n 1000 redis-cli unlink`;
- `redis-py`: a plain `scan_iter(match, count=1000)` + `unlink(*1000 keys)` loop, in its own
  process;
- with `--unpaced`, `unpaced`: cachetop with no latency budget (`--max-latency-ms 10000`): every
  command at `--count`, what the engine does when nobody waits.

After each: every `user:*` key is gone and every `other:*` key is still there (DBSIZE and a
SCAN by an independent client), and cachetop's summary says how many it deleted. Then a
memcached metadump flush (`--mc-keys` of twice as many items) the same way.

`--runs N` repeats the whole set; every figure line carries the load average of its minute,
because the machine is shared. `--smoke` (40 k keys, one run) is what CI runs: it checks the
deletions, not the timings.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from get_load import Load  # noqa: E402
from installed import installed_env  # noqa: E402

from cachetop.demo.servers import MemcachedServer, RedisServer  # noqa: E402

REDIS_PY = textwrap.dedent("""
    import sys, redis
    client = redis.Redis(port=int(sys.argv[1]))
    batch, deleted = [], 0
    for key in client.scan_iter(match=b"user:*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    print(deleted)
""")

MC_FILL = textwrap.dedent("""
    import sys
    from pymemcache.client.base import Client
    client = Client(("127.0.0.1", int(sys.argv[1])))
    n = int(sys.argv[2])
    for prefix in (b"user:", b"other:"):
        for start in range(0, n, 1000):
            client.set_many({prefix + b"%d" % i: b"v" for i in range(start, min(n, start + 1000))},
                            noreply=True)
    client.version()  # every noreply set has been read by the server
""")


@dataclass
class Outcome:
    name: str
    keys: int
    seconds: float
    latency: dict[str, float]
    detail: str = ""
    server_cpu_s: float = 0.0  # redis-server's user+sys during the contender's run
    client_cpu_s: float = 0.0  # the contender's processes' user+sys

    @property
    def rate(self) -> float:
        return self.keys / self.seconds if self.seconds > 0 else 0.0


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def children_cpu_s() -> float:
    """User+sys of the bench's finished children (a contender's whole process tree)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_avg() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def fill(server: RedisServer, n: int) -> None:
    client = server.client(socket_timeout=600)  # DEBUG POPULATE of 1 M keys on a loaded host
    client.flushall()
    client.execute_command("DEBUG", "POPULATE", n, "user")
    client.execute_command("DEBUG", "POPULATE", n, "other")
    assert client.dbsize() == 2 * n


def check_redis(server: RedisServer, n: int) -> None:
    """Every user:* gone, every other:* kept: counted by an independent client."""
    client = server.client(socket_timeout=600)
    assert client.dbsize() == n, f"{client.dbsize()} keys left, {n} expected"
    left = sum(1 for _ in client.scan_iter(match=b"user:*", count=1000))
    kept = sum(1 for _ in client.scan_iter(match=b"other:*", count=1000))
    assert (left, kept) == (0, n), (left, kept)


def timed(argv: list[str] | str, env: dict[str, str], shell: bool = False) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env, shell=shell,
                         timeout=1800, check=False)
    took = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{argv!r} failed ({out.returncode}): {out.stderr[-500:]}")
    return took, out.stdout


def cachetop_env(state: Path) -> dict[str, str]:
    """A user's environment: no CACHETOP_*, its own config and state dirs, and compiled
    bytecode as an installed package has (installed_env), in a prefix of the bench's own."""
    env = {k: v for k, v in installed_env(state / "pycache").items()
           if not k.startswith("CACHETOP_")}
    env.update(XDG_CONFIG_HOME=str(state / "config"), XDG_STATE_HOME=str(state / "state"))
    return env


def compile_cachetop(state: Path) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "cachetop"),
                    str(ROOT / "cachetop" / "collectors")], env=cachetop_env(state), check=True,
                   capture_output=True, timeout=600)


def run_cachetop(url: str, state: Path, extra: list[str]) -> tuple[float, int, str]:
    took, out = timed([sys.executable, "-m", "cachetop", "flush", url, "--pattern", "user:*",
                       "--yes", *extra], cachetop_env(state))
    summary = out.strip().splitlines()[-1]
    found = re.search(r"deleted (\d+)", summary)
    assert found, summary
    return took, int(found.group(1)), summary


def run_redis_cli(port: int) -> tuple[float, int, str]:
    took, _ = timed(f"redis-cli -p {port} --scan --pattern 'user:*' | xargs -r -n 1000 "
                    f"redis-cli -p {port} unlink > /dev/null", dict(os.environ), shell=True)
    return took, -1, ""  # redis-cli prints no total: check_redis counts what is left


def run_redis_py(port: int) -> tuple[float, int, str]:
    took, out = timed([sys.executable, "-c", REDIS_PY, str(port)], dict(os.environ))
    return took, int(out), ""


def contenders(server: RedisServer, args: argparse.Namespace,
               state: Path) -> dict[str, Callable[[], tuple[float, int, str]]]:
    every: dict[str, Callable[[], tuple[float, int, str]]] = {
        "cachetop": lambda: run_cachetop(server.url, state, args.cachetop_args),
        "redis-cli": lambda: run_redis_cli(server.port),
        "redis-py": lambda: run_redis_py(server.port),
    }
    if args.unpaced:  # the engine's own speed: commands at --count whatever others wait
        every["unpaced"] = lambda: run_cachetop(server.url, state, [*args.cachetop_args,
                                                                    "--max-latency-ms", "10000"])
    return {"cachetop": every["cachetop"]} if args.only_cachetop else every


def one_run(server: RedisServer, n: int, args: argparse.Namespace, state: Path,
            run: int) -> list[Outcome]:
    fill(server, n)
    load = Load(server.port, args.load_rate, "other:")
    time.sleep(args.idle_s)
    idle = Outcome("idle", 0, args.idle_s, load.stop(), load_avg())
    results = [idle]
    for name, go in contenders(server, args, state).items():
        fill(server, n)
        load = Load(server.port, args.load_rate, "other:")
        before = load_avg()
        server_cpu, client_cpu = cpu_s(server.pid), children_cpu_s()
        took, deleted, summary = go()
        server_cpu, client_cpu = cpu_s(server.pid) - server_cpu, children_cpu_s() - client_cpu
        latency = load.stop()
        check_redis(server, n)
        if deleted >= 0:
            assert deleted == n, summary  # cachetop's own count is exact
        results.append(Outcome(name, n, took, latency, f"{before}; {summary}".strip("; "),
                               server_cpu, client_cpu))
    for r in results:
        figure = (f"{r.rate / 1e6:6.3f} M keys/s in {r.seconds:6.2f}s (CPU s: server "
                  f"{r.server_cpu_s:5.2f}, client {r.client_cpu_s:5.2f})" if r.keys else " " * 55)
        print(f"run {run} {r.name:9s} {figure}  GET p50 {r.latency['p50_ms']:6.2f} ms "
              f"p99 {r.latency['p99_ms']:6.2f} ms ({r.latency['n']:.0f} GETs)  {r.detail}",
              flush=True)
    by = {r.name: r for r in results}
    if args.only_cachetop:
        return results
    print(f"run {run} cachetop/redis-cli {by['cachetop'].rate / by['redis-cli'].rate:.1f}x, "
          f"cachetop/redis-py {by['cachetop'].rate / by['redis-py'].rate:.1f}x, GET p99 "
          f"{by['cachetop'].latency['p99_ms'] - idle.latency['p99_ms']:+.2f} ms over idle; "
          f"{load_avg()}", flush=True)
    return results


def memcached_run(n: int, state: Path, run: int) -> None:
    server = MemcachedServer(memory_mb=max(64, n * 2 * 200 // 1_000_000))
    server.start()
    try:
        subprocess.run([sys.executable, "-c", MC_FILL, str(server.port), str(n)], check=True,
                       timeout=1800)
        before = load_avg()
        took, deleted, summary = run_cachetop(server.url, state, [])
        client = server.client()
        gone = [k for k in (b"user:%d" % i for i in range(0, n, max(1, n // 1000)))
                if client.get(k) is not None]
        kept = sum(1 for i in range(0, n, max(1, n // 1000))
                   if client.get(b"other:%d" % i) is not None)
        assert not gone and kept == len(range(0, n, max(1, n // 1000))), (gone[:3], kept)
        assert deleted == n, summary
        print(f"run {run} memcached {n / took / 1e6:6.3f} M keys/s in {took:6.2f}s "
              f"(metadump flush, {n} of {2 * n} items)  {before}; {summary}", flush=True)
    finally:
        server.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="20 k of 40 k keys, one run, no timings")
    p.add_argument("--keys", type=int, help="user:* keys (as many other:*); default 1,000,000")
    p.add_argument("--mc-keys", type=int, help="memcached user:* items; default 200,000")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--load-rate", type=float, default=1000.0, help="other client's GETs/s")
    p.add_argument("--idle-s", type=float, default=3.0, help="idle baseline length")
    p.add_argument("--only-cachetop", action="store_true", help="skip the other contenders")
    p.add_argument("--unpaced", action="store_true",
                   help="also cachetop with no latency budget (--max-latency-ms 10000)")
    p.add_argument("cachetop_args", nargs="*", help="extra `cachetop flush` options (after --)")
    args = p.parse_args()
    n = args.keys or (20_000 if args.smoke else 1_000_000)
    mc_n = args.mc_keys or (5_000 if args.smoke else 200_000)
    if args.smoke:
        args.idle_s = min(args.idle_s, 0.5)
    state = Path(os.environ.get("TMPDIR", "/tmp")) / f"cachetop-bench-flush-{os.getpid()}"
    compile_cachetop(state)
    server = RedisServer("--enable-debug-command", "local")
    server.start()
    try:
        for run in range(1, args.runs + 1):
            print(f"run {run}: {n} user:* of {2 * n} keys, GETs at {args.load_rate:.0f}/s; "
                  f"{load_avg()}", flush=True)
            one_run(server, n, args, state, run)
            memcached_run(mc_n, state, run)
    finally:
        server.close()
        shutil.rmtree(state, ignore_errors=True)
    if args.smoke:
        print("smoke: every contender deleted exactly the user:* keys and kept the others")
    return 0


if __name__ == "__main__":
    sys.exit(main())
