"""A real Redis Cluster in the TUI: one group row with a child row per node (its role), and
the group's instance screen with the topology and its events (a manual failover)."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, TabbedContent

from cachetop.tui.app import CachetopApp
from cachetop.tui.screens.instance import InstanceScreen
from cachetop.tui.widgets.fleet_table import FleetTable
from tests.topology_servers import RedisClusterSet
from tests.tui.pilot import cell, config_for, wait_for
from tests.tui.test_instance_screen import plain_cell, rendered


def test_cluster_rows_and_topology_tab_follow_a_failover(cluster: RedisClusterSet) -> None:
    config = config_for(cluster.url, names=["shop"], interval_s=0.3)
    addresses = [f"127.0.0.1:{n.port}" for n in cluster.nodes]
    old = cluster.primaries()[0]
    new = cluster.replica_of(old)
    old_name, new_name = f"127.0.0.1:{old.port}", f"127.0.0.1:{new.port}"

    async def scenario() -> None:
        app = CachetopApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            table = app.fleet_screen.query_one(FleetTable)
            await wait_for(pilot, lambda: "shop" in table.rows
                           and cell(table, "shop", "status") == "● up 6/6", timeout_s=30)
            assert cell(table, "shop", "kind") == "clust"
            children = {a: cell(table, f"shop\x00{a}", "kind") for a in addresses}
            assert sorted(children.values()) == ["prim"] * 3 + ["repl"] * 3
            assert children[old_name] == "prim" and children[new_name] == "repl"

            table.move_cursor(row=table.get_row_index("shop"))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, InstanceScreen))
            screen = app.screen
            assert isinstance(screen, InstanceScreen)
            await pilot.press("2")
            await wait_for(pilot, lambda: screen.query_one(TabbedContent).active
                           == "tab-topology")
            nodes = screen.query_one("#topology DataTable", DataTable)
            await wait_for(pilot, lambda: len(nodes.rows) == 6)
            summary = rendered(screen.query_one("#topology .pane-note"))
            assert "6/6 nodes up" in summary and "slots covered 16384/16384" in summary
            assert plain_cell(nodes, old_name, "role") == "primary"

            with new.client() as c:
                c.execute_command("CLUSTER", "FAILOVER")
            await wait_for(pilot, lambda: plain_cell(nodes, new_name, "role") == "primary"
                           and plain_cell(nodes, old_name, "role") == "replica", timeout_s=60)
            await wait_for(pilot, lambda: "failover" in rendered(
                screen.query_one("#topology .topology-events")))
            events = rendered(screen.query_one("#topology .topology-events"))
            assert f"{new_name} promoted to primary" in events
            await pilot.press("escape")
            await wait_for(pilot, lambda: cell(table, f"shop\x00{new_name}", "kind")
                           == "prim")
            # The failover is the line under the fleet table too.
            line = rendered(app.fleet_screen.query_one("#events"))
            assert "shop failover" in line and f"{new_name} promoted to primary" in line
            await pilot.press("q")

    asyncio.run(scenario())
