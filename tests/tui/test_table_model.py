"""The fleet table's row model as plain functions: order, filter, groups, children, columns."""

from __future__ import annotations

from dataclasses import replace

from cachetop.fleet import FleetSnapshot, TargetFigures
from cachetop.tui.table_model import (
    COLUMN_SETS,
    View,
    build_model,
    child_key,
    columns_for,
    group_key,
)


def target(name: str, ops: float | None, *, group: str = "", status: str = "up",
           kind: str = "redis", caches: tuple[TargetFigures, ...] = (),
           hits: float | None = None, misses: float | None = None,
           role: str = "") -> TargetFigures:
    hit_ratio = hits / (hits + misses) if hits is not None and misses is not None else None
    return TargetFigures(name=name, kind=kind, address=f"{name}:1", group=group, status=status,
                         ops_per_s=ops, caches=caches, hits_delta=hits, misses_delta=misses,
                         hit_ratio=hit_ratio, role=role)


def snap(*targets: TargetFigures, version: int = 1) -> FleetSnapshot:
    return FleetSnapshot.build(targets, 1.0, 0.0, version)


def keys(view: View, *targets: TargetFigures) -> list[str]:
    return [r.key for r in build_model(snap(*targets), view).rows]


def test_sort_puts_unknown_last_in_both_directions_and_keeps_ties_in_config_order() -> None:
    fleet = (target("a", 5.0), target("b", None), target("c", 9.0), target("d", 5.0),
             target("e", 1.0))
    assert keys(View("ops", reverse=True), *fleet) == ["c", "a", "d", "e", "b"]
    assert keys(View("ops", reverse=False), *fleet) == ["e", "a", "d", "c", "b"]
    assert keys(View(), *fleet) == ["a", "b", "c", "d", "e"]  # no sort: configured order


def test_a_failing_target_sorts_by_its_last_good_figures() -> None:
    down = replace(target("down", None, status="down"), last_good=target("down", 50.0))
    assert keys(View("ops", reverse=True), target("x", 10.0), down) == ["down", "x"]


def test_caches_follow_their_endpoint_sorted_and_the_more_row_is_always_last() -> None:
    caches = (target("small", 1.0, kind="metrics"), target("big", 7.0, kind="metrics"),
              target("19,900 more caches", 1e6, kind="more"))
    app = target("app", 8.0, kind="metrics", caches=caches)
    model = build_model(snap(target("r", 100.0), app), View("ops", reverse=True))
    assert [(r.key, r.kind, r.parent, r.target) for r in model.rows] == [
        ("r", "target", None, "r"),
        ("app", "target", None, "app"),
        (child_key("app", "big"), "child", "app", "app"),
        (child_key("app", "small"), "child", "app", "app"),
        (child_key("app", "\x02more"), "more", "app", "app"),
    ]
    assert model.position(child_key("app", "small")) == 3
    assert model.position("gone") is None


def test_filter_on_a_cache_keeps_its_endpoint_and_not_the_others() -> None:
    app = target("app", 1.0, kind="metrics", caches=(target("sessions", 1.0),))
    assert keys(View(needle="SESS"), target("redis-1", 1.0), app) == [
        "app", child_key("app", "sessions")]
    assert keys(View(needle="nothing"), target("redis-1", 1.0), app) == []


def test_groups_have_totals_of_their_members_and_collapse() -> None:
    # 800 hits and 200 misses in "web" (600/100 + 200/100): 80.0 %; ops 10 + 30.
    fleet = (target("w1", 10.0, group="web", hits=600, misses=100),
             target("s1", 5.0, group="sessions", hits=1, misses=0),
             target("w2", 30.0, group="web", hits=200, misses=100),
             target("w3", None, group="web", status="down"))
    model = build_model(snap(*fleet), View(grouped=True))
    assert [r.key for r in model.rows] == [group_key("sessions"), "s1", group_key("web"),
                                           "w1", "w2", "w3"]
    web = model.rows[model.index[group_key("web")]]
    assert web.kind == "group" and web.members == 3
    assert web.totals is not None
    assert web.totals.ops_per_s == 40.0
    assert web.totals.hit_ratio == 0.8
    assert (web.totals.targets_up, web.totals.targets_total) == (2, 3)
    assert [r.parent for r in model.rows if r.kind == "target"] == [
        group_key("sessions"), group_key("web"), group_key("web"), group_key("web")]

    folded = build_model(snap(*fleet), View(grouped=True, collapsed=frozenset({"web"})))
    assert [r.key for r in folded.rows] == [group_key("sessions"), "s1", group_key("web")]
    assert folded.rows[-1].collapsed


def test_columns_by_width_keep_the_first_figures_at_80_columns() -> None:
    at_80 = columns_for(78)
    assert at_80[0].key == "name"
    assert {"name", "status", "ops", "hit", "p99", "mem_pct", "evict"} <= {c.key for c in at_80}
    assert sum(c.width for c in at_80) <= 78
    wide = columns_for(200)
    assert "role" not in {c.key for c in wide}          # no replicas: no ROLE column
    assert "role" in {c.key for c in columns_for(200, has_replicas=True)}
    assert len(wide) == 16 and sum(c.width for c in wide) <= 200
    for i in range(len(COLUMN_SETS)):                    # every set fits and starts with name
        chosen = columns_for(60, i)
        assert chosen[0].key == "name" and sum(c.width for c in chosen) <= 60
    assert columns_for(78, 1) != columns_for(78, 0)


def test_replicas_are_noticed() -> None:
    assert not build_model(snap(target("m", 1.0, role="master")), View()).has_replicas
    assert build_model(snap(target("m", 1.0, role="master"), target("r", 1.0, role="slave")),
                       View()).has_replicas
