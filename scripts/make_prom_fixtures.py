"""Writes the large exporter fixtures under tests/fixtures/exporters/ (deterministic).

The small fixtures beside them are hand-written to test one mapping each; these are for the
parser's equivalence tests and bench/prom_parse.py: whole scrapes as the exporters write them,
with their number formats (Go's `1.5e+06`, Java's `1.5E6` and `NaN`), go_/process_/jvm_ families,
summaries, histograms, braces and escapes in label values. Shapes: oliver006/redis_exporter
v1.6x against Redis 7.2, prometheus/memcached_exporter v0.14 against memcached 1.6, Spring Boot 3
actuator/prometheus (Micrometer). Run: .venv/bin/python scripts/make_prom_fixtures.py
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "exporters"
REDIS_COMMANDS = (
    "get", "set", "del", "exists", "expire", "ttl", "incr", "incrby", "decr", "mget", "mset",
    "setex", "setnx", "getdel", "hget", "hset", "hdel", "hgetall", "hincrby", "hmget", "hexists",
    "hlen", "lpush", "rpush", "lpop", "rpop", "lrange", "llen", "ltrim", "sadd", "srem",
    "smembers", "sismember", "scard", "zadd", "zrem", "zrange", "zrangebyscore", "zscore",
    "zincrby", "zcard", "publish", "subscribe", "ping", "info", "client|list", "client|setname",
    "config|get", "scan", "unlink", "multi", "exec", "watch", "eval", "evalsha", "script|load",
    "latency|histogram", "slowlog|get", "memory|usage", "type", "auth", "hello",
)


def go_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'g', -1, 64), as client_golang writes values: the shortest
    digits, in %e form from an exponent of 6 (21 when every digit is before the point)."""
    digits, exponent = _shortest(float(value))
    precision = 6
    if precision > len(digits) and len(digits) >= exponent + 1:
        precision = len(digits)
    sign = "-" if value < 0 else ""
    if exponent < -4 or exponent >= precision:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    whole = digits[: exponent + 1].ljust(exponent + 1, "0")
    rest = digits[exponent + 1:]
    return f"{sign}{whole}{'.' + rest if rest else ''}"


def _shortest(value: float) -> tuple[str, int]:
    """The shortest round-trip digits of |value| and its decimal exponent (0 -> ("0", 0))."""
    if value == 0:
        return "0", 0
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    leading_zeros = len(whole + fraction) - len(digits)
    return digits.rstrip("0") or "0", int(exponent or 0) + len(whole) - 1 - leading_zeros


