"""Reading and writing ``events`` rows over a SQLAlchemy connection (SQLite or PostgreSQL).

Internal helpers of ``SqlStore``/``SqlTransaction``: loading series with their occurrence rows,
upserting a series as calsync, and dialect-neutral upserts of bookkeeping rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from calsync.model import EventData, LocalEvent, SyncStatus
from calsync.store.rows import EPOCH, RowError, fold, from_columns, parse_time, to_columns, utc_text
from calsync.store.schema import events

CHUNK = 400  # stays below SQLite's bound-parameter limit


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def is_pg(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def time_value(conn: sa.Connection, value: datetime | None) -> Any:
    if value is None:
        return None
    return parse_time(value) if is_pg(conn) else utc_text(value)


def time_or_none(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except RowError:
        return None


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def upsert(
    conn: sa.Connection, table: sa.Table, values: Mapping[str, Any], keys: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE, on either dialect (statements are cached)."""
    cache_key = (conn.dialect.name, table.name, tuple(keys), tuple(sorted(values)))
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        insert = postgresql.insert(table) if is_pg(conn) else sqlite.insert(table)
        updates = {k: insert.excluded[k] for k in cache_key[3] if k not in keys}
        if updates:
            stmt = insert.on_conflict_do_update(index_elements=list(keys), set_=updates)
        else:
            stmt = insert.on_conflict_do_nothing(index_elements=list(keys))
        _UPSERTS[cache_key] = stmt
    conn.execute(stmt, dict(values))


_BY_ID = sa.update(events).where(events.c.id == sa.bindparam("row_id"))


def update_row(conn: sa.Connection, row_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(_BY_ID, {"row_id": row_id, **values})


def insert_row(conn: sa.Connection, values: Mapping[str, Any]) -> None:
    conn.execute(events.insert(), dict(values))


def load_rows(conn: sa.Connection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Master rows ``ids`` and their occurrence rows, grouped by master id (master first)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    occurrences: list[dict[str, Any]] = []
    for part in chunks(list(ids)):
        query = sa.select(events).where(sa.or_(events.c.id.in_(part), events.c.series_id.in_(part)))
        for row in conn.execute(query).mappings():
            item = dict(row)
            if item["series_id"] is None:
                grouped[item["id"]] = [item]
            else:
                occurrences.append(item)
    for item in occurrences:
        if item["series_id"] in grouped:
            grouped[item["series_id"]].append(item)
    return grouped


def local_event(rows: list[dict[str, Any]]) -> LocalEvent:
    """The ``LocalEvent`` of a master row and its occurrence rows; ``RowError`` if unreadable."""
    master_row, occurrence_rows = rows[0], rows[1:]
    data = from_columns(master_row)
    if data.recurrence is not None:
        pairs = []
        for occ in occurrence_rows:
            try:
                pairs.append(
                    (
                        parse_time(occ["original_start"], "original_start"),
                        from_columns(occ, occurrence=True),
                    )
                )
            except RowError as exc:
                raise RowError(f"modified occurrence {occ['id']}: {exc}") from exc
        data = fold(data, pairs)
    stamps = [time_or_none(r["local_modified_at"]) for r in rows]
    modified_at = max((s for s in stamps if s is not None), default=EPOCH)
    try:
        status = SyncStatus(master_row["sync_status"])
    except ValueError:
        status = SyncStatus.PENDING
    return LocalEvent(master_row["id"], data, modified_at, status)


def occurrence_ids(rows: list[dict[str, Any]]) -> dict[datetime, str]:
    out: dict[datetime, str] = {}
    for row in rows[1:]:
        start = time_or_none(row["original_start"])
        if start is not None:
            out[start] = row["id"]
    return out


def write_series(
    conn: sa.Connection,
    *,
    mailbox: str,
    calsync_id: str,
    data: EventData,
    status: SyncStatus,
    new_id: Any,
) -> None:
    """Insert or update a series (master + occurrence rows) as calsync."""
    native = is_pg(conn)
    meta: dict[str, Any] = {
        "mailbox": mailbox,
        "sync_status": str(status),
        "sync_error": None,
        "series_id": None,
        "original_start": None,
    }
    existing = {
        r["id"]: r
        for r in conn.execute(
            sa.select(events.c.id, events.c.series_id, events.c.original_start).where(
                sa.or_(events.c.id == calsync_id, events.c.series_id == calsync_id)
            )
        ).mappings()
    }
    master = {**to_columns(data, native=native), **meta}
    if calsync_id in existing:
        update_row(conn, calsync_id, master)
    else:
        insert_row(conn, {"id": calsync_id, **master})
    current: dict[str, str] = {}
    for row_id, row in existing.items():
        start = time_or_none(row["original_start"]) if row["series_id"] else None
        if start is not None:
            current[utc_text(start)] = row_id
    wanted = (
        {utc_text(o.original_start): o.data for o in data.modified_occurrences}
        if data.recurrence is not None
        else {}
    )
    gone = [row_id for key, row_id in current.items() if key not in wanted]
    gone += [i for i, r in existing.items() if r["series_id"] and i not in current.values()]
    for part in chunks(gone):
        conn.execute(sa.delete(events).where(events.c.id.in_(part)))
    for key, occ in wanted.items():
        columns = {**to_columns(occ, native=native, occurrence=True), **meta}
        columns.update(series_id=calsync_id, original_start=time_value(conn, parse_time(key)))
        if key in current:
            update_row(conn, current[key], columns)
        else:
            insert_row(conn, {"id": new_id(), **columns})
