"""Applications' plain SQL on ``events`` (the README's examples), the migrated schema, errors."""

# F811: pytest fixtures are imported from test_store_support and used as parameters.
# ruff: noqa: F811
from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from test_store_support import (  # noqa: F401  (fixtures)
    MB,
    FakeClock,
    clock,
    libpq_url,
    pg_schema_url,
    sql_store,
    sqlite_template,
)

from calsync.errors import LockHeld, StoreError, StoreUnavailable
from calsync.model import SyncStatus
from calsync.store.engine import translate
from calsync.store.migrate import current_revision, upgrade
from calsync.store.schema import metadata
from calsync.store.sql import SqlStore

UUID_LENGTH = 36


@contextmanager
def app_connection(store: SqlStore) -> Iterator[Any]:
    """A connection as an application opens it: the plain driver, autocommit per statement."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()
    else:
        with psycopg.connect(libpq_url(url.render_as_string(hide_password=False)),
                             autocommit=True) as pg:  # fmt: skip
            yield pg


def sql(store: SqlStore, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    if store.engine.dialect.name == "postgresql":
        statement = statement.replace("?", "%s")
    with app_connection(store) as conn:
        cursor = conn.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


def test_readme_insert_update_delete(sql_store: SqlStore) -> None:
    (row,) = sql(
        sql_store,
        "INSERT INTO events (mailbox, subject, starts_at, ends_at) "
        "VALUES (?, 'Dentist', '2026-12-01T10:00:00+01:00', '2026-12-01T10:30:00Z') RETURNING id",
        MB,
    )
    event_id = row[0]
    assert len(event_id) == UUID_LENGTH
    changes = sql_store.local_changes(MB)
    (change,) = changes.changes
    assert change.calsync_id == event_id
    assert change.event is not None
    data = change.event.data
    assert (data.subject, data.start, data.end) == (
        "Dentist", datetime(2026, 12, 1, 9, 0, tzinfo=UTC), datetime(2026, 12, 1, 10, 30, tzinfo=UTC))  # fmt: skip
    assert data.uid == event_id
    assert change.event.status is SyncStatus.PENDING
    with sql_store.transaction() as tx:
        tx.ack_local(MB, changes.cursor)
        tx.set_event_status(MB, event_id, SyncStatus.SYNCED)

    sql(sql_store, "UPDATE events SET subject = 'Dentist (moved)' WHERE id = ?", event_id)
    (change,) = sql_store.local_changes(MB).changes
    assert change.event is not None
    assert change.event.data.subject == "Dentist (moved)"
    assert change.event.status is SyncStatus.PENDING
    (status,) = sql(sql_store, "SELECT sync_status FROM events WHERE id = ?", event_id)
    assert status == ("pending",)

    sql(sql_store, "DELETE FROM events WHERE id = ?", event_id)
    (change,) = sql_store.local_changes(MB).changes
    assert (change.calsync_id, change.is_delete) == (event_id, True)


def test_sqlite_times_are_normalised_to_utc_text(sql_store: SqlStore) -> None:
    sql(sql_store, "INSERT INTO events (id, mailbox, starts_at, ends_at) VALUES "
        "('e1', ?, '2026-12-01T10:00:00-05:00', '2026-12-01 16:00:00Z')", MB)  # fmt: skip
    (row,) = sql(sql_store, "SELECT starts_at, ends_at FROM events WHERE id = 'e1'")
    if sql_store.engine.dialect.name == "sqlite":
        assert row == ("2026-12-01T15:00:00Z", "2026-12-01T16:00:00Z")
    else:
        assert row[0] == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def test_busy_at_query_on_instances(sql_store: SqlStore) -> None:
    sql_store.app_write_raw(MB, {"subject": "x", "starts_at": "2026-12-01T10:00:00Z",
                                 "ends_at": "2026-12-01T11:00:00Z"}, "e1")  # fmt: skip
    changes = sql_store.local_changes(MB)
    with sql_store.transaction() as tx:  # a run pushes it, then marks it synced
        tx.set_event_status(MB, "e1", SyncStatus.SYNCED)
        tx.ack_local(MB, changes.cursor)
    t = "2026-12-01T10:30:00Z"
    busy = sql(sql_store, "SELECT event_id FROM instances WHERE mailbox = ? AND starts_at <= ? "
               "AND ends_at > ? AND show_as IN ('busy', 'oof')", MB, t, t)  # fmt: skip
    assert busy == [("e1",)]


def test_migrated_schema_equals_metadata(sql_store: SqlStore) -> None:
    with sql_store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert current_revision(sql_store.engine.url.render_as_string(hide_password=False)) == "0001"


def test_upgrade_is_idempotent_and_file_is_0640(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "calsync.db"
    old = os.umask(0)
    try:
        upgrade(f"sqlite:///{path}")
    finally:
        os.umask(old)
    upgrade(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    store = SqlStore(f"sqlite:///{path}")
    try:
        assert store.count_events(MB) == 0
    finally:
        store.close()


def test_unreachable_postgres_hides_password() -> None:
    with pytest.raises(StoreUnavailable) as raised:
        SqlStore("postgresql+psycopg://calsync:s3cr3t-pw@127.0.0.1:1/calsync?connect_timeout=2",
                 upgrade=True)  # fmt: skip
    assert "s3cr3t-pw" not in str(raised.value)
    assert "***" in str(raised.value)


def test_unsupported_url() -> None:
    with pytest.raises(StoreUnavailable, match="unsupported store URL"):
        SqlStore("mysql://root:pw@localhost/x")


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("database or disk is full", "store_disk_full"),
        ("attempt to write a readonly database", "store_read_only"),
        ("database is locked", "store_locked"),
    ],
)
def test_sqlite_errors_are_classified(message: str, code: str) -> None:
    error = translate(sqlite3.OperationalError(message), "sqlite:////var/lib/calsync.db")
    assert isinstance(error, StoreError)
    assert error.error_code == code
    assert error.hint


def test_missing_directory_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable):
        SqlStore(f"sqlite:///{blocker}/calsync.db", upgrade=True)


def test_local_changes_use_indexes_not_scans(sql_store: SqlStore) -> None:
    """The queries behind local_changes are index range scans: O(changes), not O(rows)."""
    queries = [
        "SELECT local_revision FROM events WHERE mailbox = 'a' AND local_revision > 5 "
        "AND local_revision <= 9",
        "SELECT revision FROM event_tombstones WHERE mailbox = 'a' AND revision > 5 "
        "AND revision <= 9",
    ]
    with app_connection(sql_store) as conn:
        for query in queries:
            if sql_store.engine.dialect.name == "sqlite":
                plan = " ".join(str(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
                assert "USING COVERING INDEX ix_" in plan or "USING INDEX ix_" in plan, plan
            else:
                conn.execute("SET enable_seqscan = off")
                plan = " ".join(r[0] for r in conn.execute(f"EXPLAIN {query}"))
                assert "Index" in plan and "Seq Scan" not in plan, plan


def test_downgrade_then_upgrade(tmp_path: Path) -> None:
    from alembic import command

    from calsync.store.engine import make_engine
    from calsync.store.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'calsync.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        command.downgrade(alembic_config(conn.execution_options(calsync_write=True)), "base")
        conn.commit()
    engine.dispose()
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == "0001"


def test_lock_held_across_store_instances(sql_store: SqlStore, clock: FakeClock) -> None:
    other = SqlStore(sql_store.engine.url.render_as_string(hide_password=False), clock=clock)
    try:
        lock = sql_store.mailbox_lock(MB)
        with pytest.raises(LockHeld):
            other.mailbox_lock(MB)
        lock.release()
        other.mailbox_lock(MB).release()
        store_lock = other.store_lock()
        other.close()  # a closed (or dead) owner no longer holds its locks
        del store_lock
        sql_store.store_lock().release()
    finally:
        other.close()


def test_sqlite_lock_of_dead_process_is_taken_over(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'calsync.db'}"
    store = SqlStore(url, upgrade=True)
    try:
        with app_connection(store) as conn:
            conn.execute(
                "INSERT INTO locks VALUES ('store', 'x', 2147483646, ?, '2026-01-01T00:00:00Z', "
                "'2999-01-01T00:00:00Z')",
                (__import__("socket").gethostname(),),
            )
        store.store_lock().release()
    finally:
        store.close()
