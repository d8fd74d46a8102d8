"""The operational API of ``SqlStore`` (the same names and meaning in ``MemoryStore``):

- mailbox status: ``register_mailboxes(mailboxes)``, ``record_run_success(address, at, *,
  items_in=0, items_out=0, lag_s=None)``, ``record_run_failure(address, at, error_code, message,
  *, paused=False)``, ``set_next_due(address, when)``, ``mailbox_status(address)``,
  ``mailbox_statuses()``, ``purge_mailbox(address)``;
- locks: ``acquire_lock(resource, *, ttl_s=3600) -> lock`` (``release()``, ``refresh()``,
  usable with ``with``), ``mailbox_lock(address)``, ``store_lock()``; ``errors.LockHeld`` when
  another process holds it. PostgreSQL: session advisory locks on a dedicated connection.
  SQLite: rows of ``locks`` with owner pid, host and expiry (a dead owner on this host, or an
  expired row, no longer counts);
- heartbeat: ``write_heartbeat(at=None)`` (also refreshes the locks this store holds),
  ``read_heartbeat()``; settings cache: ``get_setting(key)``, ``set_setting(key, value)``;
- instances: ``rebuild_instances(mailbox, calsync_ids=None) -> int`` (every run rebuilds the
  events it touched; the daemon calls it daily for the whole mailbox as the window moves),
  ``instances(mailbox, start, end)``;
- change probe: ``has_local_writes()`` (SQLite ``PRAGMA data_version`` + one row read;
  PostgreSQL ``LISTEN calsync_local_writes``), ``mailboxes_with_local_changes()``.
"""

from __future__ import annotations

import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from calsync.errors import LockHeld
from calsync.model import Mailbox, ShowAs
from calsync.ports import Clock
from calsync.store.api import Instance, MailboxStatus, Window, instances_of
from calsync.store.engine import store_errors
from calsync.store.schema import (
    daemon_heartbeat,
    event_tombstones,
    events,
    instances,
    links,
    local_cursors,
    locks,
    mailboxes,
    revision_counter,
    settings,
    sync_state,
)
from calsync.store.sql_rows import (
    chunks,
    is_pg,
    load_rows,
    local_event,
    occurrence_ids,
    time_or_none,
    time_value,
    upsert,
)
from calsync.store.triggers import PG_NOTIFY_CHANNEL


