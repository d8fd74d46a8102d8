"""The first vertical slice: simulator → `calsync sync --once` → SQLite, over EWS (msal +
exchangelib) and over Graph (msal + httpx): one module per API (the ``api`` fixture).

Checks the rows field by field against the simulator's items and counts the requests.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from calsync.cli import main
from calsync.sim import SimHandle, start_in_thread
from integration.apis import Ops, use_api

MAILBOXES = 20
EVENTS = 15


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory, api: str) -> Iterator[SimHandle]:
    with start_in_thread(
        tmp_path_factory.mktemp("sim"), mailboxes=MAILBOXES, events_per_mailbox=EVENTS, seed=7
    ) as handle:
        use_api(Path(handle.info["ca_file"]).parent / "calsync.toml", api)
        yield handle


def utc_text(iso: str, all_day: bool = False) -> str:
    """The store's form: UTC; an all-day event is midnight UTC of its (local) day."""
    value = datetime.fromisoformat(iso)
    if all_day:
        return value.strftime("%Y-%m-%dT00:00:00Z")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rule_parts(rrule: str | None) -> set[str]:
    return set(rrule.removeprefix("RRULE:").split(";")) if rrule else set()


def rows(db: Path, mailbox: str) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM events WHERE mailbox = ?", (mailbox,)).fetchall()


