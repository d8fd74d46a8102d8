"""Issue 10's migration: 20 mailboxes synced two-way over EWS, edits on both sides, the tenant
switched to ``api = "graph"``: the next run links every item (0 created, 0 deleted), the edits
made meanwhile flow, and later edits flow over Graph.

The switch is driven here the way a restart does it (``build_runtime`` on the changed
configuration); ``test_reload_switch.py`` drives the same switch through SIGHUP.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from graph_stack import ews_side, graph_stack, run_all, totals

from calsync.cli import main
from calsync.config import load_config
from calsync.daemon.runtime import Runtime, build_runtime
from calsync.model import Mailbox
from calsync.sim import SimHandle, start_in_thread

MAILBOXES = 20


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with start_in_thread(
        tmp_path_factory.mktemp("sim"), mailboxes=MAILBOXES, events_per_mailbox=6, seed=11
    ) as handle:
        yield handle


def run(runtime: Runtime) -> dict[str, Any]:
    return run_all(runtime, workers=4)


def plain_rows(db: Path, mailbox: str, *, meetings: bool = False) -> list[sqlite3.Row]:
    """Rows of single events (without attendees unless ``meetings``: Graph refuses to write
    meetings by default)."""
    query = "SELECT * FROM events WHERE mailbox = ? AND series_id IS NULL AND recurrence IS NULL"
    if not meetings:
        query += " AND (attendees IS NULL OR attendees = '[]')"
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(query + " ORDER BY id", (mailbox,)).fetchall()


def set_subject(db: Path, row_id: str, subject: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET subject = ? WHERE id = ?", (subject, row_id))


def outlook_item(sim: SimHandle, mailbox: str, uid: str) -> dict[str, Any]:
    return next(e for e in sim.admin.events(mailbox) if e["uid"] == uid)


def every_table(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the transient locks (a dry run takes mailbox locks)."""
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for name in names
            if name != "locks"
        }


