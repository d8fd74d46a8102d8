"""``MemoryTransaction``: the ``ports.StoreTransaction`` of ``MemoryStore`` (calsync's writes).

It writes straight into the store's state; ``MemoryStore.transaction()`` restores the state as it
was when the body raises.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from calsync.model import EventData, Link, SyncStatus
from calsync.store.rows import to_columns, utc_text

if TYPE_CHECKING:
    from calsync.store.memory import MemoryStore


def _new_id() -> str:
    return str(uuid.uuid4())


class MemoryTransaction:
    """The ``ports.StoreTransaction`` of a ``MemoryStore`` (calsync's own writes)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.touched: dict[str, set[str]] = {}

    def _touch(self, mailbox: str, calsync_id: str) -> None:
        self.touched.setdefault(mailbox, set()).add(calsync_id)

    def upsert_event(
        self,
        mailbox: str,
        calsync_id: str,
        data: EventData,
        *,
        status: SyncStatus = SyncStatus.SYNCED,
    ) -> None:
        store = self._store
        meta = {"sync_status": str(status), "sync_error": None, "series_id": None,
                "original_start": None}  # fmt: skip
        store._calsync_write(calsync_id, {**to_columns(data), **meta}, mailbox)
        current = store._occurrence_rows(calsync_id)
        wanted = (
            {utc_text(o.original_start): o.data for o in data.modified_occurrences}
            if data.recurrence is not None
            else {}
        )
        for key, occ_id in current.items():
            if key not in wanted:
                del store._state.rows[occ_id]
        for key, occ in wanted.items():
            columns = {**to_columns(occ, occurrence=True), **meta}
            columns.update(series_id=calsync_id, original_start=key)
            store._calsync_write(current.get(key) or _new_id(), columns, mailbox)
        self._touch(mailbox, calsync_id)

    def delete_event(self, mailbox: str, calsync_id: str) -> None:
        state = self._store._state
        rows = state.rows
        # calsync deletes on purpose: an application's pending delete of it is settled too
        state.tombstones = [
            t for t in state.tombstones if (t.mailbox, t.event_id) != (mailbox, calsync_id)
        ]
        row = rows.get(calsync_id)
        if row is None or row["mailbox"] != mailbox:
            return
        for occ_id in self._store._occurrence_rows(calsync_id).values():
            del rows[occ_id]
        del rows[calsync_id]
        self._touch(mailbox, calsync_id)

    def set_event_status(
        self, mailbox: str, calsync_id: str, status: SyncStatus, error: str | None = None
    ) -> None:
        row = self._store._state.rows.get(calsync_id)
        if row is None or row["mailbox"] != mailbox:
            return
        self._store._calsync_write(
            calsync_id, {"sync_status": str(status), "sync_error": error}, mailbox
        )
        self._touch(mailbox, calsync_id)

    def put_link(self, mailbox: str, link: Link) -> None:
        self._store._state.links.setdefault(mailbox, {})[link.calsync_id] = link

    def delete_link(self, mailbox: str, calsync_id: str) -> None:
        self._store._state.links.get(mailbox, {}).pop(calsync_id, None)

    def set_sync_state(self, mailbox: str, state: str | None, folder: str = "calendar") -> None:
        if state is None:
            self._store._state.sync_states.pop((mailbox, folder), None)
        else:
            self._store._state.sync_states[(mailbox, folder)] = state

    def ack_local(self, mailbox: str, cursor: int) -> None:
        state = self._store._state
        state.cursors[mailbox] = max(cursor, state.cursors.get(mailbox, 0))
        done = state.cursors[mailbox]
        state.tombstones = [
            t for t in state.tombstones if t.mailbox != mailbox or t.revision > done
        ]
