"""Provides the Topology tab of a cluster's or Sentinel set's instance screen: its shards with
their primary and replicas, each node's role, slots, link and lag, and the topology's events.

Addresses, shard labels and event texts come from servers: they go through plain() into rich
Text, never into markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from cachetop.fleet import TargetFigures
from cachetop.formatting import percent, rate, size
from cachetop.text_safety import plain
from cachetop.tui.rows import status_text
from cachetop.tui.widgets.instance_detail import DetailPane, num, sync_rows

DIM = "grey50"
EVENTS_SHOWN = 12
TOPOLOGY_COLUMNS = (("node", "NODE"), ("role", "ROLE"), ("shard", "SHARD"), ("slots", "SLOTS"),
                    ("status", "STATUS"), ("link", "LINK"), ("lag", "LAG"), ("ops", "OPS/s"),
                    ("hit", "HIT%"), ("mem", "MEM"))


def _right(value: str, style: str = "") -> Text:
    return Text(value, style=style, justify="right")


def node_cells(node: TargetFigures) -> tuple[Text, ...]:
    facts: Mapping[str, Any] = node.topology or {}
    role = str(facts.get("role", "?"))
    if facts.get("health") == "fail":
        role = f"{role} (failed)"
    link = str(facts.get("link", ""))
    lag = facts.get("lag_bytes")
    return (
        Text(plain(node.name, 60)),
        Text(role, style="bold" if role == "primary" else ""),
        Text(plain(str(facts.get("shard", "")), 40), style=DIM),
        num(facts.get("slots") or None),
        status_text(node),
        Text(plain(link, 20), style="" if link in ("connected", "up", "") else "bold red"),
        _right(size(lag) if isinstance(lag, int) else "—"),
        _right(rate(node.ops_per_s)),
        _right(percent(node.hit_ratio)),
        _right(size(node.memory_used_bytes)),
    )


def summary_text(t: TargetFigures) -> Text:
    topo: Mapping[str, Any] = t.topology or {}
    text = Text()
    up, total = topo.get("nodes_up", 0), topo.get("nodes_total", 0)
    text.append(f"{up}/{total} nodes up", style="green" if up == total else "bold red")
    if topo.get("kind") == "cluster":
        covered = int(topo.get("slots_covered", 0))
        text.append(f"   slots covered {covered}/16384",
                    style="" if covered == 16384 else "bold red")
        text.append(f"   {len(topo.get('shards', []))} shard(s)")
    elif topo.get("kind") == "sentinel":
        text.append(f"   master {plain(str(topo.get('master_name', '')), 40)} at "
                    f"{plain(str(topo.get('master', '')), 60)}")
        ok = topo.get("quorum_ok")
        quorum = plain(str(topo.get("quorum", "")), 100) or "unknown"
        text.append(f"\nquorum: {quorum}", style="" if ok else "bold red")
        sentinels = ", ".join(plain(str(s), 60) for s in topo.get("sentinels", []))
        text.append(f"\nsentinels: {sentinels or '—'}", style=DIM)
    for shard in topo.get("shards", []):
        replicas = ", ".join(plain(str(r), 60) for r in shard.get("replicas", []))
        text.append(f"\n  shard {plain(str(shard.get('shard', '')), 40)}: primary "
                    f"{plain(str(shard.get('primary') or 'none'), 60)}",
                    style="" if shard.get("primary") else "bold red")
        text.append(f"; replicas {replicas or 'none'}", style=DIM)
    failed = ", ".join(plain(str(a), 60) for a in topo.get("failed", []))
    if failed:
        text.append(f"\n  failed: {failed}", style="bold red")
    return text


def events_text(t: TargetFigures) -> Text:
    text = Text("Events", style="bold")
    events = list(t.events)[-EVENTS_SHOWN:]
    if not events:
        text.append("\n  none since cachetop started", style=DIM)
    for event in reversed(events):
        at = float(event.get("time", 0) or 0)
        clock = dt.datetime.fromtimestamp(at).strftime("%H:%M:%S") if at else "--:--:--"
        kind = str(event.get("kind", ""))
        text.append(f"\n  {clock} ", style=DIM)
        text.append(f"{plain(kind, 20):<13}", style="bold yellow" if kind == "failover"
                    else "bold red" if kind == "node-down" else "")
        text.append(plain(str(event.get("text", "")), 200))
    return text


class TopologyPane(DetailPane):
    """The topology at a glance: a summary, one row per node, then the recent events."""

    DEFAULT_CSS = """
    TopologyPane > DataTable { height: auto; max-height: 60%; }
    TopologyPane > .topology-events { height: auto; padding: 0 1; }
    """
    COLUMNS = TOPOLOGY_COLUMNS

    def compose(self) -> ComposeResult:
        yield Static(classes="pane-note")
        yield DataTable(cursor_type="row", zebra_stripes=True)
        yield Static(classes="topology-events")

    def show(self, figures: TargetFigures) -> None:
        shown = figures if figures.live or figures.last_good is None else figures.last_good
        sync_rows(self.table(), [(n.name, node_cells(n)) for n in shown.caches])
        note = summary_text(shown)
        if shown is not figures:
            note.append(f"\ngreyed: last read before the group went {figures.status}", style=DIM)
        self.note(note)
        self.query_one(".topology-events", Static).update(events_text(figures))


def topology_panes() -> list[tuple[str, DetailPane]]:
    return [("Topology", TopologyPane(id="topology"))]
