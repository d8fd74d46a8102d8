"""``SqlStore``: ``ports.Store`` over SQLite or PostgreSQL (SQLAlchemy Core, psycopg 3).

Public API (besides ``ports.Store``; the operational API lives in ``sql_ops.SqlOps``):

- ``SqlStore(url, *, clock=None, upgrade=False)``: open the store (``upgrade=True`` first runs
  the migrations); ``close()`` releases its locks and disposes of the connection pool.
- ``transaction()``: a ``SqlTransaction`` (``ports.StoreTransaction``); its writes are calsync's
  own (never reported by ``local_changes``), the instances of every event it touched are rebuilt
  before it commits, and any exception rolls all of it back.
- ``local_changes(mailbox, limit=None)``: application writes above the acknowledged cursor, found
  through the ``(mailbox, local_revision)`` and tombstone indexes (never a scan of all rows);
  rows that cannot be read are marked ``sync_status = 'error'`` with a message and left out.
- ``app_upsert`` / ``app_upsert_occurrence`` / ``app_write_raw`` / ``app_delete``: writes made
  the way an application makes them (plain SQL, outside calsync's marker), for tests and demos;
  the same API as ``MemoryStore``.

Driver errors surface as ``errors.StoreError`` / ``errors.StoreUnavailable``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from calsync.model import EventData, Link, LocalChange, LocalChanges, LocalEvent, SyncStatus
from calsync.ports import Clock
from calsync.store.engine import SqliteWriters, make_engine, store_errors
from calsync.store.migrate import upgrade_engine
from calsync.store.rows import RowError, parse_time, to_columns
from calsync.store.schema import (
    event_tombstones,
    events,
    links,
    local_cursors,
    revision_counter,
    sync_state,
    writer_marker,
)
from calsync.store.sql_coord import SqlCoordination, SqlLock
from calsync.store.sql_ops import SqlOps
from calsync.store.sql_rows import (
    chunks,
    is_pg,
    load_rows,
    local_event,
    time_value,
    upsert,
    write_series,
)


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def _link(row: sa.RowMapping) -> Link:
    return Link(
        row["calsync_id"], row["item_id"], row["change_key"], row["exchange_hash"],
        row["local_hash"],
    )  # fmt: skip


class SqlStore(SqlOps, SqlCoordination):
    def __init__(self, url: str, *, clock: Clock | None = None, upgrade: bool = False) -> None:
        self._url = url
        self._clock: Clock = clock or _SystemClock()
        with store_errors(url):
            self._engine = make_engine(url)
        self._pg = self._engine.dialect.name == "postgresql"
        with store_errors(url):
            if upgrade:
                upgrade_engine(self._engine)
        self._probe: sa.Connection | None = None
        self._probe_state: tuple[int, int] | None = None
        self._held: dict[str, SqlLock] = {}
        self._lock_guard = threading.RLock()
        self._lock_conn: sa.Connection | None = None
        self._writers = None if self._pg else SqliteWriters(self._engine.url)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def close(self) -> None:
        self._close_sessions()
        self._engine.dispose()

    # --- connections ----------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with store_errors(self._engine.url), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self, *, calsync: bool = True) -> Iterator[sa.Connection]:
        turn = self._writers.turn() if self._writers is not None else nullcontext()
        with turn, store_errors(self._engine.url), self._engine.connect() as base:
            conn = base.execution_options(calsync_write=True)
            with conn.begin():
                if calsync and is_pg(conn):
                    conn.execute(sa.text("SELECT set_config('calsync.writer', 'calsync', true)"))
                elif calsync:
                    conn.execute(sa.insert(writer_marker).values(id=1))
                yield conn
                if calsync and not is_pg(conn):
                    conn.execute(sa.delete(writer_marker))

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        with self._write() as conn:
            tx = SqlTransaction(conn)
            yield tx
            for mailbox, ids in tx.touched.items():
                self._rebuild(conn, mailbox, sorted(ids))

    # --- ports.Store ----------------------------------------------------------------------------

    def get_sync_state(self, mailbox: str, folder: str = "calendar") -> str | None:
        with self._read() as conn:
            value = conn.execute(
                sa.select(sync_state.c.state).where(
                    sync_state.c.mailbox == mailbox, sync_state.c.folder == folder
                )
            ).scalar()
            return None if value is None else str(value)

    def local_changes(self, mailbox: str, limit: int | None = None) -> LocalChanges:
        bad: dict[str, str] = {}
        with self._read() as conn:
            cursor = self._cursor(conn, mailbox)
            # Revisions are handed out under the counter row's lock, held until commit: every
            # revision <= the committed counter belongs to a finished transaction, so bounding
            # both queries by it gives one consistent cut even under READ COMMITTED.
            top = int(conn.execute(sa.select(revision_counter.c.value)).scalar_one())
            rows = sa.select(
                events.c.local_revision, sa.func.coalesce(events.c.series_id, events.c.id)
            ).where(
                events.c.mailbox == mailbox,
                events.c.local_revision > cursor,
                events.c.local_revision <= top,
            )
            tombs = sa.select(event_tombstones.c.revision, event_tombstones.c.event_id).where(
                event_tombstones.c.mailbox == mailbox,
                event_tombstones.c.revision > cursor,
                event_tombstones.c.revision <= top,
            )
            if limit is not None:
                rows = rows.order_by(events.c.local_revision).limit(limit)
                tombs = tombs.order_by(event_tombstones.c.revision).limit(limit)
            records = sorted(
                [(int(r), str(t)) for r, t in conn.execute(rows)]
                + [(int(r), str(t)) for r, t in conn.execute(tombs)]
            )
            if limit is not None:
                records = records[:limit]
            targets: dict[str, int] = {}
            for revision, target in records:
                targets[target] = max(revision, targets.get(target, 0))
            loaded = load_rows(conn, list(targets))
            changes: list[LocalChange] = []
            for target, revision in sorted(targets.items(), key=lambda kv: kv[1]):
                group = loaded.get(target)
                if group is None or group[0]["mailbox"] != mailbox:
                    changes.append(LocalChange(target, None, revision))
                    continue
                try:
                    changes.append(LocalChange(target, local_event(group), revision))
                except (RowError, ValueError) as exc:
                    bad[target] = str(exc)
            new_cursor = max(records[-1][0] if records else cursor, cursor)
        if bad:
            self._mark_errors(mailbox, bad)
        return LocalChanges(tuple(changes), new_cursor)

    def get_events(self, mailbox: str, calsync_ids: Sequence[str]) -> dict[str, LocalEvent]:
        with self._read() as conn:
            out: dict[str, LocalEvent] = {}
            for master_id, group in load_rows(conn, calsync_ids).items():
                if group[0]["mailbox"] != mailbox:
                    continue
                try:
                    out[master_id] = local_event(group)
                except (RowError, ValueError):
                    continue
            return out

    def links_by_calsync_id(self, mailbox: str, calsync_ids: Sequence[str]) -> dict[str, Link]:
        return self._links(mailbox, links.c.calsync_id, calsync_ids, "calsync_id")

    def links_by_item_id(self, mailbox: str, item_ids: Sequence[str]) -> dict[str, Link]:
        return self._links(mailbox, links.c.item_id, item_ids, "item_id")

    def _links(
        self, mailbox: str, column: sa.Column[Any], keys: Sequence[str], key: str
    ) -> dict[str, Link]:
        out: dict[str, Link] = {}
        with self._read() as conn:
            for part in chunks(list(keys)):
                query = sa.select(links).where(links.c.mailbox == mailbox, column.in_(part))
                for row in conn.execute(query).mappings():
                    out[row[key]] = _link(row)
        return out

    def all_links(self, mailbox: str) -> dict[str, Link]:
        with self._read() as conn:
            query = sa.select(links).where(links.c.mailbox == mailbox)
            return {row["calsync_id"]: _link(row) for row in conn.execute(query).mappings()}

    def count_events(self, mailbox: str) -> int:
        with self._read() as conn:
            query = sa.select(sa.func.count()).where(
                events.c.mailbox == mailbox, events.c.series_id.is_(None)
            )
            return int(conn.execute(query).scalar_one())

    # --- internals ------------------------------------------------------------------------------

    @staticmethod
    def _cursor(conn: sa.Connection, mailbox: str) -> int:
        value = conn.execute(
            sa.select(local_cursors.c.cursor).where(local_cursors.c.mailbox == mailbox)
        ).scalar()
        return int(value or 0)

    def _mark_errors(self, mailbox: str, bad: Mapping[str, str]) -> None:
        with self._write() as conn:
            for row_id, message in bad.items():
                conn.execute(
                    sa.update(events)
                    .where(events.c.id == row_id, events.c.mailbox == mailbox)
                    .values(sync_status=str(SyncStatus.ERROR), sync_error=message[:2000])
                )

    # --- simulated application writes (plain SQL, no calsync marker) ----------------------------

    def app_write_raw(
        self, mailbox: str, columns: Mapping[str, Any], calsync_id: str | None = None
    ) -> str:
        """Insert (no id, or an unknown id) or update a row with raw column values."""
        with self._write(calsync=False) as conn:
            values = {**columns, "mailbox": mailbox}
            if calsync_id is not None:
                found = conn.execute(sa.select(events.c.id).where(events.c.id == calsync_id))
                if found.first() is not None:
                    conn.execute(
                        sa.update(events).where(events.c.id == calsync_id).values(**values)
                    )
                    return calsync_id
                values["id"] = calsync_id
            row_id = conn.execute(sa.insert(events).values(**values).returning(events.c.id))
            return str(row_id.scalar_one())

    def app_upsert(self, mailbox: str, data: EventData, calsync_id: str | None = None) -> str:
        """An application's insert/update leaving the row(s) exactly as ``data`` says: surplus
        occurrence rows are deleted first (plain DELETEs), then the master and the modified
        occurrences are written."""
        wanted = (
            {parse_time(o.original_start): o.data for o in data.modified_occurrences}
            if data.recurrence is not None
            else {}
        )
        if calsync_id is not None:
            with self._read() as conn:
                current = load_rows(conn, [calsync_id]).get(calsync_id, [])[1:]
            for row in current:
                if parse_time(row["original_start"]) not in wanted:
                    self.app_delete(mailbox, row["id"])
        row_id = self.app_write_raw(mailbox, to_columns(data, native=self._pg), calsync_id)
        for start, occ in wanted.items():
            self.app_upsert_occurrence(mailbox, row_id, start, occ)
        return row_id

    def app_upsert_occurrence(
        self,
        mailbox: str,
        series_id: str,
        original_start: datetime,
        data: EventData,
        calsync_id: str | None = None,
    ) -> str:
        columns = to_columns(data, native=self._pg, occurrence=True)
        with self._read() as conn:
            columns.update(series_id=series_id, original_start=time_value(conn, original_start))
        row_id = calsync_id or self.occurrence_row_id(series_id, original_start)
        return self.app_write_raw(mailbox, columns, row_id)

    def app_delete(self, mailbox: str, row_id: str) -> None:
        with self._write(calsync=False) as conn:
            conn.execute(
                sa.delete(events).where(events.c.id == row_id, events.c.mailbox == mailbox)
            )

    def occurrence_row_id(self, series_id: str, original_start: datetime) -> str | None:
        with self._read() as conn:
            for row in load_rows(conn, [series_id]).get(series_id, [])[1:]:
                if parse_time(row["original_start"]) == parse_time(original_start):
                    return str(row["id"])
        return None

    def raw_row(self, row_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(sa.select(events).where(events.c.id == row_id)).mappings().first()
            return dict(row) if row else None


class SqlTransaction:
    """``ports.StoreTransaction`` over one open database transaction (calsync's writes)."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self.touched: dict[str, set[str]] = {}

    def upsert_event(
        self,
        mailbox: str,
        calsync_id: str,
        data: EventData,
        *,
        status: SyncStatus = SyncStatus.SYNCED,
    ) -> None:
        write_series(
            self._conn,
            mailbox=mailbox,
            calsync_id=calsync_id,
            data=data,
            status=status,
            new_id=_new_id,
        )
        self.touched.setdefault(mailbox, set()).add(calsync_id)

    def delete_event(self, mailbox: str, calsync_id: str) -> None:
        self._conn.execute(sa.delete(events).where(events.c.series_id == calsync_id))
        self._conn.execute(
            sa.delete(events).where(events.c.id == calsync_id, events.c.mailbox == mailbox)
        )
        # calsync deleted it on purpose: an application's pending delete of it is settled too
        self._conn.execute(
            sa.delete(event_tombstones).where(
                event_tombstones.c.mailbox == mailbox, event_tombstones.c.event_id == calsync_id
            )
        )
        self.touched.setdefault(mailbox, set()).add(calsync_id)

    def set_event_status(
        self, mailbox: str, calsync_id: str, status: SyncStatus, error: str | None = None
    ) -> None:
        self._conn.execute(
            sa.update(events)
            .where(events.c.id == calsync_id, events.c.mailbox == mailbox)
            .values(sync_status=str(status), sync_error=error)
        )
        self.touched.setdefault(mailbox, set()).add(calsync_id)

    def put_link(self, mailbox: str, link: Link) -> None:
        values = {
            "mailbox": mailbox, "calsync_id": link.calsync_id, "item_id": link.item_id,
            "change_key": link.change_key, "exchange_hash": link.exchange_hash,
            "local_hash": link.local_hash,
        }  # fmt: skip
        upsert(self._conn, links, values, ("mailbox", "calsync_id"))

    def delete_link(self, mailbox: str, calsync_id: str) -> None:
        self._conn.execute(
            sa.delete(links).where(links.c.mailbox == mailbox, links.c.calsync_id == calsync_id)
        )

    def set_sync_state(self, mailbox: str, state: str | None, folder: str = "calendar") -> None:
        where = (sync_state.c.mailbox == mailbox, sync_state.c.folder == folder)
        if state is None:
            self._conn.execute(sa.delete(sync_state).where(*where))
            return
        values = {"mailbox": mailbox, "folder": folder, "state": state,
                  "updated_at": time_value(self._conn, datetime.now(UTC))}  # fmt: skip
        upsert(self._conn, sync_state, values, ("mailbox", "folder"))

    def ack_local(self, mailbox: str, cursor: int) -> None:
        current = SqlStore._cursor(self._conn, mailbox)
        done = max(current, cursor)
        upsert(self._conn, local_cursors, {"mailbox": mailbox, "cursor": done}, ("mailbox",))
        self._conn.execute(
            sa.delete(event_tombstones).where(
                event_tombstones.c.mailbox == mailbox, event_tombstones.c.revision <= done
            )
        )
