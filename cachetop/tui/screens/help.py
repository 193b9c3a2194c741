"""Provides HelpScreen: every key binding and what each figure means."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("enter", "drill into the selected instance (escape: back)"),
    ("↑ ↓ PgUp PgDn", "move the selection"),
    ("s / S", "sort by the next / previous column; r reverses"),
    ("click a header", "sort by that column"),
    ("/", "filter by name, kind, group, status or address (escape clears)"),
    ("g", "group rows by their config group (with group totals); enter on a group row folds "
          "or unfolds it (▾ / ▸)"),
    ("c", "cycle the column sets: overview, latency, memory (as many columns as the "
          "terminal's width holds, most important first)"),
    ("l", "latency: server (where known) or probe for the whole table"),
    ("e", "events: status changes (with the reason), restarts and stats resets, thresholds "
          "crossed and cleared, actions run (from the audit log); / filters by target, enter "
          "opens it. The latest three are under the table; an instance's are in its Events tab"),
    ("space . , < > x j", "cachetop replay: play / pause, step a frame forward / back, a minute "
                          "back / forward, speed 1×/10×/60×, jump to a time; actions are off"),
    ("p", "pause / resume polling"),
    ("+ / -", "poll more / less often"),
    ("R", "re-read the config file and its password files (new credentials apply at once; "
          "what changed is said), then poll every target now"),
    ("1-9, [ ]", "instance screen: jump to a tab, previous / next tab"),
    ("o (Clients tab)", "Redis: order the top clients by memory, idle time or commands/s"),
    ("/ (instance)", "search the raw INFO, stats or metrics"),
    ("f", "flush keys by pattern (Redis SCAN + UNLINK; memcached metadump): preview, "
          "confirm, progress, escape cancels"),
    ("F", "flush the database (Redis FLUSHDB ASYNC, memcached flush_all)"),
    ("t", "tags: the tag indexes, most live keys first (s: by name); enter previews, invalidate"),
    ("d", "delete keys: enter adds the typed key to a ticked list and previews; enter on an "
          "empty line deletes the ticked keys"),
    ("k", "instance screen: the Keys tab (memory and keys per prefix, TTL mix, biggest and hot "
          "keys; memcached: hit % per prefix)"),
    ("s / S, x (Keys tab)", "analyse a sample of keys (or resume) / every key, cancel; D cycles "
                            "the prefix depth 1-3"),
    ("f (Keys tab)", "flush the selected prefix: the flush dialog with prefix* filled in"),
    ("e (Keys tab)", "memcached: asks, then turns stats detail on for hit ratios per prefix "
                     "(off again when cachetop stops)"),
    ("?", "this help"),
    ("q", "quit"),
)
FIGURES = (
    ("OPS/s", "commands (Redis), command counters (Memcached) or lookups (endpoint) per "
              "second over the last interval; cachetop's own commands are not counted"),
    ("fleet header", "servers: Redis and memcached (each once); app caches: lookups and hit "
                     "ratio as the applications see them, memory and evictions only of caches "
                     "that live in the apps (→ a server: counted there). With a filter, the "
                     "rows it leaves"),
    ("HIT%", "hits / (hits + misses) over the last interval, never since start; '—' means "
             "no lookups. Groups and the fleet weight it by traffic"),
    ("P50/P95/P99, LAT", "latency in ms; LAT says whose. srv: the server's own, Redis ≥ 7 "
                         "LATENCY HISTOGRAM or the endpoint's histogram, over the interval "
                         "(srv*: as the endpoint reports it). probe: cachetop's own PING / "
                         "version round trips over the last 60 s"),
    ("KIND", "redis (or valkey, dfly: Dragonfly, keydb), memc (memcached), prom (a metrics "
             "endpoint), cache (one of its caches), more (an endpoint's other caches, summed: "
             "the busiest 100 get rows), clust / sntl (a Redis Cluster or Sentinel set), "
             "prim / repl (one of its nodes: primary, replica)"),
    ("MEM / LIMIT / MEM%", "used memory, maxmemory (or limit_maxbytes), and their ratio; "
                           "LIMIT none: Redis without maxmemory, MEM% is then '—' (the "
                           "instance screen shows the share of the host's memory)"),
    ("EVICT/s, EXP/s", "keys evicted for room, and expired by TTL, per second"),
    ("CONN, KEYS", "client connections; keys (Redis Σ dbN:keys) or items (Memcached)"),
    ("KEYS tab", "sampled figures are estimates: ~value ±margin, a 95 % interval; a kind of key "
                 "rarer than the stated bound may be missing from a sample (S reads every key)"),
    ("STATUS", "up, ↺ restarted (a restart or stats reset: that interval has no rates), "
               "◌ connecting… (not polled yet), "
               "… loading N% (dataset load after a restart), ■ busy (a script holds the "
               "server), ✖ down / timeout / auth-failed / tls-error / bad-data / too-large; "
               "⚠ degraded (a command not permitted or disabled on the server: the reasons "
               "are on the selection line); !tls verification off. Grey figures are the "
               "last good ones of a failing target"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "close", id="help.close")]

    def compose(self) -> ComposeResult:
        keys = Table(title="Keys", show_header=False, box=None, padding=(0, 2))
        for key, meaning in KEYS:
            keys.add_row(Text(key, style="bold cyan"), Text(meaning))
        figures = Table(title="Figures", show_header=False, box=None, padding=(0, 2))
        for name, meaning in FIGURES:
            figures.add_row(Text(name, style="bold cyan"), Text(meaning))
        with VerticalScroll(id="help-body"):
            yield Static(keys)
            yield Static(figures)
            yield Static(Text("escape closes", style="grey50"))

    def action_close(self) -> None:
        self.dismiss(None)
