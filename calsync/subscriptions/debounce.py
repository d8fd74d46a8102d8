"""Debouncing notifications: a burst for one mailbox becomes one ``on_change`` call.

The first notification for a mailbox opens a window of ``delay_s``; everything that arrives for
that mailbox within it is folded in, and ``on_change(address, reason)`` runs once at its end (on
the debouncer's own thread, never on a connection thread). A notification after the call opens a
new window, so no change is ever swallowed. Reasons rank: a catch-up ("resubscribed") outranks a
plain "notification".
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("calsync.subscriptions")

OnChange = Callable[[str, str], None]
_RANK = {"notification": 0}


class Debouncer:
    def __init__(
        self,
        on_change: OnChange,
        delay_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_change = on_change
        self._delay = max(0.0, delay_s)
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: dict[str, str] = {}
        self._due: list[tuple[float, str]] = []
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopped = False
            self._thread = threading.Thread(
                target=self._run, name="calsync-notify-debounce", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def notify(self, address: str, reason: str = "notification") -> None:
        with self._cond:
            known = self._pending.get(address)
            if known is None:
                self._pending[address] = reason
                heapq.heappush(self._due, (self._clock() + self._delay, address))
                self._cond.notify()
            elif _RANK.get(reason, 1) > _RANK.get(known, 1):
                self._pending[address] = reason

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._due or self._due[0][0] > self._clock()):
                    wait = self._due[0][0] - self._clock() if self._due else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                batch: list[tuple[str, str]] = []
                now = self._clock()
                while self._due and self._due[0][0] <= now:
                    _, address = heapq.heappop(self._due)
                    batch.append((address, self._pending.pop(address)))
            for address, reason in batch:
                try:
                    self._on_change(address, reason)
                except Exception as exc:  # a bug in the callback must not stop notifications
                    log.exception(
                        "subscription_internal_error",
                        mailbox=address,
                        error=f"on_change: {type(exc).__name__}: {exc}",
                    )