class SqlLock:
    """A held lock; ``release()`` (or leaving the ``with`` block) frees it."""

    def __init__(self, store: SqlOps, resource: str, token: str, conn: sa.Connection | None):
        self.resource = resource
        self._store = store
        self._token = token
        self._conn = conn  # PostgreSQL: the session holding the advisory lock

    def release(self) -> None:
        self._store._release(self)

    def refresh(self, ttl_s: float = 3600.0) -> None:
        if self._conn is None:
            self._store._refresh_row(self.resource, self._token, ttl_s)

    def __enter__(self) -> SqlLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqlOps(ABC):
    _engine: sa.Engine
    _clock: Clock
    _probe: sa.Connection | None
    _probe_state: tuple[int, int] | None
    _held: dict[str, Any]
    _notified: list[str]

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

    # --- locks ----------------------------------------------------------------------------------

    def mailbox_lock(self, address: str) -> SqlLock:
        return self.acquire_lock(f"mailbox:{address}")

    def store_lock(self) -> SqlLock:
        return self.acquire_lock("store")

    def acquire_lock(self, resource: str, *, ttl_s: float = 3600.0) -> SqlLock:
        token = str(uuid.uuid4())
        if self._engine.dialect.name == "postgresql":
            return self._advisory_lock(resource, token)
        now = self._clock.now()
        host = socket.gethostname()
        with self._write(calsync=False) as conn:
            row = conn.execute(sa.select(locks).where(locks.c.resource == resource)).mappings()
            held = row.first()
            if held is not None:
                expired = (time_or_none(held["expires_at"]) or now) <= now
                dead = held["host"] == host and not _pid_alive(held["pid"])
                if not expired and not dead:
                    raise LockHeld(
                        f"{resource} is held by calsync pid {held['pid']} on {held['host']}",
                        resource=resource,
                    )
            values = {
                "resource": resource,
                "owner": token,
                "pid": os.getpid(),
                "host": host,
                "acquired_at": time_value(conn, now),
                "expires_at": time_value(conn, now + timedelta(seconds=ttl_s)),
            }
            upsert(conn, locks, values, ("resource",))
        lock = SqlLock(self, resource, token, None)
        self._held[token] = lock
        return lock

    def _advisory_lock(self, resource: str, token: str) -> SqlLock:
        key = sa.text(
            "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || ':' || :r, 0))"
        )
        with store_errors(self._engine.url):
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = bool(conn.execute(key, {"r": resource}).scalar())
            except BaseException:
                conn.close()
                raise
        if not got:
            conn.close()
            raise LockHeld(f"{resource} is held by another calsync process", resource=resource)
        lock = SqlLock(self, resource, token, conn)
        self._held[token] = lock
        return lock

    def _release(self, lock: SqlLock) -> None:
        if self._held.pop(lock._token, None) is None:
            return
        if lock._conn is not None:
            with store_errors(self._engine.url):
                unlock = (
                    "SELECT pg_advisory_unlock(hashtextextended(current_schema() || ':' || :r, 0))"
                )
                try:
                    lock._conn.execute(sa.text(unlock), {"r": lock.resource})
                finally:
                    lock._conn.close()
            return
        with self._write(calsync=False) as conn:
            conn.execute(
                sa.delete(locks).where(
                    locks.c.resource == lock.resource, locks.c.owner == lock._token
                )
            )

    def _refresh_row(self, resource: str, token: str, ttl_s: float) -> None:
        with self._write(calsync=False) as conn:
            expires = time_value(conn, self._clock.now() + timedelta(seconds=ttl_s))
            conn.execute(
                sa.update(locks)
                .where(locks.c.resource == resource, locks.c.owner == token)
                .values(expires_at=expires)
            )

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

    # --- change probe ---------------------------------------------------------------------------

    def has_local_writes(self) -> bool:
        """True when an application may have written since the last call (True on the first)."""
        with store_errors(self._engine.url):
            if self._probe is None:
                conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                self._probe = conn
                if is_pg(conn):
                    raw = conn.connection.driver_connection
                    raw.add_notify_handler(lambda n: self._notified.append(n.payload))  # type: ignore[union-attr]
                    conn.execute(sa.text(f"LISTEN {PG_NOTIFY_CHANNEL}"))
                    return True
            conn = self._probe
            if is_pg(conn):
                conn.execute(sa.text("SELECT 1"))  # a round trip delivers pending notifications
                seen = bool(self._notified)
                self._notified.clear()
                return seen
            version = int(conn.exec_driver_sql("PRAGMA data_version").scalar_one())
            if self._probe_state is not None and self._probe_state[0] == version:
                return False
            local = int(conn.execute(sa.select(revision_counter.c.local_value)).scalar_one())
            first = self._probe_state is None
            changed = first or (self._probe_state is not None and self._probe_state[1] != local)
            self._probe_state = (version, local)
            return changed

    def _close_probe(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None
            self._probe_state = None

    def mailboxes_with_local_changes(self) -> list[str]:
        """Registered (or already acknowledged) mailboxes with unacknowledged application writes;
        one index probe per mailbox."""
        with self._read() as conn:
            query = sa.select(local_cursors.c.mailbox, local_cursors.c.cursor)
            cursors = {str(m): int(c) for m, c in conn.execute(query).all()}
            known = set(cursors) | set(conn.execute(sa.select(mailboxes.c.address)).scalars())
            out = []
            for mailbox in sorted(known):
                cursor = cursors.get(mailbox, 0)
                row = conn.execute(
                    sa.select(events.c.id)
                    .where(events.c.mailbox == mailbox, events.c.local_revision > cursor)
                    .limit(1)
                ).first()
                tomb = conn.execute(
                    sa.select(event_tombstones.c.revision)
                    .where(
                        event_tombstones.c.mailbox == mailbox, event_tombstones.c.revision > cursor
                    )
                    .limit(1)
                ).first()
                if row is not None or tomb is not None:
                    out.append(mailbox)
            return out
