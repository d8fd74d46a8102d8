"""`calsync run` with streaming notifications on: groups, edit latency, idle cost, dropped streams.

30 mailboxes with `max_subscriptions_per_connection = 10` (3 groups), `poll_interval = 10`:
- three subscription groups open, none above the limit (simulator stats);
- idle mailboxes with a healthy subscription cost no SyncFolderItems over two poll intervals;
- Outlook edits reach the store through a notification, well before the poll interval;
- edits made while every stream is dropped all reach the store after reconnection.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_proc import Proc

from calsync.sim import SimHandle, start_in_thread

pytestmark = pytest.mark.acceptance

MAILBOXES = 30
POLL = 10


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with start_in_thread(
        tmp_path_factory.mktemp("sim"),
        mailboxes=MAILBOXES,
        events_per_mailbox=3,
        seed=5,
        heartbeat_s=1.0,
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def daemon(sim: SimHandle) -> Iterator[Proc]:
    state = Path(sim.info["ca_file"]).parent
    text = (state / "calsync.toml").read_text()
    text = text.replace(
        'mode = "streaming"', 'mode = "streaming"\nmax_subscriptions_per_connection = 10'
    )
    text = text.replace(
        "[logging]",
        f"[daemon]\npoll_interval = {POLL}\npoll_jitter = 1\n"
        "notification_debounce_ms = 100\n\n[logging]",
    )
    config = state / "streaming.toml"
    config.write_text(text)
    config.chmod(0o600)
    proc = Proc(["run", "--config", str(config)])
    try:
        proc.wait(
            lambda: len({e["mailbox"] for e in proc.since(0, "sync_finished")}) == MAILBOXES,
            60,
            "a first sync of every mailbox",
        )
        proc.wait(
            lambda: len(proc.since(0, "subscription_group_opened")) == 3,
            60,
            "three subscription groups",
        )
        yield proc
        assert proc.stop() == 0
    finally:
        proc.close()


def subject_in_store(db: Path, mailbox: str, subject: str) -> bool:
    with closing(sqlite3.connect(db)) as conn:
        return (
            conn.execute(
                "SELECT 1 FROM events WHERE mailbox = ? AND subject = ?", (mailbox, subject)
            ).fetchone()
            is not None
        )


def test_three_groups_within_the_limit(sim: SimHandle, daemon: Proc) -> None:
    streaming = sim.admin.stats()["streaming"]
    assert streaming["open_connections"] == 3
    assert streaming["max_subscriptions_on_one_connection"] == 10
    sizes = sorted(e["size"] for e in daemon.since(0, "subscription_group_opened"))
    assert sizes == [10, 10, 10]


def test_idle_mailboxes_cost_no_sync_between_polls(sim: SimHandle, daemon: Proc) -> None:
    # each new subscription triggers a catch-up sync (changes between the first sync and the
    # subscription); wait until every mailbox's next poll is the long, healthy-subscription
    # one: from then on only notifications may cause a sync
    db = Path(sim.info["ca_file"]).parent / "calsync.db"

    runs = {"count": -1, "changed": time.monotonic()}

    def settled() -> bool:
        with closing(sqlite3.connect(db)) as conn:
            soon = conn.execute(
                "SELECT count(*) FROM mailboxes WHERE next_due IS NULL OR next_due < ?",
                ((datetime.now(UTC) + timedelta(seconds=10 * POLL)).strftime("%Y-%m-%dT%H:%M:%S"),),
            ).fetchone()[0]
        # the catch-up runs that new subscriptions ask for (and a run re-armed behind one that
        # was under way) may still be due although every next_due is far: wait until the runs
        # have stopped coming for a second, ten times the notification debounce
        finished = len(daemon.since(0, "sync_finished"))
        if finished != runs["count"]:
            runs.update(count=finished, changed=time.monotonic())
        return soon == 0 and time.monotonic() - runs["changed"] >= 1.0

    daemon.wait(settled, 60, "every mailbox settled on its healthy-subscription schedule")
    sim.admin.reset_stats()
    window = 2 * POLL + 2
    time.sleep(window)  # a measurement window, not synchronisation
    stats = sim.admin.stats()
    assert stats["requests"].get("SyncFolderItems", 0) == 0, stats["by_mailbox"]


def test_outlook_edits_arrive_by_notification(sim: SimHandle, daemon: Proc) -> None:
    db = Path(sim.info["ca_file"]).parent / "calsync.db"
    mailboxes = sim.info["tenants"][0]["mailboxes"]
    latencies = []
    for n, mailbox in enumerate(mailboxes[:10]):
        item = next(i for i in sim.admin.events(mailbox) if i["series_item_id"] is None)
        mark = daemon.mark()
        started = time.monotonic()
        sim.admin.patch_event(mailbox, item["item_id"], subject=f"streamed {n}")
        daemon.wait(
            lambda m=mailbox, k=mark: daemon.since(k, "sync_finished", mailbox=m),
            POLL,
            f"the run that brings the edit of {mailbox}",
        )
        latencies.append(time.monotonic() - started)
        assert subject_in_store(db, mailbox, f"streamed {n}")
    assert max(latencies) < POLL, latencies  # the notification, not the poll, brought them


def test_dropped_streams_lose_no_edit(sim: SimHandle, daemon: Proc) -> None:
    db = Path(sim.info["ca_file"]).parent / "calsync.db"
    mailboxes = sim.info["tenants"][0]["mailboxes"][10:16]
    sim.admin.set_faults(drop_streams=True)
    for n, mailbox in enumerate(mailboxes):
        sim.admin.create_event(
            mailbox,
            subject=f"while dropped {n}",
            start="2026-12-20T10:00:00+00:00",
            end="2026-12-20T11:00:00+00:00",
            timezone="UTC",
        )
    daemon.wait(
        lambda: all(subject_in_store(db, m, f"while dropped {n}") for n, m in enumerate(mailboxes)),
        30,
        "every edit made while the streams were down",
    )
