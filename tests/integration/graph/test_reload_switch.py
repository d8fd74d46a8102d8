"""SIGHUP switch of a tenant between ``api = "ews"`` and ``"graph"``: ``next_generation`` builds
the other adapter's side for that tenant (its old clients retired), and the next runs sync the
tenant's mailboxes over Graph without creating or deleting anything."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_stack import run_all, totals

from calsync.config import load_config
from calsync.daemon.reload import Generation, next_generation
from calsync.daemon.runtime import Runtime, TenantSides, build_runtime
from calsync.daemon.service import Daemon
from calsync.ews.calendar import EwsExchangeSide
from calsync.ews.client import EwsClient
from calsync.graph import GraphClient
from calsync.graph.migrate import RelinkingSide
from calsync.sim import SimHandle, start_in_thread

MAILBOXES = 4


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with start_in_thread(
        tmp_path_factory.mktemp("sim"), mailboxes=MAILBOXES, events_per_mailbox=5, seed=23
    ) as handle:
        yield handle


def run(runtime: Runtime) -> dict[str, Any]:
    return run_all(runtime, workers=2)


def switch(config_file: Path, old: str, new: str) -> None:
    text = config_file.read_text(encoding="utf-8")
    assert f'api = "{old}"' in text
    config_file.write_text(text.replace(f'api = "{old}"', f'api = "{new}"'), encoding="utf-8")


def test_sighup_switches_a_tenant_to_graph_and_back(sim: SimHandle) -> None:
    state = Path(sim.info["ca_file"]).parent
    config_file = state / "calsync.toml"
    tenant = sim.info["tenants"][0]["name"]
    first_runtime = build_runtime(load_config(config_file))
    generations = [Generation.first(first_runtime.config, first_runtime)]
    retired: list[EwsClient | GraphClient] = []
    try:
        run(first_runtime)
        assert totals(run(first_runtime), "local") == {"create": 0, "update": 0, "delete": 0}

        # an unchanged configuration keeps the clients and the side
        same, change, gone = next_generation(generations[0], load_config(config_file))
        assert (change.changed_tenants, change.switched_tenants, gone) == ([], [], [])
        assert same.runtime.exchange is first_runtime.exchange
        assert same.runtime.clients[tenant] is first_runtime.clients[tenant]

        switch(config_file, "ews", "graph")
        sim.admin.reset_stats()
        graph, change, gone = next_generation(generations[0], load_config(config_file))
        generations.append(graph)
        retired += gone
        assert change.switched_tenants == [tenant]
        assert tenant in change.changed_tenants
        assert gone == [first_runtime.clients[tenant]]  # the old EWS client, closed at shutdown
        exchange = graph.runtime.exchange
        assert isinstance(exchange, TenantSides)
        assert isinstance(exchange.sides[tenant], RelinkingSide)
        assert set(graph.runtime.graph_clients) == {tenant}
        assert graph.runtime.streaming_clients() == {}  # Graph tenants are not streamed over EWS
        assert first_runtime.exchange is not exchange  # runs in progress keep their own side

        switched = run(graph.runtime)
        assert (totals(switched, "exchange")["create"], totals(switched, "exchange")["delete"]) == (
            0,
            0,
        )
        local = totals(switched, "local")
        assert (local["create"], local["delete"]) == (0, 0)
        requests = sim.admin.stats()["requests"]
        assert requests and all(op.startswith("GRAPH") for op in requests), requests
        steady = run(graph.runtime)
        assert totals(steady, "exchange") == {"create": 0, "update": 0, "delete": 0}
        assert totals(steady, "local") == {"create": 0, "update": 0, "delete": 0}

        # and back: the tenant's Graph client is retired and an EWS side serves it again
        switch(config_file, "graph", "ews")
        back, change, gone = next_generation(graph, load_config(config_file))
        generations.append(back)
        retired += gone
        assert change.switched_tenants == [tenant]
        graph_client = graph.runtime.graph_clients[tenant]
        assert graph_client in gone and graph.runtime.clients[tenant] in gone
        assert back.runtime.graph_clients == {}
        side = back.runtime.exchange
        assert isinstance(side, TenantSides) and isinstance(side.sides[tenant], EwsExchangeSide)
        assert back.runtime.streaming_clients() == {tenant: back.runtime.clients[tenant]}
        sim.admin.reset_stats()
        again = run(back.runtime)  # the Graph delta link is no EWS state: a full EWS round
        assert totals(again, "exchange") == {"create": 0, "update": 0, "delete": 0}
        assert totals(again, "local") == {"create": 0, "update": 0, "delete": 0}
        requests = sim.admin.stats()["requests"]
        assert requests and not [op for op in requests if op.startswith("GRAPH")], requests
    finally:
        if 'api = "graph"' in config_file.read_text(encoding="utf-8"):
            switch(config_file, "graph", "ews")
        for client in retired:
            client.close()
        last = generations[-1].runtime
        for ews_client in last.clients.values():
            ews_client.close()
        last.close()


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        tick.wait(0.05)


def test_the_daemon_syncs_a_switched_tenant_over_graph_at_once(tmp_path: Path) -> None:
    with start_in_thread(tmp_path, mailboxes=3, events_per_mailbox=4, seed=29) as sim:
        config_file = tmp_path / "calsync.toml"
        text = config_file.read_text(encoding="utf-8")
        assert "[daemon]" not in text and 'mode = "streaming"' in text
        # no streaming (its catch-up runs would blur which run the reload started), no polls
        text = text.replace('[subscriptions]\nmode = "streaming"', '[subscriptions]\nmode = "off"')
        config_file.write_text(text + "\n[daemon]\npoll_interval = 3600\n", encoding="utf-8")
        daemon = Daemon(load_config(config_file), heartbeat_s=0.05, tick_s=0.02)
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(daemon.run(install_signals=False)))
        thread.start()
        try:
            assert daemon.started.wait(30)
            store = daemon.generation.runtime.store
            addresses = sorted(daemon.generation.mailboxes)

            def synced() -> bool:
                done = {s.address for s in store.mailbox_statuses() if s.last_success is not None}
                return done >= set(addresses)

            wait_until(synced)  # the first (EWS) run of every mailbox
            assert daemon.jobs is not None
            assert daemon.jobs.wait_idle(30)
            items = {a: sorted(e["item_id"] for e in sim.admin.events(a)) for a in addresses}
            before = rows(tmp_path / "calsync.db")

            switch(config_file, "ews", "graph")
            sim.admin.reset_stats()
            daemon.request_reload()

            def fetched_over_graph() -> bool:
                by_mailbox = sim.admin.stats()["by_mailbox"]
                return all(
                    any(
                        op.startswith("GRAPH GET") and "delta" in op for op in by_mailbox.get(a, {})
                    )
                    for a in addresses
                )

            wait_until(fetched_over_graph)  # due at once, not in an hour
            assert daemon.jobs.wait_idle(30)
            assert set(daemon.generation.runtime.graph_clients) == {"contoso"}
            requests = sim.admin.stats()["requests"]
            assert requests and all(op.startswith("GRAPH") for op in requests), requests
            assert {a: sorted(e["item_id"] for e in sim.admin.events(a)) for a in addresses} == (
                items
            )  # nothing created or deleted in Outlook
            assert rows(tmp_path / "calsync.db") == before  # nor locally
            assert {s.state for s in store.mailbox_statuses()} == {"healthy"}
        finally:
            daemon.request_stop("test")
            thread.join(30)
    assert codes == [0]


def rows(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM events")}
