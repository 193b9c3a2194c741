"""Provides the fleet table's row model: which rows, in which order, which columns (pure).

The model is computed once per snapshot version (and per change of the user's view), off the
paint path: filtering, sorting and grouping cost O(n log n) here, and the widget then draws only
the ~40 rows on screen, making their cells when a line is painted. Nothing here imports Textual,
so the order, the grouping and the column choice are tested as plain functions.

A row is generic, so other views (cluster topology, …) add rows the same way. Each row has:

- `kind`: `target` (a configured target), `child` (one cache of an endpoint), `more` (an
  endpoint's caches that got no row of their own, as one row: the engine sends it as a cache
  whose kind is `more`), `group` (totals of the targets under it);
- `key`: its identity across snapshots (the cursor and selection follow it through re-sorts);
- `parent`: the key of the row it sits under (a child's target; a target's group), or None;
- `target`: the configured target that Enter and actions address (None for a group);
- `figures` (target, child, more) or `totals` (group): what its cells show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

# The fleet table's widget (and StartScreen, the first frame) import this module before the
# figures' one is needed: that loads with the first model built (build_model).
if TYPE_CHECKING:
    from cachetop.fleet import FleetFigures, FleetSnapshot, Latency, TargetFigures

RowKind = Literal["target", "child", "more", "group"]
MORE_KIND = "more"  # TargetFigures.kind of an endpoint's "N more caches" entry
GROUP_PREFIX = "\x01group\x00"  # group keys cannot collide with a target's name


@dataclass(frozen=True, slots=True)
class View:
    """What the user chose: sort column and direction, filter text, grouping (and which groups
    are collapsed), latency source, and which column set is on screen."""

    sort_column: str | None = None
    reverse: bool = False
    needle: str = ""
    grouped: bool = False
    probe_only: bool = False
    collapsed: frozenset[str] = frozenset()
    column_set: int = 0


@dataclass(frozen=True, slots=True)
class TableRow:
    key: str
    kind: RowKind
    parent: str | None = None
    target: str | None = None
    figures: TargetFigures | None = None
    totals: FleetFigures | None = None
    label: str = ""          # a group's name
    members: int = 0         # a group's targets (after the filter)
    collapsed: bool = False  # a group whose rows are hidden


@dataclass(frozen=True, slots=True)
class TableModel:
    """The rows in display order for one snapshot version and one view."""

    rows: tuple[TableRow, ...] = ()
    version: int = -1
    view: View = field(default_factory=View)
    has_replicas: bool = False
    index: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def position(self, key: str | None) -> int | None:
        return None if key is None else self.index.get(key)


def group_key(name: str) -> str:
    return GROUP_PREFIX + name


def child_key(parent: str, cache: str) -> str:
    return f"{parent}\x00{cache}"


# -- sorting -----------------------------------------------------------------------------------

def latency_of(f: TargetFigures, probe_only: bool) -> tuple[Latency, str]:
    """The latency a row shows: the server's where it has one, else the probe's (or forced)."""
    if not probe_only and f.server_latency.known:
        return f.server_latency, "srv" if f.server_latency.source == "interval" else "srv*"
    if f.probe_latency.known:
        return f.probe_latency, "probe"
    return f.probe_latency, "—"


def _shown(f: TargetFigures) -> TargetFigures:
    return f if f.live or f.last_good is None else f.last_good


Getter = Callable[["TargetFigures", bool], object]
_SORT: dict[str, Getter] = {
    "name": lambda f, p: f.name.lower(),
    "kind": lambda f, p: f.kind,
    "status": lambda f, p: f.status,
    "role": lambda f, p: f.role or None,
    "ops": lambda f, p: _shown(f).ops_per_s,
    "hit": lambda f, p: _shown(f).hit_ratio,
    "p50": lambda f, p: latency_of(_shown(f), p)[0].p50_s,
    "p95": lambda f, p: latency_of(_shown(f), p)[0].p95_s,
    "p99": lambda f, p: latency_of(_shown(f), p)[0].p99_s,
    "src": lambda f, p: None,
    "mem": lambda f, p: _shown(f).memory_used_bytes,
    "limit": lambda f, p: _shown(f).memory_max_bytes,
    "mem_pct": lambda f, p: _shown(f).memory_ratio,
    "evict": lambda f, p: _shown(f).evictions_per_s,
    "exp": lambda f, p: _shown(f).expirations_per_s,
    "conn": lambda f, p: _shown(f).connections,
    "keys": lambda f, p: _shown(f).keys,
}


def sort_targets(targets: Iterable[TargetFigures], column: str | None, reverse: bool,
                 probe_only: bool = False) -> list[TargetFigures]:
    """Sorted by `column`; unknown values last whatever the direction; ties keep the given
    (configured) order, so equal rows never swap from one snapshot to the next."""
    items = list(targets)
    getter = _SORT.get(column or "")
    if getter is None:
        return items
    known: list[tuple[object, TargetFigures]] = []
    unknown: list[TargetFigures] = []
    for t in items:
        value = getter(t, probe_only)
        if value is None:
            unknown.append(t)
        else:
            known.append((value, t))
    known.sort(key=lambda pair: pair[0], reverse=reverse)  # type: ignore[arg-type, return-value]
    return [t for _, t in known] + unknown


# -- filtering ---------------------------------------------------------------------------------

def matches(f: TargetFigures, needle: str) -> bool:
    """The `/` filter: a case-insensitive substring of name, kind, group, status or address."""
    if not needle:
        return True
    needle = needle.lower()
    return any(needle in text.lower() for text in (f.name, f.kind, f.group, f.status,
                                                    f.address))


def _kept(t: TargetFigures, needle: str) -> bool:
    return matches(t, needle) or any(matches(c, needle) for c in t.caches
                                     if c.kind != MORE_KIND)


# -- the rows ----------------------------------------------------------------------------------

def _target_rows(t: TargetFigures, view: View, parent: str | None) -> list[TableRow]:
    rows = [TableRow(t.name, "target", parent, t.name, t)]
    caches = [c for c in t.caches if c.kind != MORE_KIND]
    more = [c for c in t.caches if c.kind == MORE_KIND]
    for c in sort_targets(caches, view.sort_column, view.reverse, view.probe_only):
        rows.append(TableRow(child_key(t.name, c.name), "child", t.name, t.name, c))
    for c in more:  # always last: it is the rest, whatever the order of the others
        rows.append(TableRow(child_key(t.name, "\x02more"), "more", t.name, t.name, c))
    return rows


def build_model(snap: FleetSnapshot, view: View) -> TableModel:
    """Rows in display order: filtered, sorted, grouped, each endpoint's caches under it."""
    targets = [t for t in snap.targets if _kept(t, view.needle)]
    rows: list[TableRow] = []
    if not view.grouped:
        for t in sort_targets(targets, view.sort_column, view.reverse, view.probe_only):
            rows.extend(_target_rows(t, view, None))
    else:
        from cachetop.fleet import aggregate

        groups: dict[str, list[TargetFigures]] = {}
        for t in targets:
            groups.setdefault(t.group, []).append(t)
        for name in sorted(groups):
            members, key = groups[name], group_key(name)
            collapsed = name in view.collapsed
            rows.append(TableRow(key, "group", None, None, totals=aggregate(members),
                                 label=name, members=len(members), collapsed=collapsed))
            if not collapsed:
                for t in sort_targets(members, view.sort_column, view.reverse,
                                      view.probe_only):
                    rows.extend(_target_rows(t, view, key))
    has_replicas = any(t.role in ("slave", "replica") for t in snap.targets)
    return TableModel(tuple(rows), snap.version, view, has_replicas,
                      {r.key: i for i, r in enumerate(rows)})


