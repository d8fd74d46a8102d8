"""Bad input from the wire, over EWS and over Graph, against the running daemon: an unreadable
item is skipped with an event naming the mailbox and the item while the others sync; an
unreadable response fails that mailbox's run with a clear event while the other mailboxes go on;
huge bodies and odd (real) time zones sync. When the damage stops everything converges.

The simulator's ``corrupt`` fault (see ``calsync.sim.wire_faults``) damages responses: item
modes ``unknown_enum``, ``missing_fields``, ``odd_timezone`` (for the items whose subject
contains "poison"), whole-response modes ``malformed`` (XML / JSON) and ``truncated``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calsync.sim import SimHandle, start_in_thread
from faults.harness import Daemon, differences, rows, sql, wait_for_nothing, write_config

HUGE = 3 * 1024 * 1024  # characters of body text
# half-hour offsets, legacy alias names, no daylight saving (the simulator knows these)
ODD_ZONES = ("America/St_Johns", "Asia/Calcutta", "Europe/Kiev", "Pacific/Honolulu")


@pytest.fixture(params=["ews", "graph"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimHandle]:
    with start_in_thread(tmp_path / "sim", mailboxes=3, events_per_mailbox=8, seed=51) as handle:
        yield handle


def outlook(sim: SimHandle, mailbox: str, subject: str, day: int, **fields: object) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=day)
    zone = str(fields.pop("timezone", "UTC"))
    sim.admin.create_event(
        mailbox,
        subject=subject,
        start=start.isoformat(),
        end=(start + timedelta(minutes=50)).isoformat(),
        timezone=zone,
        **fields,
    )


def nudge(db: Path, mailbox: str, n: int) -> None:
    """An application write: the daemon runs the mailbox within a second (and reads Exchange)."""
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=60 + n)
    sql(
        db,
        "INSERT INTO events (mailbox, subject, starts_at, ends_at) VALUES (?, ?, ?, ?)",
        (mailbox, f"nudge {n}", start.strftime("%Y-%m-%dT%H:%M:%SZ"),
         (start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")),
    )  # fmt: skip


def subjects(db: Path, mailbox: str) -> set[str]:
    return {r["subject"] for r in rows(db, mailbox)}


def test_bad_input_fails_one_item_or_one_run_and_nothing_else(
    sim: SimHandle, api: str, tmp_path: Path
) -> None:
    poisoned, other, third = sim.info["tenants"][0]["mailboxes"]
    config = write_config(sim, tmp_path, api=api, streaming=False)
    db = tmp_path / "calsync.db"
    daemon = Daemon(config, tmp_path / "daemon.log")
    n = 0
    try:
        daemon.wait(
            lambda: (
                {e["mailbox"] for e in daemon.since(0, "sync_finished")} >= {poisoned, other, third}
            ),
            60,
            "the initial sync",
        )
        # huge bodies and real time zones with odd offsets sync as they are
        outlook(sim, other, "huge body", 3, body="x" * HUGE)
        for day, zone in enumerate(ODD_ZONES, start=4):
            outlook(sim, other, f"zone {zone}", day, timezone=zone)
        n += 1
        nudge(db, other, n)
        daemon.wait(
            lambda: {"huge body", *(f"zone {z}" for z in ODD_ZONES)} <= subjects(db, other),
            30,
            "the huge body and the odd zones",
        )
        body = sql(db, "SELECT length(body) FROM events WHERE subject = 'huge body'")
        assert body == [(HUGE,)]

        # item modes: the poisoned item is skipped and named (or, for an unknown enum value or
        # zone, read with a fallback), its neighbours sync
        outcome: dict[str, str] = {}
        for day, mode in enumerate(("unknown_enum", "missing_fields", "odd_timezone"), start=10):
            sim.admin.set_faults(corrupt={"mode": mode, "mailboxes": [poisoned], "match": "poison"})
            mark = daemon.mark()
            outlook(sim, poisoned, f"poison {mode}", day)
            outlook(sim, poisoned, f"fine {mode}", day + 1)
            outlook(sim, other, f"elsewhere {mode}", day)
            n += 1
            nudge(db, poisoned, n)
            nudge(db, other, n)
            daemon.wait(
                lambda mode=mode: (
                    f"fine {mode}" in subjects(db, poisoned)
                    and f"elsewhere {mode}" in subjects(db, other)
                ),
                30,
                f"the other items ({mode})",
            )
            skipped = daemon.since(mark, "item_skipped", mailbox=poisoned)
            if skipped:
                assert skipped[0].get("item_id") and skipped[0].get("error_code"), skipped
                assert f"poison {mode}" not in subjects(db, poisoned)
                outcome[mode] = "skipped"
            else:
                assert f"poison {mode}" in subjects(db, poisoned), (
                    f"{mode}: neither read nor skipped"
                )
                outcome[mode] = "read with a fallback"
        assert outcome["missing_fields"] == "skipped", outcome  # no start: nothing to fall back on

        # whole-response modes: the poisoned mailbox's run fails clearly, the others go on
        for mode in ("malformed", "truncated"):
            sim.admin.set_faults(corrupt={"mode": mode, "mailboxes": [poisoned]})
            mark = daemon.mark()
            outlook(sim, poisoned, f"unseen {mode}", 20)
            outlook(sim, other, f"seen {mode}", 20)
            n += 1
            nudge(db, poisoned, n)
            nudge(db, other, n)
            failed = daemon.wait_event("sync_failed", 30, mark, mailbox=poisoned)
            assert failed["error_code"] and failed["error"], failed
            assert failed["retry_in_s"] > 0
            daemon.wait(
                lambda mode=mode: f"seen {mode}" in subjects(db, other), 30, f"{other} ({mode})"
            )
            assert daemon.popen.poll() is None

        # the damage stops and the poisoned items change again: everything converges
        sim.admin.clear_faults()
        for item in sim.admin.events(poisoned):
            if item["subject"].startswith("poison"):
                sim.admin.patch_event(
                    poisoned, item["item_id"], subject=f"healed {item['subject']}"
                )
        n += 1
        for mailbox in (poisoned, other, third):
            nudge(db, mailbox, n)
        wait_for_nothing(
            lambda: differences(sim, db, [poisoned, other, third], api),
            60,
            f"convergence (item modes: {outcome})",
        )
        assert daemon.stop() == 0
    finally:
        daemon.close()
    assert not [e for e in daemon.events if e.get("event") == "internal_error"]