def dry_run(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, int]]:
    """``sync --once --dry-run --json``: the planned writes per side, summed over mailboxes."""
    capsys.readouterr()
    code = main(["sync", "--once", "--dry-run", "--json", "--config", str(config)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    out = {side: {"create": 0, "update": 0, "delete": 0} for side in ("exchange", "local")}
    for entry in json.loads(printed)["mailboxes"]:
        for side, counts in out.items():
            for key in counts:
                counts[key] += entry[side][key]
    return out


def snapshot(db: Path) -> dict[str, tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        cur = conn.execute("SELECT id, mailbox, subject, starts_at, ends_at, uid FROM events")
        return {r[0]: tuple(r[1:]) for r in cur.fetchall()}


def both_adapters_read_alike(sim: SimHandle, addresses: list[str]) -> None:
    """The EWS and the Graph mapping give the same model of every item, the ones calsync created
    and updated over EWS included (calsync id, organizer, attendees and their responses)."""
    stack = graph_stack(sim)
    client, ews = ews_side(sim)
    try:
        for address in addresses:
            mailbox = Mailbox(address=address, tenant=stack.tenant["name"])
            read = {
                name: {c.item.data.uid: (c.item.data, c.item.calsync_id)
                       for p in side.fetch_changes(mailbox, None) for c in p.changes if c.item}
                for name, side in (("ews", ews), ("graph", stack.side))
            }  # fmt: skip
            assert read["ews"] == read["graph"]
            assert any(cid for _, cid in read["graph"].values())  # one calsync pushed
    finally:
        client.close()
        stack.close()


def test_switching_a_tenant_from_ews_to_graph_relinks_everything(
    sim: SimHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(sim.info["ca_file"]).parent
    config_file, db = state / "calsync.toml", state / "calsync.db"
    mailboxes = sim.info["tenants"][0]["mailboxes"]
    assert len(mailboxes) == MAILBOXES

    ews = build_runtime(load_config(config_file))
    try:
        run(ews)  # initial pull
        for n, mailbox in enumerate(mailboxes):  # edits on both sides, synced over EWS
            row = plain_rows(db, mailbox, meetings=True)[0]
            set_subject(db, row["id"], f"local edit {n}")
            sim.admin.create_event(mailbox, subject=f"new in Outlook {n}",
                                   start="2027-01-05T10:00:00+00:00",
                                   end="2027-01-05T11:00:00+00:00")  # fmt: skip
            with sqlite3.connect(db) as conn:
                conn.execute(
                    "INSERT INTO events (mailbox, subject, starts_at, ends_at, timezone) "
                    "VALUES (?, ?, '2027-01-06T09:00:00Z', '2027-01-06T10:00:00Z', "
                    "'Europe/Berlin')",
                    (mailbox, f"new locally {n}"),
                )
        first = run(ews)
        assert totals(first, "exchange")["create"] == MAILBOXES
        assert totals(first, "local")["create"] == MAILBOXES
        run(ews)  # settle: our own writes read back
        edits: dict[str, tuple[str, str]] = {}
        for n, mailbox in enumerate(mailboxes):  # made after the last EWS sync
            rows = plain_rows(db, mailbox)
            local, outlook = rows[-1], rows[-2]
            set_subject(db, local["id"], f"pending local {n}")
            item = outlook_item(sim, mailbox, outlook["uid"])
            sim.admin.patch_event(mailbox, item["item_id"], subject=f"pending outlook {n}")
            edits[mailbox] = (local["uid"], outlook["id"])
        before = snapshot(db)
    finally:
        ews.close()
    both_adapters_read_alike(sim, mailboxes[:3])

    text = config_file.read_text(encoding="utf-8").replace('api = "ews"', 'api = "graph"')
    config_file.write_text(text, encoding="utf-8")
    # a dry run of the first Graph round writes nothing (not even the re-linked links) and
    # plans what the real round then does
    stored = every_table(db)
    planned = dry_run(config_file, capsys)
    assert every_table(db) == stored
    sim.admin.reset_stats()
    graph = build_runtime(load_config(config_file))
    try:
        switched = run(graph)
        assert totals(switched, "exchange") == planned["exchange"]
        assert totals(switched, "local") == planned["local"]
        assert totals(switched, "exchange") == {"create": 0, "update": MAILBOXES, "delete": 0}
        # exactly the Outlook edits: no row is rewritten only because Graph renders it
        # differently (both mappings read the same item alike; items untouched since the EWS
        # sync, including those calsync pushed, are echoes)
        assert totals(switched, "local") == {"create": 0, "update": MAILBOXES, "delete": 0}
        assert sum(r.conflicts for r in switched.values()) == 0
        assert not [r.bad_items for r in switched.values() if r.bad_items]
        after = snapshot(db)
        assert set(after) == set(before)  # the same rows: nothing re-created, nothing lost
        requests = sim.admin.stats()["requests"]
        assert not {op for op in requests if not op.startswith("GRAPH")}  # no EWS any more
        for n, mailbox in enumerate(mailboxes):
            local_uid, outlook_row = edits[mailbox]
            assert outlook_item(sim, mailbox, local_uid)["subject"] == f"pending local {n}"
            assert after[outlook_row][1] == f"pending outlook {n}"
            links = graph.store.all_links(mailbox)
            assert all(
                link.item_id and link.item_id.startswith("AAkALg") for link in links.values()
            )
        assert totals(run(graph), "local") == {"create": 0, "update": 0, "delete": 0}

        for n, mailbox in enumerate(mailboxes):  # later edits flow over Graph
            rows = plain_rows(db, mailbox)
            set_subject(db, rows[0]["id"], f"graph local {n}")
            item = outlook_item(sim, mailbox, rows[1]["uid"])
            sim.admin.patch_event(mailbox, item["item_id"], subject=f"graph outlook {n}")
        later = run(graph)
        assert totals(later, "exchange") == {"create": 0, "update": MAILBOXES, "delete": 0}
        assert totals(later, "local") == {"create": 0, "update": MAILBOXES, "delete": 0}
        for n, mailbox in enumerate(mailboxes):
            rows = plain_rows(db, mailbox)
            assert outlook_item(sim, mailbox, rows[0]["uid"])["subject"] == f"graph local {n}"
            assert rows[1]["subject"] == f"graph outlook {n}"
    finally:
        graph.close()


def test_a_series_graph_lists_no_instance_of_survives_the_switch(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Delta lists instances in the window only: a linked series without one (here a yearly
    series whose start matches no date of its rule) is not listed by the full Graph round, yet
    it is still there and must not be deleted locally."""
    with start_in_thread(
        tmp_path_factory.mktemp("sim"), mailboxes=3, events_per_mailbox=60, seed=32
    ) as sim:
        config = Path(sim.info["ca_file"]).parent / "calsync.toml"
        db = config.with_name("calsync.db")
        ews = build_runtime(load_config(config))
        try:
            run(ews)
        finally:
            ews.close()
        before = snapshot(db)
        config.write_text(config.read_text().replace('api = "ews"', 'api = "graph"'))
        graph = build_runtime(load_config(config))
        try:
            switched = run(graph)
            again = run(graph)
        finally:
            graph.close()
        assert totals(switched, "local") == {"create": 0, "update": 0, "delete": 0}
        assert totals(again, "local") == {"create": 0, "update": 0, "delete": 0}
        assert snapshot(db) == before