# -- columns by width --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int  # one wider than the widest value: right-aligned figures keep a space
    right: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("name", "NAME", 21, right=False), Column("kind", "KIND", 6, right=False),
    Column("status", "STATUS", 14, right=False), Column("role", "ROLE", 24, right=False),
    Column("ops", "OPS/s", 8), Column("hit", "HIT%", 7), Column("p50", "P50ms", 8),
    Column("p95", "P95ms", 8), Column("p99", "P99ms", 8), Column("src", "LAT", 6, right=False),
    Column("mem", "MEM", 8), Column("limit", "LIMIT", 8), Column("mem_pct", "MEM%", 5),
    Column("evict", "EVICT/s", 8), Column("exp", "EXP/s", 7), Column("conn", "CONN", 6),
    Column("keys", "KEYS", 7),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
BY_KEY = {c.key: c for c in COLUMNS}
NAME_MAX = 40  # the name column takes what is left over, up to this

# Column sets the `c` key cycles through: each a priority order; as many as fit are shown, in
# the table's own left-to-right order. The first is the overview a person needs first.
COLUMN_SETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("overview", ("name", "status", "ops", "hit", "p99", "mem_pct", "evict", "role", "kind",
                  "mem", "src", "keys", "conn", "p50", "p95", "limit", "exp")),
    ("latency", ("name", "status", "p50", "p95", "p99", "src", "ops", "hit", "kind", "role",
                 "conn")),
    ("memory", ("name", "status", "mem", "limit", "mem_pct", "evict", "exp", "keys", "kind",
                "role", "conn", "ops")),
)


def columns_for(width: int, column_set: int = 0, *,
                has_replicas: bool = False) -> tuple[Column, ...]:
    """The columns that fit in `width` cells, by the set's priority, in table order; the name
    column widens into what is left. ROLE only when the fleet has replicas."""
    _, order = COLUMN_SETS[column_set % len(COLUMN_SETS)]
    chosen: set[str] = set()
    used = 0
    for key in order:
        if key == "role" and not has_replicas:
            continue
        w = BY_KEY[key].width
        if used + w > width and key != "name":
            continue  # a narrower column further down the order may still fit
        chosen.add(key)
        used += w
    spare = max(0, width - used)
    out = []
    for c in COLUMNS:
        if c.key in chosen:
            if c.key == "name" and spare:
                c = Column(c.key, c.label, min(NAME_MAX, c.width + spare), c.right)
            out.append(c)
    return tuple(out)


def rows_of(model: TableModel, kinds: Sequence[RowKind]) -> list[TableRow]:
    return [r for r in model.rows if r.kind in kinds]
