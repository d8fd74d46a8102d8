"""``MemoryStore``: the store in memory with the SQL store's semantics, for unit/property tests.

Implements ``ports.Store`` and (through ``transaction()``) ``ports.StoreTransaction``, plus the
operational API of ``SqlStore`` (``memory_ops.MemoryOps``: mailbox status, locks, heartbeat,
settings, instances, purge). Rows are kept in the same column forms SQLite stores, so both stores
read them with the same code (``store.rows``) and agree on normalisation.

Simulating applications (what triggers do in SQL) — these are *application* writes, reported by
``local_changes``:

- ``app_upsert(mailbox, data, calsync_id=None) -> id``: insert or update a row (and its
  modified-occurrence rows) so that it reads back exactly as ``data``.
- ``app_upsert_occurrence(mailbox, series_id, original_start, data) -> id``.
- ``app_write_raw(mailbox, columns, calsync_id=None) -> id``: raw column values (bad JSON, an
  unsupported RRULE …), as a careless application might write them.
- ``app_delete(mailbox, row_id)``: a plain DELETE; deleting a modified-occurrence row adds the
  occurrence to its series' deleted occurrences.

A transaction holds the store's lock, and rolls back every write when its body raises.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calsync.model import EventData, Link, LocalChange, LocalChanges, LocalEvent, SyncStatus
from calsync.ports import Clock
from calsync.store.memory_ops import MemoryOps, MemoryState
from calsync.store.memory_tx import MemoryTransaction
from calsync.store.recurrence import format_recurrence
from calsync.store.rows import (
    EPOCH,
    RowError,
    fold,
    from_columns,
    parse_time,
    to_columns,
    utc_text,
)

Row = dict[str, Any]


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class _Tombstone:
    mailbox: str
    event_id: str
    revision: int


@dataclass
class _State(MemoryState):
    rows: dict[str, Row] = field(default_factory=dict)
    tombstones: list[_Tombstone] = field(default_factory=list)
    links: dict[str, dict[str, Link]] = field(default_factory=dict)
    sync_states: dict[tuple[str, str], str] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    counter: int = 0

    def copy(self) -> _State:
        return _State(
            mailboxes=dict(self.mailboxes),
            windows=dict(self.windows),
            settings=dict(self.settings),
            heartbeat=self.heartbeat,
            instances={k: dict(v) for k, v in self.instances.items()},
            rows=dict(self.rows),
            tombstones=list(self.tombstones),
            links={k: dict(v) for k, v in self.links.items()},
            sync_states=dict(self.sync_states),
            cursors=dict(self.cursors),
            counter=self.counter,
        )


def _new_id() -> str:
    return str(uuid.uuid4())


class MemoryStore(MemoryOps):
    """An in-memory ``ports.Store``; thread-safe (one lock, like SQLite's single writer)."""

    _state: _State

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or _SystemClock()
        self._lock = threading.RLock()
        self._state = _State()
        self._local_writes = False
        self._locks: dict[str, tuple[object, datetime]] = {}

    # --- ports.Store ----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        with self._lock:
            saved = self._state.copy()
            tx = MemoryTransaction(self)
            try:
                yield tx
                for mailbox, ids in tx.touched.items():
                    self._rebuild_instances(mailbox, ids)
            except BaseException:
                self._state = saved
                raise

    def get_sync_state(self, mailbox: str, folder: str = "calendar") -> str | None:
        with self._lock:
            return self._state.sync_states.get((mailbox, folder))

    def local_changes(self, mailbox: str, limit: int | None = None) -> LocalChanges:
        with self._lock:
            state = self._state
            cursor = state.cursors.get(mailbox, 0)
            records = [
                (row["local_revision"], row["series_id"] or row_id)
                for row_id, row in state.rows.items()
                if row["mailbox"] == mailbox and (row["local_revision"] or 0) > cursor
            ]
            records += [
                (t.revision, t.event_id)
                for t in state.tombstones
                if t.mailbox == mailbox and t.revision > cursor
            ]
            records.sort()
            if limit is not None:
                records = records[:limit]
            targets: dict[str, int] = {}
            for revision, target in records:
                targets[target] = max(revision, targets.get(target, 0))
            changes: list[LocalChange] = []
            for target, revision in sorted(targets.items(), key=lambda kv: kv[1]):
                row = state.rows.get(target)
                if row is None or row["mailbox"] != mailbox or row["series_id"] is not None:
                    changes.append(LocalChange(target, None, revision))
                    continue
                try:
                    event = self._event(target)
                except RowError as exc:
                    self._mark_error(target, str(exc))
                    continue
                changes.append(LocalChange(target, event, revision))
            new_cursor = records[-1][0] if records else cursor
            return LocalChanges(tuple(changes), max(new_cursor, cursor))

    def get_events(self, mailbox: str, calsync_ids: Sequence[str]) -> dict[str, LocalEvent]:
        with self._lock:
            out: dict[str, LocalEvent] = {}
            for calsync_id in calsync_ids:
                row = self._state.rows.get(calsync_id)
                if row is None or row["mailbox"] != mailbox or row["series_id"] is not None:
                    continue
                try:
                    out[calsync_id] = self._event(calsync_id)
                except RowError:
                    continue
            return out

    def links_by_calsync_id(self, mailbox: str, calsync_ids: Sequence[str]) -> dict[str, Link]:
        with self._lock:
            links = self._state.links.get(mailbox, {})
            return {i: links[i] for i in calsync_ids if i in links}

    def links_by_item_id(self, mailbox: str, item_ids: Sequence[str]) -> dict[str, Link]:
        with self._lock:
            wanted = set(item_ids)
            return {
                link.item_id: link
                for link in self._state.links.get(mailbox, {}).values()
                if link.item_id is not None and link.item_id in wanted
            }

    def all_links(self, mailbox: str) -> dict[str, Link]:
        with self._lock:
            return dict(self._state.links.get(mailbox, {}))

    def count_events(self, mailbox: str) -> int:
        with self._lock:
            return sum(
                1
                for row in self._state.rows.values()
                if row["mailbox"] == mailbox and row["series_id"] is None
            )

    # --- change probe ---------------------------------------------------------------------------

    def has_local_writes(self) -> bool:
        """True when an application wrote since the last call (the daemon's cheap probe)."""
        with self._lock:
            seen, self._local_writes = self._local_writes, False
            return seen

    def wait_for_local_writes(self, timeout: float) -> bool:
        """Answers at once, as ``has_local_writes`` (the memory store has no other writers)."""
        del timeout
        return self.has_local_writes()

    # --- simulated application writes -----------------------------------------------------------

    def app_write_raw(
        self, mailbox: str, columns: Mapping[str, Any], calsync_id: str | None = None
    ) -> str:
        """Insert or update one row with raw column values, as an application's SQL would."""
        with self._lock:
            row_id = calsync_id or _new_id()
            old = self._state.rows.get(row_id)
            row: Row = dict(old) if old else self._blank_row(row_id, mailbox)
            row.update(columns)
            row["mailbox"] = mailbox
            for column in ("starts_at", "ends_at", "original_start"):
                if row.get(column) is not None:
                    with suppress(RowError):
                        row[column] = utc_text(parse_time(row[column]))
            if old is None and row.get("uid") is None:
                row["uid"] = row_id
            self._app_stamp(row)
            self._state.rows[row_id] = row
            return row_id

    def app_upsert(self, mailbox: str, data: EventData, calsync_id: str | None = None) -> str:
        """An application's insert/update leaving the row(s) exactly as ``data`` says: surplus
        occurrence rows are deleted first (plain DELETEs), then the master and the modified
        occurrences are written."""
        with self._lock:
            wanted = (
                {utc_text(o.original_start): o.data for o in data.modified_occurrences}
                if data.recurrence is not None
                else {}
            )
            current = self._occurrence_rows(calsync_id) if calsync_id else {}
            for key, occ_id in current.items():
                if key not in wanted:
                    self._app_delete_row(occ_id, exdate=True)
            row_id = self.app_write_raw(mailbox, to_columns(data), calsync_id)
            for key, occ in wanted.items():
                self.app_upsert_occurrence(mailbox, row_id, parse_time(key), occ, current.get(key))
            return row_id

    def app_upsert_occurrence(
        self,
        mailbox: str,
        series_id: str,
        original_start: datetime,
        data: EventData,
        calsync_id: str | None = None,
    ) -> str:
        """An application's insert/update of a modified-occurrence row."""
        with self._lock:
            row_id = calsync_id or self._occurrence_rows(series_id).get(utc_text(original_start))
            columns = to_columns(data, occurrence=True)
            columns.update(series_id=series_id, original_start=utc_text(original_start))
            return self.app_write_raw(mailbox, columns, row_id)

    def app_delete(self, mailbox: str, row_id: str) -> None:
        """An application's ``DELETE FROM events WHERE id = ?`` (no-op when absent)."""
        with self._lock:
            row = self._state.rows.get(row_id)
            if row is not None and row["mailbox"] == mailbox:
                self._app_delete_row(row_id, exdate=True)

    def occurrence_row_id(self, series_id: str, original_start: datetime) -> str | None:
        """The row id of a series' modified occurrence, or None."""
        with self._lock:
            return self._occurrence_rows(series_id).get(utc_text(original_start))

    def raw_row(self, row_id: str) -> dict[str, Any] | None:
        """A copy of a row's columns (tests read ``sync_status``, ``sync_error`` …)."""
        with self._lock:
            row = self._state.rows.get(row_id)
            return dict(row) if row else None

    # --- internals ------------------------------------------------------------------------------

    def _blank_row(self, row_id: str, mailbox: str) -> Row:
        return {
            "id": row_id, "mailbox": mailbox, "uid": None, "subject": "", "location": "",
            "body": "", "starts_at": None, "ends_at": None, "timezone": "UTC", "is_all_day": 0,
            "reminder_minutes": None, "show_as": "busy", "sensitivity": "normal",
            "categories": "[]", "organizer": None, "attendees": "[]", "is_cancelled": 0,
            "recurrence": None, "series_id": None, "original_start": None,
            "sync_status": "pending", "sync_error": None, "local_modified_at": None,
            "revision": 0, "local_revision": None,
        }  # fmt: skip

    def _bump(self) -> int:
        self._state.counter += 1
        return self._state.counter

    def _app_stamp(self, row: Row) -> None:
        revision = self._bump()
        row.update(
            revision=revision,
            local_revision=revision,
            local_modified_at=utc_text(self._clock.now()),
            sync_status="pending",
            sync_error=None,
        )
        self._local_writes = True

    def _app_delete_row(self, row_id: str, *, exdate: bool) -> None:
        state = self._state
        row = state.rows.pop(row_id)
        for occ_id in self._occurrence_rows(row_id).values():
            del state.rows[occ_id]
        revision = self._bump()
        self._local_writes = True
        if row["series_id"] is None:
            state.tombstones.append(_Tombstone(row["mailbox"], row_id, revision))
            return
        master = state.rows.get(row["series_id"])
        if exdate and master is not None and row["original_start"] is not None:
            master = dict(master)
            try:
                line = format_recurrence(
                    "R", [parse_time(row["original_start"])], bool(master["is_all_day"])
                )
            except RowError:
                line = None
            if line is not None:
                master["recurrence"] = (master["recurrence"] or "") + line[1:]
            self._app_stamp(master)
            state.rows[row["series_id"]] = master

    def _occurrence_rows(self, series_id: str) -> dict[str, str]:
        return {
            row["original_start"]: row_id
            for row_id, row in self._state.rows.items()
            if row["series_id"] == series_id
        }

    def _event(self, row_id: str) -> LocalEvent:
        row = self._state.rows[row_id]
        master = from_columns(row)
        occurrences = [self._state.rows[i] for i in self._occurrence_rows(row_id).values()]
        data = master
        if master.recurrence is not None:
            pairs = []
            for occ in occurrences:
                try:
                    pairs.append(
                        (
                            parse_time(occ["original_start"], "original_start"),
                            from_columns(occ, occurrence=True),
                        )
                    )
                except RowError as exc:
                    raise RowError(f"modified occurrence {occ['id']}: {exc}") from exc
            data = fold(master, pairs)
        stamps = [r["local_modified_at"] for r in [row, *occurrences] if r["local_modified_at"]]
        modified_at = max((parse_time(s) for s in stamps), default=EPOCH)
        return LocalEvent(row_id, data, modified_at, SyncStatus(row["sync_status"]))

    def _mark_error(self, row_id: str, message: str) -> None:
        row = dict(self._state.rows[row_id])
        row.update(sync_status=str(SyncStatus.ERROR), sync_error=message, revision=self._bump())
        self._state.rows[row_id] = row

    def _calsync_write(self, row_id: str, columns: Mapping[str, Any], mailbox: str) -> None:
        old = self._state.rows.get(row_id)
        row = dict(old) if old else self._blank_row(row_id, mailbox)
        row.update(columns)
        row["mailbox"] = mailbox
        row["revision"] = self._bump()
        self._state.rows[row_id] = row
