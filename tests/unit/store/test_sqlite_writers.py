"""One process's SQLite writers queue in ``SqliteWriters``: none of them meets ``database is
locked`` from another of its threads, and one kept waiting as long as the busy timeout fails as
SQLite would (``store_locked``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from calsync.errors import StoreError
from calsync.store import engine
from calsync.store.sql import SqlStore


def test_threads_of_one_process_all_get_their_write(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/calsync.db", upgrade=True)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                with store.transaction() as tx:
                    tx.set_sync_state(f"user{n}@example.com", f"state-{i}")
        except BaseException as error:  # collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert [store.get_sync_state(f"user{n}@example.com") for n in range(8)] == ["state-19"] * 8
    finally:
        store.close()


def test_a_writer_kept_waiting_past_the_busy_timeout_fails_as_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 50)
    store = SqlStore(f"sqlite:///{tmp_path}/calsync.db", upgrade=True)
    failures: list[StoreError] = []

    def second() -> None:
        try:
            with store.transaction() as tx:
                tx.set_sync_state("b@example.com", "never")
        except StoreError as error:
            failures.append(error)

    try:
        with store.transaction() as tx:
            tx.set_sync_state("a@example.com", "held")
            thread = threading.Thread(target=second)
            thread.start()
            thread.join()
        assert [f.error_code for f in failures] == ["store_locked"]
        assert "database is locked" in str(failures[0])
        assert store.get_sync_state("b@example.com") is None
        assert store.get_sync_state("a@example.com") == "held"
    finally:
        store.close()
