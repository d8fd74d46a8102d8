"""Outlook's concurrency limit on the client side: at most 4 Graph requests of one app in flight
against one mailbox (``research/graph-notes.md`` §5), whatever calsync part sends them (a sync
run, ``calsync check``, webhook subscriptions, the client a SIGHUP builds anew).

``MailboxGates.for_app(client_id)`` is the one gate set of an app in this process, shared by
every ``GraphClient`` of that app. A request holds one permit of its mailbox while it is on the
wire; a ``$batch`` holds min(n, 4) for the n requests it carries for the mailbox, since Outlook
runs up to 4 of them in parallel. A request that would go over the limit waits for permits
instead of drawing a ``429 MailboxConcurrency`` from the server.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

LIMIT = 4


class MailboxGates:
    _apps: ClassVar[dict[str, MailboxGates]] = {}
    _apps_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = max(1, limit)
        self._used: Counter[str] = Counter()
        self._cond = threading.Condition()
        self.peak: Counter[str] = Counter()  # highest permits held per mailbox (diagnostics)

    @classmethod
    def for_app(cls, app_id: str, limit: int = LIMIT) -> MailboxGates:
        """The gates of ``app_id`` (created on first use with ``limit``)."""
        with cls._apps_lock:
            gates = cls._apps.get(app_id)
            if gates is None:
                gates = cls._apps[app_id] = MailboxGates(limit)
            return gates

    def weight(self, requests: int) -> int:
        """Permits a call carrying ``requests`` requests for one mailbox holds."""
        return min(max(1, requests), self.limit)

    @contextmanager
    def hold(self, address: str, requests: int = 1) -> Iterator[None]:
        """Hold the permits of ``requests`` concurrent requests to ``address``'s mailbox."""
        key, weight = address.lower(), self.weight(requests)
        with self._cond:
            while self._used[key] + weight > self.limit:
                self._cond.wait()
            self._used[key] += weight
            self.peak[key] = max(self.peak[key], self._used[key])
        try:
            yield
        finally:
            with self._cond:
                self._used[key] -= weight
                if self._used[key] <= 0:
                    del self._used[key]
                self._cond.notify_all()

    def in_use(self, address: str) -> int:
        with self._cond:
            return self._used[address.lower()]
