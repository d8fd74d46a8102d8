"""The operational API of ``SqlStore`` (the same names and meaning in ``MemoryStore``):

- mailbox status: ``register_mailboxes(mailboxes)``, ``record_run_success(address, at, *,
  items_in=0, items_out=0, lag_s=None)``, ``record_run_failure(address, at, error_code, message,
  *, paused=False)``, ``set_next_due(address, when)``, ``mailbox_status(address)``,
  ``mailbox_statuses()``, ``purge_mailbox(address)``;
- heartbeat: ``write_heartbeat(at=None)`` (also refreshes the locks this store holds),
  ``read_heartbeat()``; settings cache: ``get_setting(key)``, ``set_setting(key, value)``;
- instances: ``rebuild_instances(mailbox, calsync_ids=None) -> int`` (every run rebuilds the
  events it touched; the daemon calls it daily for the whole mailbox as the window moves),
  ``instances(mailbox, start, end)``;
- locks and the local-write probe: see ``calsync.store.sql_coord``.
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from calsync.model import Mailbox, ShowAs
from calsync.ports import Clock
from calsync.store.api import Instance, MailboxStatus, Window, instances_of
from calsync.store.schema import (
    daemon_heartbeat,
    event_tombstones,
    events,
    instances,
    links,
    local_cursors,
    mailboxes,
    settings,
    sync_state,
)
from calsync.store.sql_coord import SqlLock
from calsync.store.sql_rows import (
    chunks,
    load_rows,
    local_event,
    occurrence_ids,
    time_or_none,
    time_value,
    upsert,
)


class SqlOps(ABC):
    _engine: sa.Engine
    _clock: Clock
    _held: dict[str, SqlLock]

    @abstractmethod
    def _write(self, *, calsync: bool = True) -> AbstractContextManager[sa.Connection]: ...

    @abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    # --- mailbox status -------------------------------------------------------------------------

    def register_mailboxes(self, configured: Sequence[Mailbox]) -> None:
        """Upsert the configured mailboxes; mailboxes no longer configured become ``disabled``."""
        now = self._clock.now()
        with self._write(calsync=False) as conn:
            known = {r.address: r.state for r in conn.execute(sa.select(mailboxes))}
            addresses = {m.address for m in configured}
            for address, state in known.items():
                if address not in addresses and state != "disabled":
                    conn.execute(
                        sa.update(mailboxes)
                        .where(mailboxes.c.address == address)
                        .values(state="disabled", updated_at=time_value(conn, now))
                    )
            for mb in configured:
                state = known.get(mb.address)
                values = {
                    "address": mb.address,
                    "tenant": mb.tenant,
                    "direction": str(mb.direction),
                    "window_past_days": mb.window_past_days,
                    "window_future_days": mb.window_future_days,
                    "state": "new" if state in (None, "disabled") else state,
                    "updated_at": time_value(conn, now),
                }
                upsert(conn, mailboxes, values, ("address",))

    def _status_update(self, address: str, **values: Any) -> None:
        with self._write(calsync=False) as conn:
            for key, value in list(values.items()):
                if isinstance(value, datetime):
                    values[key] = time_value(conn, value)
            upsert(conn, mailboxes, {"address": address}, ("address",))
            conn.execute(
                sa.update(mailboxes).where(mailboxes.c.address == address).values(**values)
            )

    def record_run_success(
        self,
        address: str,
        at: datetime,
        *,
        items_in: int = 0,
        items_out: int = 0,
        lag_s: float | None = None,
    ) -> None:
        self._status_update(
            address,
            state="healthy",
            last_success=at,
            consecutive_failures=0,
            items_in=items_in,
            items_out=items_out,
            lag_s=lag_s,
            updated_at=at,
        )

    def record_run_failure(
        self, address: str, at: datetime, error_code: str, message: str, *, paused: bool = False
    ) -> None:
        self._status_update(
            address,
            state="paused" if paused else "failing",
            last_error_code=error_code,
            last_error=message,
            consecutive_failures=mailboxes.c.consecutive_failures + 1,
            updated_at=at,
        )

    def set_next_due(self, address: str, when: datetime | None) -> None:
        self._status_update(address, next_due=when)

    def mailbox_statuses(self) -> list[MailboxStatus]:
        with self._read() as conn:
            rows = conn.execute(sa.select(mailboxes).order_by(mailboxes.c.address)).mappings()
            return [
                MailboxStatus(
                    address=r["address"],
                    tenant=r["tenant"],
                    direction=r["direction"],
                    state=r["state"],
                    last_success=time_or_none(r["last_success"]),
                    last_error_code=r["last_error_code"],
                    last_error=r["last_error"],
                    consecutive_failures=r["consecutive_failures"],
                    next_due=time_or_none(r["next_due"]),
                    lag_s=r["lag_s"],
                    items_in=r["items_in"],
                    items_out=r["items_out"],
                    updated_at=time_or_none(r["updated_at"]),
                )
                for r in rows
            ]

    def mailbox_status(self, address: str) -> MailboxStatus | None:
        return next((s for s in self.mailbox_statuses() if s.address == address), None)

    def purge_mailbox(self, address: str) -> None:
        """Forget a mailbox: rows (without tombstones), links, sync state, cursor, instances."""
        with self._write() as conn:
            conn.execute(sa.delete(events).where(events.c.mailbox == address))
            for table in (event_tombstones, links, sync_state, instances, local_cursors):
                conn.execute(sa.delete(table).where(table.c.mailbox == address))
            conn.execute(sa.delete(mailboxes).where(mailboxes.c.address == address))

    # --- settings, heartbeat --------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self._read() as conn:
            value = conn.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar()
            return None if value is None else str(value)

    def set_setting(self, key: str, value: str | None) -> None:
        with self._write(calsync=False) as conn:
            if value is None:
                conn.execute(sa.delete(settings).where(settings.c.key == key))
            else:
                now = time_value(conn, self._clock.now())
                upsert(conn, settings, {"key": key, "value": value, "updated_at": now}, ("key",))

    def write_heartbeat(self, at: datetime | None = None) -> None:
        with self._write(calsync=False) as conn:
            values = {
                "id": 1,
                "beat_at": time_value(conn, at or self._clock.now()),
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
            upsert(conn, daemon_heartbeat, values, ("id",))
        for lock in list(self._held.values()):
            lock.refresh()

    def read_heartbeat(self) -> datetime | None:
        with self._read() as conn:
            value = conn.execute(sa.select(daemon_heartbeat.c.beat_at)).scalar()
            return time_or_none(value)

    # --- instances ------------------------------------------------------------------------------

    def _window(self, conn: sa.Connection, mailbox: str) -> Window:
        row = conn.execute(
            sa.select(mailboxes.c.window_past_days, mailboxes.c.window_future_days).where(
                mailboxes.c.address == mailbox
            )
        ).first()
        past, future = (row[0], row[1]) if row else (30, 365)
        return Window.around(self._clock.now(), past, future)

    def rebuild_instances(self, mailbox: str, calsync_ids: Sequence[str] | None = None) -> int:
        """Re-expand ``calsync_ids`` (default: every event) of a mailbox; returns instance rows."""
        with self._write() as conn:
            return self._rebuild(conn, mailbox, calsync_ids)

    def _rebuild(self, conn: sa.Connection, mailbox: str, ids: Sequence[str] | None) -> int:
        if ids is None:
            conn.execute(sa.delete(instances).where(instances.c.mailbox == mailbox))
            query = sa.select(events.c.id).where(
                events.c.mailbox == mailbox, events.c.series_id.is_(None)
            )
            ids = [str(i) for i in conn.execute(query).scalars()]
        else:
            for part in chunks(list(ids)):
                conn.execute(sa.delete(instances).where(instances.c.master_id.in_(part)))
        window = self._window(conn, mailbox)
        rows: list[dict[str, Any]] = []
        for part in chunks(list(ids)):
            for master_id, group in load_rows(conn, part).items():
                if group[0]["mailbox"] != mailbox:
                    continue
                try:
                    event = local_event(group)
                    found = instances_of(
                        master_id, mailbox, event.data, window, occurrence_ids(group)
                    )
                except ValueError:
                    continue
                rows.extend(
                    {
                        "event_id": i.event_id,
                        "master_id": i.master_id,
                        "mailbox": mailbox,
                        "starts_at": time_value(conn, i.starts_at),
                        "ends_at": time_value(conn, i.ends_at),
                        "show_as": str(i.show_as),
                        "is_all_day": i.is_all_day,
                    }
                    for i in found
                )
        if rows:
            conn.execute(sa.insert(instances), rows)
        return len(rows)

    def instances(self, mailbox: str, start: datetime, end: datetime) -> list[Instance]:
        """Instances of ``mailbox`` overlapping ``[start, end)``, by start time."""
        with self._read() as conn:
            query = (
                sa.select(instances)
                .where(
                    instances.c.mailbox == mailbox,
                    instances.c.starts_at < time_value(conn, end),
                    instances.c.ends_at > time_value(conn, start),
                )
                .order_by(instances.c.starts_at, instances.c.event_id)
            )
            out = []
            for r in conn.execute(query).mappings():
                begin, finish = time_or_none(r["starts_at"]), time_or_none(r["ends_at"])
                if begin is None or finish is None:
                    continue
                out.append(
                    Instance(
                        r["event_id"],
                        r["master_id"],
                        mailbox,
                        begin,
                        finish,
                        ShowAs(r["show_as"]),
                        bool(r["is_all_day"]),
                    )
                )
            return out
