"""Edits on both sides, as Outlook users (the simulator's admin API) and applications (plain SQL)
make them, with a record of what must survive."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from calsync.sim import SimHandle
from faults.harness import sql


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Traffic:
    """Edits on both sides whose results must all survive (no event is edited on both sides,
    which would be a conflict that the policy may resolve against one edit)."""

    sim: SimHandle
    db: Path
    rng: random.Random
    present: dict[str, set[str]] = field(default_factory=dict)
    gone: dict[str, set[str]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)

    def outlook(self, mailbox: str, n: int) -> None:
        start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(
            days=2 + n % 40, hours=n % 7
        )
        subject = f"outlook new {n}"
        self.sim.admin.create_event(
            mailbox,
            subject=subject,
            body=f"made in Outlook {n}",
            location="Room 1",
            start=start.isoformat(),
            end=(start + timedelta(minutes=45)).isoformat(),
            timezone="Europe/Berlin",
            categories=["Blue category"],
        )
        self.present[mailbox].add(subject)
        singles = [
            i
            for i in self.sim.admin.events(mailbox)
            if i["recurrence"] is None
            and i["series_item_id"] is None
            and i["uid"] not in self.touched
            and " new " not in i["subject"]
        ]
        if len(singles) < 2:
            return
        first, second = self.rng.sample(singles, 2)
        self.touched |= {first["uid"], second["uid"]}
        renamed = f"outlook renamed {n}"
        self.sim.admin.patch_event(mailbox, first["item_id"], subject=renamed, location="Moved")
        self.present[mailbox].add(renamed)
        self.present[mailbox].discard(first["subject"])
        self.sim.admin.delete_event(mailbox, second["item_id"])
        self.gone[mailbox].add(second["uid"])

    def application(self, mailbox: str, n: int) -> None:
        start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(
            days=3 + n % 40, hours=n % 5
        )
        subject = f"app new {n}"
        sql(
            self.db,
            "INSERT INTO events (mailbox, subject, body, starts_at, ends_at, show_as, categories)"
            " VALUES (?, ?, ?, ?, ?, 'tentative', '[\"Red category\"]')",
            (
                mailbox,
                subject,
                f"made by an app {n}",
                stamp(start),
                stamp(start + timedelta(minutes=30)),
            ),
        )
        self.present[mailbox].add(subject)
        candidates = [
            (row_id, uid, subject)
            for row_id, uid, subject in sql(
                self.db,
                "SELECT id, uid, subject FROM events WHERE mailbox = ? AND series_id IS NULL AND "
                "recurrence IS NULL AND sync_status = 'synced' AND subject NOT LIKE '% new %' "
                "ORDER BY id",
                (mailbox,),
            )
            if uid not in self.touched
        ]
        if len(candidates) < 2:
            return
        first, second = self.rng.sample(candidates, 2)
        self.touched |= {first[1], second[1]}
        renamed = f"app renamed {n}"
        sql(
            self.db,
            "UPDATE events SET subject = ?, location = 'Desk' WHERE id = ?",
            (renamed, first[0]),
        )
        self.present[mailbox].add(renamed)
        self.present[mailbox].discard(first[2])
        sql(self.db, "DELETE FROM events WHERE id = ?", (second[0],))
        self.gone[mailbox].add(second[1])

    def round(self, n: int) -> None:
        for mailbox in self.present:
            self.outlook(mailbox, n)
            self.application(mailbox, n)

    def lost(self) -> list[str]:
        problems = []
        for mailbox, subjects in self.present.items():
            items = self.sim.admin.events(mailbox)
            local = sql(self.db, "SELECT subject, uid FROM events WHERE mailbox = ?", (mailbox,))
            exchange_subjects = {i["subject"] for i in items}
            local_subjects = {r[0] for r in local}
            problems += [f"{mailbox}: {s!r} lost in Exchange" for s in subjects - exchange_subjects]
            problems += [f"{mailbox}: {s!r} lost locally" for s in subjects - local_subjects]
            back = self.gone[mailbox] & ({i["uid"] for i in items} | {r[1] for r in local})
            problems += [f"{mailbox}: deleted {uid} came back" for uid in back]
        return problems
