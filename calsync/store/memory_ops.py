"""The operational API of ``MemoryStore``: mailbox status, locks, heartbeat, settings, instances.

Same method names and meaning as ``SqlStore`` (see ``calsync.store.sql``); the per-process lock
table stands in for lock rows / advisory locks.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from calsync.errors import LockHeld
from calsync.model import LocalEvent, Mailbox
from calsync.store.api import Instance, MailboxStatus, Window, instances_of
from calsync.store.rows import RowError, parse_time

if TYPE_CHECKING:
    from calsync.ports import Clock


@dataclass
class MemoryState:
    mailboxes: dict[str, MailboxStatus] = field(default_factory=dict)
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    heartbeat: datetime | None = None
    instances: dict[str, dict[str, list[Instance]]] = field(default_factory=dict)


class MemoryLock:
    """A held lock; ``release()`` (or leaving the ``with`` block) frees it."""

    def __init__(self, owner: MemoryOps, resource: str, token: object) -> None:
        self.resource = resource
        self._owner = owner
        self._token = token

    def release(self) -> None:
        self._owner._release(self.resource, self._token)

    def refresh(self) -> None:
        self._owner._refresh(self.resource, self._token)

    def __enter__(self) -> MemoryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class MemoryOps(ABC):
    _state: Any
    _lock: threading.RLock
    _clock: Clock
    _locks: dict[str, tuple[object, datetime]]

    @abstractmethod
    def _event(self, row_id: str) -> LocalEvent: ...

    # --- mailbox status -------------------------------------------------------------------------

    def register_mailboxes(self, mailboxes: Sequence[Mailbox]) -> None:
        """Upsert the configured mailboxes; mailboxes no longer configured become ``disabled``."""
        with self._lock:
            known: dict[str, MailboxStatus] = self._state.mailboxes
            now = self._clock.now()
            configured = {m.address for m in mailboxes}
            for address, status in list(known.items()):
                if address not in configured and status.state != "disabled":
                    known[address] = replace(status, state="disabled", updated_at=now)
            for mb in mailboxes:
                old = known.get(mb.address)
                state = "new" if old is None or old.state == "disabled" else old.state
                base = old or MailboxStatus(
                    mb.address,
                    mb.tenant,
                    str(mb.direction),
                    state,
                    None,
                    None,
                    None,
                    0,
                    None,
                    None,
                    0,
                    0,
                    now,
                )
                known[mb.address] = replace(
                    base, tenant=mb.tenant, direction=str(mb.direction), state=state, updated_at=now
                )
                self._state.windows[mb.address] = (mb.window_past_days, mb.window_future_days)

    def record_run_success(
        self,
        address: str,
        at: datetime,
        *,
        items_in: int = 0,
        items_out: int = 0,
        lag_s: float | None = None,
    ) -> None:
        with self._lock:
            status = self._status_or_new(address)
            self._state.mailboxes[address] = replace(
                status, state="healthy", last_success=at, consecutive_failures=0,
                items_in=items_in, items_out=items_out, lag_s=lag_s, updated_at=at,
            )  # fmt: skip

    def record_run_failure(
        self, address: str, at: datetime, error_code: str, message: str, *, paused: bool = False
    ) -> None:
        with self._lock:
            status = self._status_or_new(address)
            self._state.mailboxes[address] = replace(
                status, state="paused" if paused else "failing", last_error_code=error_code,
                last_error=message, consecutive_failures=status.consecutive_failures + 1,
                updated_at=at,
            )  # fmt: skip

    def set_next_due(self, address: str, when: datetime | None) -> None:
        with self._lock:
            self._state.mailboxes[address] = replace(self._status_or_new(address), next_due=when)

    def mailbox_status(self, address: str) -> MailboxStatus | None:
        with self._lock:
            status: MailboxStatus | None = self._state.mailboxes.get(address)
            return status

    def mailbox_statuses(self) -> list[MailboxStatus]:
        with self._lock:
            return [self._state.mailboxes[a] for a in sorted(self._state.mailboxes)]

    def _status_or_new(self, address: str) -> MailboxStatus:
        status: MailboxStatus | None = self._state.mailboxes.get(address)
        return status or MailboxStatus(
            address, "", "two-way", "new", None, None, None, 0, None, None, 0, 0, None
        )

    def purge_mailbox(self, address: str) -> None:
        """Forget a mailbox: rows (without tombstones), links, sync state, cursor, instances."""
        with self._lock:
            state = self._state
            state.rows = {k: r for k, r in state.rows.items() if r["mailbox"] != address}
            state.tombstones = [t for t in state.tombstones if t.mailbox != address]
            state.links.pop(address, None)
            state.sync_states = {k: v for k, v in state.sync_states.items() if k[0] != address}
            state.cursors.pop(address, None)
            state.instances.pop(address, None)
            state.mailboxes.pop(address, None)
            state.windows.pop(address, None)

    # --- settings, heartbeat --------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self._lock:
            value: str | None = self._state.settings.get(key)
            return value

    def set_setting(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._state.settings.pop(key, None)
            else:
                self._state.settings[key] = value

    def write_heartbeat(self, at: datetime | None = None) -> None:
        with self._lock:
            self._state.heartbeat = at or self._clock.now()

    def read_heartbeat(self) -> datetime | None:
        with self._lock:
            beat: datetime | None = self._state.heartbeat
            return beat

    # --- locks ----------------------------------------------------------------------------------

    def acquire_lock(self, resource: str, *, ttl_s: float = 3600.0) -> MemoryLock:
        """Take ``resource`` or raise ``LockHeld``; a lock older than ``ttl_s`` is free again."""
        with self._lock:
            locks = self._locks
            now = self._clock.now()
            held = locks.get(resource)
            if held is not None and held[1] > now:
                raise LockHeld(
                    f"{resource} is locked by another calsync process (pid {os.getpid()})",
                    resource=resource,
                )
            token = object()
            locks[resource] = (token, now + timedelta(seconds=ttl_s))
            return MemoryLock(self, resource, token)

    def mailbox_lock(self, address: str) -> MemoryLock:
        return self.acquire_lock(f"mailbox:{address}")

    def store_lock(self) -> MemoryLock:
        return self.acquire_lock("store")

    def _release(self, resource: str, token: object) -> None:
        with self._lock:
            locks = self._locks
            if resource in locks and locks[resource][0] is token:
                del locks[resource]

    def _refresh(self, resource: str, token: object, ttl_s: float = 3600.0) -> None:
        with self._lock:
            locks = self._locks
            if resource in locks and locks[resource][0] is token:
                locks[resource] = (token, self._clock.now() + timedelta(seconds=ttl_s))

    # --- instances ------------------------------------------------------------------------------

    def window(self, mailbox: str) -> Window:
        past, future = self._state.windows.get(mailbox, (30, 365))
        return Window.around(self._clock.now(), past, future)

    def rebuild_instances(self, mailbox: str, calsync_ids: Sequence[str] | None = None) -> int:
        """Re-expand ``calsync_ids`` (default: every event) of a mailbox; returns instance rows."""
        with self._lock:
            return self._rebuild_instances(mailbox, calsync_ids)

    def _rebuild_instances(self, mailbox: str, calsync_ids: Iterable[str] | None) -> int:
        table: dict[str, list[Instance]] = self._state.instances.setdefault(mailbox, {})
        rows = self._state.rows
        if calsync_ids is None:
            table.clear()
            ids = [k for k, r in rows.items() if r["mailbox"] == mailbox and r["series_id"] is None]
        else:
            ids = list(calsync_ids)
        window = self.window(mailbox)
        count = 0
        for master_id in ids:
            table.pop(master_id, None)
            row = rows.get(master_id)
            if row is None or row["mailbox"] != mailbox or row["series_id"] is not None:
                continue
            try:
                event = self._event(master_id)
            except (RowError, ValueError):
                continue
            occ_ids = {
                parse_time(r["original_start"]): k
                for k, r in rows.items()
                if r["series_id"] == master_id and r["original_start"]
            }
            table[master_id] = instances_of(master_id, mailbox, event.data, window, occ_ids)
            count += len(table[master_id])
        return count

    def instances(self, mailbox: str, start: datetime, end: datetime) -> list[Instance]:
        """Instances of ``mailbox`` overlapping ``[start, end)``, by start time."""
        with self._lock:
            table = self._state.instances.get(mailbox, {})
            found = [
                i
                for items in table.values()
                for i in items
                if i.starts_at < end and i.ends_at > start
            ]
            return sorted(found, key=lambda i: (i.starts_at, i.event_id))

    def mailboxes_with_local_changes(self) -> list[str]:
        """Registered (or already acknowledged) mailboxes with unacknowledged application writes."""
        with self._lock:
            cursors: dict[str, int] = self._state.cursors
            known = set(self._state.mailboxes) | set(cursors)
            out = set()
            for row in self._state.rows.values():
                if row["mailbox"] in known and (row["local_revision"] or 0) > cursors.get(
                    row["mailbox"], 0
                ):
                    out.add(row["mailbox"])
            for t in self._state.tombstones:
                if t.mailbox in known and t.revision > cursors.get(t.mailbox, 0):
                    out.add(t.mailbox)
            return sorted(out)