def sync(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    code = main(["sync", "--once", "--config", str(config), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return {m["address"]: m for m in json.loads(out)["mailboxes"]}


def test_initial_pull_matches_the_simulator_and_costs_the_minimum(
    sim: SimHandle, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(sim.info["ca_file"]).parent
    config, db = state / "calsync.toml", state / "calsync.db"
    sim.admin.reset_stats()
    report = sync(config, capsys)

    stats = sim.admin.stats()["by_mailbox"]
    batch_bound = 0
    for mailbox in sim.info["tenants"][0]["mailboxes"]:
        items = sim.admin.events(mailbox)
        masters = [i for i in items if i["series_item_id"] is None]
        occurrences = [i for i in items if i["series_item_id"] is not None]
        local = rows(db, mailbox)
        top = {r["subject"] + r["starts_at"]: r for r in local if r["series_id"] is None}
        assert len(top) == len(masters)
        assert sum(1 for r in local if r["series_id"] is not None) == len(occurrences)
        assert report[mailbox]["local"] == {"create": len(masters), "update": 0, "delete": 0}
        for item in masters:
            all_day = item["is_all_day"]
            row = top[item["subject"] + utc_text(item["start"], all_day)]
            assert row["ends_at"] == utc_text(item["end"], all_day)
            assert row["location"] == item["location"]
            assert row["uid"] == item["uid"]
            assert bool(row["is_all_day"]) == item["is_all_day"]
            assert row["show_as"] == item["show_as"]
            assert row["sensitivity"] == item["sensitivity"]
            assert json.loads(row["categories"]) == item["categories"]
            assert row["reminder_minutes"] == item["reminder_minutes"]
            assert bool(row["is_cancelled"]) == item["is_cancelled"]
            assert row["timezone"] == item["timezone"] or item["timezone"] == "Asia/Calcutta"
            assert [a["address"] for a in json.loads(row["attendees"])] == [
                a["address"] for a in item["attendees"]
            ]
            rrule = (row["recurrence"] or "").split("\n")[0] or None
            assert rule_parts(rrule) == rule_parts(item["recurrence"])
            exdates = {line.split(":")[1] for line in (row["recurrence"] or "").split("\n")[1:]}
            assert (
                exdates
                == {
                    utc_text(d, all_day).replace("-", "").replace(":", "")
                    for d in item["deleted_occurrences"]
                }
                or all_day
            )
        ops = Ops(api, stats[mailbox])
        assert not ops.others
        if api == "ews":
            # ceil(n/512) SyncFolderItems + ceil(g/100) GetItem (+ exceptions' GetItem)
            assert ops.listings == math.ceil(len(masters) / 512)
            assert ops.reads <= math.ceil(len(masters) / 100) + (1 if occurrences else 0)
        else:
            # every single and master read once, 20 to a $batch (per delta page)
            assert ops.reads == len(masters)
            batch_bound += math.ceil(len(masters) / 20) + ops.listings - 1
    if api == "graph":
        assert sim.admin.stats()["requests"]["GRAPH POST /$batch"] <= batch_bound


def test_an_idle_second_sync_costs_one_request_and_changes_nothing(
    sim: SimHandle, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(sim.info["ca_file"]).parent
    config = state / "calsync.toml"
    sync(config, capsys)
    sim.admin.reset_stats()
    report = sync(config, capsys)
    for mailbox, entry in report.items():
        assert entry["local"] == {"create": 0, "update": 0, "delete": 0}
        assert entry["exchange"] == {"create": 0, "update": 0, "delete": 0}
        ops = Ops(api, sim.admin.stats()["by_mailbox"][mailbox])
        assert (ops.listings, ops.reads, ops.others) == (1, 0, set())
    assert "GRAPH POST /$batch" not in sim.admin.stats()["requests"]


def test_edits_on_both_sides_converge_in_one_run(
    sim: SimHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outlook edits (admin API) and application edits (plain SQL) meet after one sync.

    Only events without attendees are edited: Graph refuses to write meetings (it would mail
    the attendees) unless the mailbox allows it."""
    state = Path(sim.info["ca_file"]).parent
    config, db = state / "calsync.toml", state / "calsync.db"
    sync(config, capsys)
    mailbox = sim.info["tenants"][0]["mailboxes"][5]
    singles = [
        i
        for i in sim.admin.events(mailbox)
        if i["recurrence"] is None and i["series_item_id"] is None and not i["attendees"]
    ]
    outlook_edit, outlook_delete, app_edit, app_delete = singles[:4]
    sim.admin.patch_event(mailbox, outlook_edit["item_id"], subject="Moved by Outlook")
    sim.admin.delete_event(mailbox, outlook_delete["item_id"])
    created = sim.admin.create_event(
        mailbox,
        subject="New in Outlook",
        start="2026-12-10T09:00:00+01:00",
        end="2026-12-10T10:00:00+01:00",
        timezone="Europe/Berlin",
    )
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE events SET subject = 'Renamed by the app' WHERE uid = ? AND series_id IS NULL",
            (app_edit["uid"],),
        )
        conn.execute("DELETE FROM events WHERE uid = ? AND series_id IS NULL", (app_delete["uid"],))
        conn.execute(
            "INSERT INTO events (mailbox, subject, starts_at, ends_at) VALUES "
            "(?, 'Inserted by the app', '2026-12-11T08:00:00Z', '2026-12-11T09:00:00Z')",
            (mailbox,),
        )
    report = sync(config, capsys)[mailbox]
    assert report["local"] == {"create": 1, "update": 1, "delete": 1}
    assert report["exchange"] == {"create": 1, "update": 1, "delete": 1}

    items = {i["subject"]: i for i in sim.admin.events(mailbox) if i["series_item_id"] is None}
    local = {r["subject"]: r for r in rows(db, mailbox) if r["series_id"] is None}
    assert set(items) == set(local)
    assert {
        "Moved by Outlook",
        "New in Outlook",
        "Renamed by the app",
        "Inserted by the app",
    } <= set(items)
    assert outlook_delete["subject"] not in local or outlook_delete["subject"] in {
        i["subject"] for i in items.values() if i["item_id"] != outlook_delete["item_id"]
    }
    assert app_delete["item_id"] not in {i["item_id"] for i in items.values()}
    assert items["New in Outlook"]["item_id"] == created["item_id"]
    assert (
        items["Inserted by the app"]["extended_properties"]["calsync-id"]
        == local["Inserted by the app"]["id"]
    )
