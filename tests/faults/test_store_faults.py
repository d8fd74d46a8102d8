"""The store fails under the running daemon: the disk fills up, the file system turns read-only,
another process locks the database. Each gives a clear error event, the daemon keeps running,
the database stays intact (``PRAGMA integrity_check``) and the sync resumes once the cause is
gone, with nothing lost.

The store lives on a small tmpfs mounted for the test (disk full = a filler file takes the rest;
read-only = ``mount -o remount,ro``): this needs root (CAP_SYS_ADMIN); without it the disk-full
and read-only cases are skipped, the lock case still runs.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calsync.sim import SimHandle, start_in_thread
from faults.harness import Daemon, Event, differences, sql, wait_for_nothing, write_config

ERRORS = {"sync_failed", "store_error"}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimHandle]:
    with start_in_thread(tmp_path / "sim", mailboxes=2, events_per_mailbox=10, seed=61) as handle:
        yield handle


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path | None]:
    """A 4 MiB tmpfs for the store, or None when mounting is not allowed."""
    folder = tmp_path / "volume"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def outlook(sim: SimHandle, mailbox: str, subject: str, day: int) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=day)
    sim.admin.create_event(
        mailbox,
        subject=subject,
        start=start.isoformat(),
        end=(start + timedelta(minutes=30)).isoformat(),
        timezone="UTC",
    )


def has_row(db: Path, subject: str) -> bool:
    return bool(sql(db, "SELECT 1 FROM events WHERE subject = ?", (subject,)))


def error_after(daemon: Daemon, mark: int) -> list[Event]:
    return [e for e in daemon.since(mark) if e.get("event") in ERRORS]


def fill(folder: Path) -> Path:
    """Take every free byte of ``folder``'s file system."""
    filler = folder / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def intact(db: Path) -> bool:
    with closing(sqlite3.connect(db, timeout=20)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_store_failures_are_reported_and_healed(
    sim: SimHandle, volume: Path | None, tmp_path: Path
) -> None:
    mailboxes = list(sim.info["tenants"][0]["mailboxes"])
    folder = volume or tmp_path
    config = write_config(sim, folder, api="ews", streaming=True)
    db = folder / "calsync.db"
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait(
            lambda: {e["mailbox"] for e in daemon.since(0, "sync_finished")} >= set(mailboxes),
            60,
            "the initial sync",
        )
        cases = ["locked"] + (["disk full"] if volume is not None else [])
        for day, case in enumerate(cases, start=5):
            mark = daemon.mark()
            subject = f"while {case}"
            blocker: sqlite3.Connection | None = None
            filler: Path | None = None
            if case == "locked":
                blocker = sqlite3.connect(db, timeout=20, isolation_level=None)
                blocker.execute("BEGIN EXCLUSIVE")
            else:
                filler = fill(folder)
            outlook(sim, mailboxes[0], subject, day)
            errors = daemon.wait(lambda mark=mark: error_after(daemon, mark), 40, f"{case}: error")
            assert errors[0].get("error"), errors[0]
            if case != "locked":  # (a locked database cannot even be read)
                assert not has_row(db, subject)
            assert daemon.popen.poll() is None, f"the daemon died: {case}"
            # the cause goes away: the daemon recovers on its own
            if blocker is not None:
                blocker.rollback()
                blocker.close()
            elif filler is not None:
                filler.unlink()
            daemon.wait(lambda subject=subject: has_row(db, subject), 40, f"{case}: recovery")
            assert intact(db), case
        wait_for_nothing(lambda: differences(sim, db, mailboxes), 30, "both sides equal")
        assert daemon.stop() == 0
    finally:
        daemon.close()
    if volume is not None:  # a file system that is read-only when the daemon starts
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        outlook(sim, mailboxes[1], "while read-only", 9)
        refused = Daemon(config, tmp_path / "daemon.log")
        try:
            code = refused.popen.wait(60)
        finally:
            refused.close()
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        assert code == 3, refused.text[-5:]  # store unavailable
        # sqlite says "unable to open database file" (the read-only WAL cannot be opened)
        assert any("calsync.db unavailable" in line for line in refused.text), refused.text[-5:]
        daemon = Daemon(config, tmp_path / "daemon.log")
        try:
            daemon.wait(lambda: has_row(db, "while read-only"), 40, "read-only: recovery")
            wait_for_nothing(lambda: differences(sim, db, mailboxes), 30, "both sides equal")
            assert daemon.stop() == 0
        finally:
            daemon.close()
    assert intact(db)
    assert not [e for e in daemon.events if e.get("event") == "internal_error"]