def java_double(value: float) -> str:
    """Java's Double.toString, as the Prometheus Java client writes Micrometer values."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "e" not in text else f"{float(text):.10f}".rstrip("0")
    mantissa, exponent = f"{value:.15e}".split("e")
    mantissa = mantissa.rstrip("0")
    mantissa = mantissa + "0" if mantissa.endswith(".") else mantissa
    return f"{mantissa}E{int(exponent)}"


def family(name: str, kind: str, help_text: str, lines: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines]


def go_runtime(rng: random.Random) -> list[str]:
    out: list[str] = []
    quantiles = ("0", "0.25", "0.5", "0.75", "1")
    out += family("go_gc_duration_seconds", "summary",
                  "A summary of the pause duration of garbage collection cycles.",
                  [*(f'go_gc_duration_seconds{{quantile="{q}"}} {go_float(rng.uniform(1e-5, 4e-4))}'
                     for q in quantiles),
                   f"go_gc_duration_seconds_sum {go_float(rng.uniform(0.1, 2))}",
                   f"go_gc_duration_seconds_count {rng.randint(100, 9000)}"])
    out += family("go_goroutines", "gauge", "Number of goroutines that currently exist.",
                  [f"go_goroutines {rng.randint(8, 40)}"])
    out += family("go_info", "gauge", "Information about the Go environment.",
                  ['go_info{version="go1.21.6"} 1'])
    for name, text in (("alloc_bytes", "Number of bytes allocated and still in use."),
                       ("heap_idle_bytes", "Number of heap bytes waiting to be used."),
                       ("heap_inuse_bytes", "Number of heap bytes that are in use."),
                       ("heap_objects", "Number of allocated objects."),
                       ("next_gc_bytes", "Number of heap bytes when next garbage collection will "
                                         "take place."),
                       ("stack_inuse_bytes", "Number of bytes in use by the stack allocator."),
                       ("sys_bytes", "Number of bytes obtained from system.")):
        out += family(f"go_memstats_{name}", "gauge", text,
                      [f"go_memstats_{name} {go_float(rng.randint(10**5, 10**8))}"])
    out += family("go_memstats_alloc_bytes_total", "counter",
                  "Total number of bytes allocated, even if freed.",
                  [f"go_memstats_alloc_bytes_total {go_float(rng.randint(10**8, 10**11))}"])
    out += family("process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds.",
                  [f"process_cpu_seconds_total {go_float(round(rng.uniform(10, 9000), 2))}"])
    out += family("process_max_fds", "gauge", "Maximum number of open file descriptors.",
                  ["process_max_fds 1.048576e+06"])
    out += family("process_open_fds", "gauge", "Number of open file descriptors.",
                  [f"process_open_fds {rng.randint(8, 64)}"])
    out += family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                  [f"process_resident_memory_bytes {go_float(rng.randint(10**7, 10**8))}"])
    out += family("process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.",
                  [f"process_start_time_seconds {go_float(1.70912345678e9)}"])
    return out


def redis_exporter(rng: random.Random) -> str:
    out = ["# Generated by scripts/make_prom_fixtures.py in the shape of redis_exporter v1.6x"
           " (Redis 7.2)."]
    gauges = {"active_defrag_running": 0, "allocator_active_bytes": 2.5e7,
              "allocator_allocated_bytes": 2.3e7, "allocator_frag_ratio": 1.07,
              "aof_enabled": 0, "blocked_clients": 0, "client_recent_max_input_buffer_bytes": 20480,
              "clients_in_timeout_table": 0, "cluster_enabled": 0, "config_maxclients": 10000,
              "config_maxmemory": 1073741824, "connected_clients": 57, "connected_slaves": 1,
              "db_keys_total": 0, "last_slow_execution_duration_seconds": 0.012,
              "master_repl_offset": 9.87654321e9, "mem_fragmentation_ratio": 1.13,
              "memory_max_bytes": 1073741824, "memory_used_bytes": 825627648,
              "memory_used_dataset_bytes": 8.0e8, "memory_used_lua_bytes": 31744,
              "memory_used_peak_bytes": 9.1e8, "memory_used_rss_bytes": 9.3e8,
              "rdb_changes_since_last_save": 18233, "rdb_last_bgsave_duration_sec": 3,
              "replication_backlog_bytes": 1048576, "slowlog_length": 128,
              "start_time_seconds": 1.7091e9, "uptime_in_seconds": 864000}
    out += family("redis_up", "gauge", "Information about the Redis instance", ["redis_up 1"])
    out += family("redis_instance_info", "gauge", "Information about the Redis instance", [
        'redis_instance_info{executable="/usr/local/bin/redis-server",maxmemory_policy='
        '"allkeys-lru",os="Linux 6.1.0-18-amd64 x86_64",process_id="1",redis_build_id='
        '"5f1b3b5dc4a5a8a0",redis_mode="standalone",redis_version="7.2.4",role="master",'
        'run_id="3b1f0e9d4c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f",tcp_port="6379"} 1'])
    for name, value in gauges.items():
        out += family(f"redis_{name}", "gauge", f"{name} metric",
                      [f"redis_{name} {go_float(value)}"])
    for name in ("keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys",
                 "commands_processed", "connections_received", "net_input_bytes",
                 "net_output_bytes", "rejected_connections", "expired_stale_perc"):
        out += family(f"redis_{name}_total", "counter", f"{name}_total metric",
                      [f"redis_{name}_total {go_float(rng.randint(10**4, 10**10))}"])
    for name in ("db_keys", "db_keys_expiring", "db_avg_ttl_seconds"):
        out += family(f"redis_{name}", "gauge", f"Total number of {name} by DB", [
            f'redis_{name}{{db="db{db}"}} {go_float(rng.randint(0, 10**6))}' for db in range(16)])
    calls = {cmd: rng.randint(10, 10**8) for cmd in REDIS_COMMANDS}
    for name, kind, value in (("commands", "counter", lambda c: calls[c]),
                              ("commands_duration_seconds", "counter",
                               lambda c: round(calls[c] * rng.uniform(1e-6, 9e-6), 6)),
                              ("commands_rejected_calls", "counter", lambda c: rng.randint(0, 9)),
                              ("commands_failed_calls", "counter", lambda c: rng.randint(0, 99))):
        out += family(f"redis_{name}_total", kind, "Total number of calls per command", [
            f'redis_{name}_total{{cmd="{cmd}"}} {go_float(value(cmd))}' for cmd in REDIS_COMMANDS])
    lines = []
    for cmd in REDIS_COMMANDS:
        count, bound, running = calls[cmd], 1, 0
        for _ in range(rng.randint(6, 20)):
            running = min(count, running + rng.randint(0, count // 4 + 1))
            lines.append(f'redis_commands_latencies_usec_bucket{{cmd="{cmd}",le="{bound}"}} '
                         f"{running}")
            bound *= 2
        lines += [f'redis_commands_latencies_usec_bucket{{cmd="{cmd}",le="+Inf"}} {count}',
                  f'redis_commands_latencies_usec_sum{{cmd="{cmd}"}} {go_float(count * 3.2)}',
                  f'redis_commands_latencies_usec_count{{cmd="{cmd}"}} {count}']
    out += family("redis_commands_latencies_usec", "histogram",
                  "A histogram of latencies per command", lines)
    lines = []
    for cmd in REDIS_COMMANDS[:20]:
        lines += [f'redis_latency_percentiles_usec{{cmd="{cmd}",quantile="{q}"}} '
                  f"{go_float(round(rng.uniform(1, 40), 3))}" for q in ("50", "99", "99.9")]
        lines += [f'redis_latency_percentiles_usec_sum{{cmd="{cmd}"}} {calls[cmd] * 3}',
                  f'redis_latency_percentiles_usec_count{{cmd="{cmd}"}} {calls[cmd]}']
    out += family("redis_latency_percentiles_usec", "summary",
                  "A summary of latency percentile distribution per command", lines)
    out += family("redis_errors_total", "counter", "Total number of errors per error type", [
        f'redis_errors_total{{err="{err}"}} {rng.randint(1, 500)}'
        for err in ("ERR", "WRONGTYPE", "NOAUTH", "NOSCRIPT", "LOADING")])
    out += family("redis_exporter_build_info", "gauge",
                  "redis exporter build_info", ['redis_exporter_build_info{build_date='
                                                '"2024-01-20-17:12:41",commit_sha="0c1b0c8d",'
                                                'golang_version="go1.21.6",version="v1.57.0"} 1'])
    out += family("redis_exporter_last_scrape_error", "gauge",
                  "The last scrape error status.", ['redis_exporter_last_scrape_error{err=""} 0'])
    out += family("redis_exporter_scrape_duration_seconds", "summary",
                  "Durations of scrapes by the exporter", [
                      "redis_exporter_scrape_duration_seconds_sum 512.4410023",
                      "redis_exporter_scrape_duration_seconds_count 86400"])
    out += go_runtime(rng)
    return "\n".join(out) + "\n"


def memcached_exporter(rng: random.Random) -> str:
    out = ["# Generated by scripts/make_prom_fixtures.py in the shape of memcached_exporter v0.14"
           " (memcached 1.6)."]
    out += family("memcached_up", "gauge", "Could the memcached server be reached.",
                  ["memcached_up 1"])
    out += family("memcached_version", "gauge", "The version of this memcached server.",
                  ['memcached_version{version="1.6.23"} 1'])
    out += family("memcached_uptime_seconds", "counter", "Number of seconds since the server "
                  "started.", ["memcached_uptime_seconds 864000"])
    out += family("memcached_commands_total", "counter",
                  "Total number of all requests broken down by command (get, set, etc.) and "
                  "status.", [
                      f'memcached_commands_total{{command="{c}",status="{s}"}} '
                      f"{rng.randint(0, 10**9)}"
                      for c in ("cas", "decr", "delete", "flush", "get", "incr", "set", "touch")
                      for s in (("hit", "miss", "badval") if c == "cas" else
                                ("hit",) if c in ("flush", "set") else ("hit", "miss"))])
    scalars = {"current_bytes": ("gauge", 5.24288e8), "limit_bytes": ("gauge", 6.7108864e10),
               "current_items": ("gauge", 1.2e6), "items_total": ("counter", 9.8e7),
               "items_evicted_total": ("counter", 1.7e4),
               "items_reclaimed_total": ("counter", 2.3e5),
               "current_connections": ("gauge", 210), "max_connections": ("gauge", 4096),
               "connections_total": ("counter", 5.5e5),
               "connections_rejected_total": ("counter", 0),
               "connections_listener_disabled_total": ("counter", 0),
               "read_bytes_total": ("counter", 8.1e12), "written_bytes_total": ("counter", 3.4e13),
               "malloced_bytes": ("gauge", 6.7e10), "lru_crawler_enabled": ("gauge", 1),
               "lru_crawler_items_checked_total": ("counter", 4.4e8),
               "lru_crawler_reclaimed_total": ("counter", 9.9e6)}
    for name, (kind, value) in scalars.items():
        out += family(f"memcached_{name}", kind, f"memcached {name.replace('_', ' ')}.",
                      [f"memcached_{name} {go_float(value)}"])
    slabs = range(1, 43)
    per_slab = ("current_chunks", "chunks_free", "chunks_used", "chunk_size_bytes",
                "chunks_per_page", "current_pages", "mem_requested_bytes", "current_items",
                "items_age_seconds", "items_evicted_total", "items_evicted_nonzero_total",
                "items_evicted_unfetched_total", "items_expired_unfetched_total",
                "items_outofmemory_total", "items_reclaimed_total", "items_tailrepairs_total",
                "items_crawler_reclaimed_total", "items_moves_to_cold_total",
                "items_moves_to_warm_total", "items_moves_within_lru_total", "warm_items",
                "hot_items", "cold_items")
    for name in per_slab:
        kind = "counter" if name.endswith("_total") else "gauge"
        out += family(f"memcached_slab_{name}", kind, f"Per-slab {name.replace('_', ' ')}.", [
            f'memcached_slab_{name}{{slab="{slab}"}} {go_float(rng.randint(0, 10**7))}'
            for slab in slabs])
    out += family("memcached_slab_commands_total", "counter",
                  "Total number of all requests broken down by command and status, per slab.", [
                      f'memcached_slab_commands_total{{command="{c}",slab="{slab}",status="{s}"}} '
                      f"{rng.randint(0, 10**7)}"
                      for slab in slabs for c, s in (("set", "hit"), ("delete", "hit"),
                                                     ("incr", "hit"), ("cas", "hit"),
                                                     ("cas", "badval"), ("touch", "hit"))])
    out += family("memcached_slab_lru_hits_total", "counter", "Number of get_hits to the LRU.", [
        f'memcached_slab_lru_hits_total{{lru="{lru}",slab="{slab}"}} {rng.randint(0, 10**8)}'
        for slab in slabs for lru in ("hot", "warm", "cold", "temp")])
    out += go_runtime(rng)
    return "\n".join(out) + "\n"


def micrometer(rng: random.Random) -> str:
    out = ["# Generated by scripts/make_prom_fixtures.py in the shape of Spring Boot 3"
           " actuator/prometheus (Micrometer)."]
    app = 'application="petclinic"'
    out += family("application_ready_time_seconds", "gauge",
                  "Time taken for the application to be ready to service requests",
                  [f'application_ready_time_seconds{{{app},main_application_class='
                   f'"org.springframework.samples.petclinic.PetClinicApplication"}} 6.418'])
    caches = ("vets", "owners", "pets", "visits", "specialties", "pet-types", "users",
              "sessions", "pricing", "inventory", "feature-flags", "geo")
    lines = []
    for cache in caches:
        for result in ("hit", "miss"):
            lines.append(f'cache_gets_total{{{app},cache="{cache}",cache_manager="cacheManager",'
                         f'name="{cache}",result="{result}"}} {java_double(rng.randint(0, 10**7))}')
    out += family("cache_gets_total", "counter", "The number of times cache lookup methods have "
                  "returned a cached (hit) or uncached (newly loaded or null) value (miss).", lines)
    for name, text in (("cache_puts_total", "The number of entries added to the cache"),
                       ("cache_evictions_total", "The number of times the cache was evicted."),
                       ("cache_removals_total", "Cache removals")):
        out += family(name, "counter", text, [
            f'{name}{{{app},cache="{c}",cache_manager="cacheManager",name="{c}"}} '
            f"{java_double(rng.randint(0, 10**6))}" for c in caches])
    out += family("cache_size", "gauge", "The number of entries in this cache. This may be an "
                  "approximation, depending on the type of cache.", [
                      f'cache_size{{{app},cache="{c}",cache_manager="cacheManager",name="{c}"}} '
                      f"{java_double(rng.randint(0, 10**5))}" for c in caches])
    uris = ("/owners/{ownerId}", "/owners/{ownerId}/pets/{petId}/visits/new", "/vets.html",
            "/owners", "/api/v1/pricing/{sku}", "/actuator/prometheus", "/**", "UNKNOWN",
            "/owners/find", "/oups")
    buckets = (0.001, 0.001048576, 0.001398101, 0.001747626, 0.002097151, 0.002446676, 0.002796201,
               0.003145726, 0.003495251, 0.003844776, 0.004194304, 0.005592405, 0.006990506,
               0.008388607, 0.009786708, 0.011184809, 0.01258291, 0.013981011, 0.015379112,
               0.016777216, 0.022369621, 0.027962026, 0.033554431, 0.039146836, 0.044739241,
               0.050331646, 0.055924051, 0.061516456, 0.067108864, 0.089478485, 0.111848106,
               0.134217727, 0.156587348, 0.178956969, 0.20132659, 0.223696211, 0.246065832,
               0.268435456, 0.357913941, 0.447392426, 0.536870911, 0.626349396, 0.715827881,
               0.805306366, 0.894784851, 0.984263336, 1.073741824, 1.431655765, 1.789569706,
               2.147483647, 2.505397588, 2.863311529, 3.22122547, 3.579139411, 3.937053352,
               4.294967296, 5.726623061, 7.158278826, 8.589934591, 10.021590356, 11.453246121,
               12.884901886, 14.316557651, 15.748213416, 17.179869184, 22.906492245,
               28.633115306, 30.0)
    lines = []
    for uri in uris:
        for method, status, outcome in (("GET", "200", "SUCCESS"), ("POST", "302", "REDIRECTION"),
                                        ("GET", "404", "CLIENT_ERROR")):
            labels = (f'{app},error="none",exception="none",method="{method}",outcome='
                      f'"{outcome}",status="{status}",uri="{uri}"')
            count = rng.randint(1, 10**6)
            running = 0
            for bound in buckets:
                running = min(count, running + rng.randint(0, count // 20 + 1))
                lines.append(f'http_server_requests_seconds_bucket{{{labels},le="{bound}"}} '
                             f"{java_double(running)}")
            lines += [f'http_server_requests_seconds_bucket{{{labels},le="+Inf"}} '
                      f"{java_double(count)}",
                      f"http_server_requests_seconds_count{{{labels}}} {count}",
                      f"http_server_requests_seconds_sum{{{labels}}} "
                      f"{java_double(count * rng.uniform(0.002, 0.2))}"]
    out += family("http_server_requests_seconds", "histogram", "Duration of HTTP server request "
                  "handling", lines)
    out += family("http_server_requests_seconds_max", "gauge", "Duration of HTTP server request "
                  "handling", [f'http_server_requests_seconds_max{{{app},error="none",exception='
                               f'"none",method="GET",outcome="SUCCESS",status="200",uri="{u}"}} '
                               f"{java_double(rng.uniform(0, 2))}" for u in uris])
    for area, ids in (("heap", ("G1 Eden Space", "G1 Old Gen", "G1 Survivor Space")),
                      ("nonheap", ("CodeCache", "Compressed Class Space", "Metaspace"))):
        for name, text in (("jvm_memory_used_bytes", "The amount of used memory"),
                           ("jvm_memory_committed_bytes", "The amount of memory in bytes that is "
                                                          "committed for the Java virtual machine "
                                                          "to use"),
                           ("jvm_memory_max_bytes", "The maximum amount of memory in bytes that "
                                                    "can be used for memory management")):
            values = [-1.0 if "Eden" in i and "max" in name else rng.randint(10**6, 10**9)
                      for i in ids]
            out += family(name, "gauge", text, [
                f'{name}{{{app},area="{area}",id="{i}"}} {java_double(v)}'
                for i, v in zip(ids, values, strict=True)])
    out += family("jvm_gc_pause_seconds", "summary", "Time spent in GC pause", [
        f'jvm_gc_pause_seconds_count{{{app},action="end of minor GC",cause="G1 Evacuation Pause",'
        f'gc="G1 Young Generation"}} {rng.randint(10, 9999)}',
        f'jvm_gc_pause_seconds_sum{{{app},action="end of minor GC",cause="G1 Evacuation Pause",'
        f'gc="G1 Young Generation"}} {java_double(rng.uniform(1, 90))}'])
    out += family("jvm_threads_states_threads", "gauge", "The current number of threads", [
        f'jvm_threads_states_threads{{{app},state="{s}"}} {java_double(rng.randint(0, 60))}'
        for s in ("runnable", "blocked", "waiting", "timed-waiting", "new", "terminated")])
    out += family("logback_events_total", "counter", "Number of log events that were enabled by "
                  "the effective log level", [
                      f'logback_events_total{{{app},level="{lv}"}} '
                      f"{java_double(rng.randint(0, 10**6))}"
                      for lv in ("error", "warn", "info", "debug", "trace")])
    out += family("hikaricp_connections_usage_seconds", "summary", "Connection usage time", [
        f'hikaricp_connections_usage_seconds_count{{{app},pool="HikariPool-1"}} 1234567',
        f'hikaricp_connections_usage_seconds_sum{{{app},pool="HikariPool-1"}} 2345.678',
        f'hikaricp_connections_usage_seconds_max{{{app},pool="HikariPool-1"}} NaN'])
    out += family("process_uptime_seconds", "gauge", "The uptime of the Java virtual machine",
                  [f"process_uptime_seconds{{{app}}} 864000.123"])
    out += family("process_start_time_seconds", "gauge", "Start time of the process since unix "
                  "epoch.", [f"process_start_time_seconds{{{app}}} 1.709123456789E9"])
    return "\n".join(out) + "\n"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in (("redis_exporter.prom", redis_exporter),
                       ("memcached_exporter.prom", memcached_exporter),
                       ("micrometer.prom", micrometer)):
        text = make(random.Random(name))
        (OUT / name).write_text(text)
        print(f"{OUT / name}: {text.count(chr(10))} lines, {len(text)} bytes")


if __name__ == "__main__":
    main()
