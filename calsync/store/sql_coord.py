"""Coordination between processes for ``SqlStore``: locks and the cheap local-write probe.

- ``acquire_lock(resource, *, ttl_s=3600) -> SqlLock`` (``release()``, ``refresh()``, usable
  with ``with``), ``mailbox_lock(address)``, ``store_lock()``: ``errors.LockHeld`` when another
  process holds it. PostgreSQL: session advisory locks on a dedicated connection (released when
  that process dies). SQLite: rows of ``locks`` with owner pid, host and expiry (a dead owner on
  this host, or an expired row, no longer counts; ``write_heartbeat`` refreshes held rows).
- ``has_local_writes()``, ``wait_for_local_writes(timeout)``, ``mailboxes_with_local_changes()``.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import timedelta

import sqlalchemy as sa

from calsync.errors import LockHeld
from calsync.ports import Clock
from calsync.store.engine import store_errors
from calsync.store.schema import (
    event_tombstones,
    events,
    local_cursors,
    locks,
    mailboxes,
    revision_counter,
)
from calsync.store.sql_rows import is_pg, time_or_none, time_value, upsert
from calsync.store.triggers import PG_NOTIFY_CHANNEL


class SqlLock:
    """A held lock; ``release()`` (or leaving the ``with`` block) frees it."""

    def __init__(
        self, store: SqlCoordination, resource: str, token: str, conn: sa.Connection | None
    ):
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


# lock rows this process holds, over all its stores (a row of this pid that is not in here was
# left behind by a release that failed)
_PROCESS_HELD: set[str] = set()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_KEY = "hashtextextended(current_schema() || ':' || :r, 0)"
_TRY_LOCK = sa.text(f"SELECT pg_try_advisory_lock({_KEY})")
_UNLOCK = sa.text(f"SELECT pg_advisory_unlock({_KEY})")


class SqlCoordination(ABC):
    _engine: sa.Engine
    _clock: Clock
    _probe: sa.Connection | None
    _probe_state: tuple[int, int] | None
    _held: dict[str, SqlLock]
    _lock_guard: threading.RLock
    _lock_conn: sa.Connection | None

    @abstractmethod
    def _write(self, *, calsync: bool = True) -> AbstractContextManager[sa.Connection]: ...

    @abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

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
                # this process's own row whose release failed (the database was locked or
                # full at the time): nobody holds it any more
                orphan = (
                    held["host"] == host
                    and held["pid"] == os.getpid()
                    and held["owner"] not in _PROCESS_HELD
                )
                if not expired and not dead and not orphan:
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
        _PROCESS_HELD.add(token)
        return lock

    def _advisory_lock(self, resource: str, token: str) -> SqlLock:
        # Session advisory locks stack within one session, so a resource this process already
        # holds is refused here; all of them live on one dedicated connection.
        with self._lock_guard:
            if any(held.resource == resource for held in self._held.values()):
                raise LockHeld(f"{resource} is held by this calsync process", resource=resource)
            with store_errors(self._engine.url):
                if self._lock_conn is None:
                    self._lock_conn = self._engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                got = bool(self._lock_conn.execute(_TRY_LOCK, {"r": resource}).scalar())
            if not got:
                raise LockHeld(f"{resource} is held by another calsync process", resource=resource)
            lock = SqlLock(self, resource, token, self._lock_conn)
            self._held[token] = lock
            return lock

    def _release(self, lock: SqlLock) -> None:
        with self._lock_guard:
            _PROCESS_HELD.discard(lock._token)
            if self._held.pop(lock._token, None) is None:
                return
            if lock._conn is not None:
                with store_errors(self._engine.url):
                    lock._conn.execute(_UNLOCK, {"r": lock.resource})
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

    # --- change probe ---------------------------------------------------------------------------

    def has_local_writes(self) -> bool:
        """True when an application wrote since the last call (True on the first call).

        O(1): SQLite reads ``PRAGMA data_version`` and, only when another connection committed,
        one row; PostgreSQL reads one row. Call it every ``local_scan_interval``.
        """
        with store_errors(self._engine.url):
            conn = self._probe_connection()
            version = 0
            if not is_pg(conn):
                version = int(conn.exec_driver_sql("PRAGMA data_version").scalar_one())
                if self._probe_state is not None and self._probe_state[0] == version:
                    return False
            local = int(conn.execute(sa.select(revision_counter.c.local_value)).scalar_one())
            changed = self._probe_state is None or self._probe_state[1] != local
            self._probe_state = (version, local)
            return changed

    def wait_for_local_writes(self, timeout: float) -> bool:
        """PostgreSQL: block up to ``timeout`` seconds for a ``NOTIFY`` from an application
        write, then answer as ``has_local_writes``. SQLite cannot be notified across processes:
        this answers at once (poll it every ``local_scan_interval``)."""
        with store_errors(self._engine.url):
            conn = self._probe_connection()
            if is_pg(conn) and self._probe_state is not None:
                raw = conn.connection.driver_connection
                for _ in raw.notifies(timeout=timeout, stop_after=1):  # type: ignore[union-attr]
                    break
        return self.has_local_writes()

    def _probe_connection(self) -> sa.Connection:
        if self._probe is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if is_pg(conn):
                conn.execute(sa.text(f"LISTEN {PG_NOTIFY_CHANNEL}"))
            self._probe = conn
        return self._probe

    def _close_sessions(self) -> None:
        """Release every lock this store holds and close its dedicated connections."""
        for lock in list(self._held.values()):
            lock.release()
        if self._lock_conn is not None:  # closing the session frees its advisory locks
            self._lock_conn.close()
            self._lock_conn = None
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
