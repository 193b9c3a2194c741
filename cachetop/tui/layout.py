"""Provides fleet_rows: which rows the fleet table shows, in which order (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from cachetop.config import Thresholds
from cachetop.fleet import FleetSnapshot, TargetFigures, aggregate
from cachetop.tui.rows import Row, group_cells, matches, sort_value, target_cells


@dataclass(frozen=True, slots=True)
class View:
    """What the user chose: sort column and direction, filter text, grouping, latency source."""

    sort_column: str | None = None
    reverse: bool = False
    needle: str = ""
    grouped: bool = False
    probe_only: bool = False


def _sorted(targets: list[TargetFigures], view: View) -> list[TargetFigures]:
    if view.sort_column is None:
        return targets
    known = [t for t in targets if sort_value(t, view.sort_column, view.probe_only)[0] == 0]
    unknown = [t for t in targets if sort_value(t, view.sort_column, view.probe_only)[0] == 1]
    known.sort(key=lambda t: sort_value(t, view.sort_column or "", view.probe_only)[1],  # type: ignore[arg-type, return-value]
               reverse=view.reverse)
    return known + unknown


def _with_children(targets: list[TargetFigures], view: View, thresholds: Thresholds,
                   serves: dict[str, tuple[str, ...]]) -> list[Row]:
    rows = []
    for t in targets:
        rows.append(Row(t.name, target_cells(t, thresholds, probe_only=view.probe_only,
                                             serves=serves.get(t.name, ())), t))
        for c in _sorted(list(t.caches), view):
            rows.append(Row(f"{t.name}\x00{c.name}",
                            target_cells(c, thresholds, probe_only=view.probe_only, child=True),
                            c))
    return rows


def filtered(snap: FleetSnapshot, needle: str) -> list[TargetFigures]:
    """The targets the `/` filter leaves: matching, or one of whose caches matches."""
    return [t for t in snap.targets if matches(t, needle)
            or any(matches(c, needle) for c in t.caches)]


def fleet_rows(snap: FleetSnapshot, view: View, thresholds: Thresholds) -> list[Row]:
    """Rows in display order: filtered, sorted, grouped, each endpoint's caches under it."""
    targets = filtered(snap, view.needle)
    serves = snap.serves()
    if not view.grouped:
        return _with_children(_sorted(targets, view), view, thresholds, serves)
    rows: list[Row] = []
    groups: dict[str, list[TargetFigures]] = {}
    for t in targets:
        groups.setdefault(t.group, []).append(t)
    for name in sorted(groups):
        members = groups[name]
        rows.append(Row(f"\x01group\x00{name}", group_cells(name, aggregate(members), thresholds),
                        None))
        rows.extend(_with_children(_sorted(members, view), view, thresholds, serves))
    return rows
