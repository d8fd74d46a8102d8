"""The writes an Exchange side made itself, remembered by mailbox and item with the ChangeKey the
server gave them: a later listing that reports the same item at the same ChangeKey is the echo
of that write and need not be read again. Shared by the EWS and Graph adapters."""

from __future__ import annotations

import threading
from collections import OrderedDict

LIMIT = 100_000


class OwnWrites:
    """Thread-safe; the oldest entries are dropped beyond ``limit`` (an echo then costs a read)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._writes: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, address: str, item_id: str, change_key: str) -> None:
        with self._lock:
            self._writes[address.lower(), item_id] = change_key
            while len(self._writes) > self._limit:
                self._writes.popitem(last=False)

    def forget(self, address: str, item_id: str) -> None:
        with self._lock:
            self._writes.pop((address.lower(), item_id), None)

    def forget_mailbox(self, address: str) -> None:
        """After a failed run: its writes may have no committed link, or their answer was lost,
        so the next run must read them back (a create is then linked by its calsync id instead
        of being pushed twice)."""
        key = address.lower()
        with self._lock:
            for own in [k for k in self._writes if k[0] == key]:
                del self._writes[own]

    def is_echo(self, address: str, item_id: str, change_key: str | None, *, consume: bool) -> bool:
        """True when ``item_id`` at ``change_key`` is a remembered write; ``consume`` forgets it
        then (a listing that reports each change once), else it stays (one that may repeat)."""
        if change_key is None:
            return False
        key = (address.lower(), item_id)
        with self._lock:
            if self._writes.get(key) != change_key:
                return False
            if consume:
                del self._writes[key]
            return True
