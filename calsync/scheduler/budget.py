"""PURE: Graph's request budget per app and mailbox, as a sliding window.

Outlook allows one app 10,000 requests per 10 minutes against one mailbox
(``research/graph-notes.md`` §5), each request inside a ``$batch`` counted on its own. A
mailbox's runs spend from its window; a run that would take the window over the limit does not
start: the mailbox is deferred to the moment enough of the window's requests have aged out.
What a run will spend is not known before it runs; by default a run needs the least any run
costs (one request: a delta poll), so a run that can fit is never held back, and a run that
spends more than the window has left meets Outlook's own 429, whose ``Retry-After`` is obeyed.

``free_at`` and ``used`` are pure functions of the spends (no clock: ``now`` is passed in);
``RequestBudget`` keeps each mailbox's spends (pruned as they leave the window), thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class BudgetLimit:
    requests: int = 10_000
    window_s: float = 600.0

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)


@dataclass(frozen=True)
class Spend:
    """``requests`` spent by the run that ended at ``at`` (counted at its end: conservative,
    they leave the window later than they entered it)."""

    at: datetime
    requests: int


def live(spends: Iterable[Spend], now: datetime, limit: BudgetLimit) -> list[Spend]:
    """The spends still inside the window ending at ``now``, oldest first."""
    start = now - limit.window
    return sorted((s for s in spends if s.at > start), key=lambda s: s.at)


def used(spends: Iterable[Spend], now: datetime, limit: BudgetLimit) -> int:
    return sum(s.requests for s in live(spends, now, limit))


def free_at(
    spends: Iterable[Spend], now: datetime, need: int, limit: BudgetLimit
) -> datetime | None:
    """None when ``need`` more requests fit in the window now; else the earliest instant at
    which they fit. A ``need`` above the whole budget is taken as the whole budget (such a run
    starts once the window is empty rather than never)."""
    need = min(max(1, need), limit.requests)
    window = live(spends, now, limit)
    excess = sum(s.requests for s in window) + need - limit.requests
    if excess <= 0:
        return None
    for spend in window:
        excess -= spend.requests
        if excess <= 0:
            return spend.at + limit.window
    raise AssertionError("unreachable: need <= limit.requests")  # pragma: no cover


@dataclass(frozen=True)
class Deferral:
    """A run may not start: ``need`` requests would take the window (``used`` now) over the
    limit; budget enough frees at ``until``."""

    until: datetime
    used: int
    need: int
    limit: int


class RequestBudget:
    def __init__(self, limit: BudgetLimit | None = None) -> None:
        self.limit = limit or BudgetLimit()
        self._spends: dict[str, list[Spend]] = {}
        self._lock = threading.Lock()

    def record(self, key: str, at: datetime, requests: int) -> None:
        """A run of ``key`` (the mailbox) ended at ``at`` having spent ``requests``."""
        if requests <= 0:
            return
        with self._lock:
            kept = live(self._spends.get(key, ()), at, self.limit)
            self._spends[key] = [*kept, Spend(at, requests)]

    def used(self, key: str, now: datetime) -> int:
        with self._lock:
            return used(self._spends.get(key, ()), now, self.limit)

    def check(self, key: str, now: datetime, need: int = 1) -> Deferral | None:
        """None when a run of ``key`` that spends ``need`` requests may start now."""
        with self._lock:
            spends = list(self._spends.get(key, ()))
        until = free_at(spends, now, need, self.limit)
        if until is None:
            return None
        return Deferral(until, used(spends, now, self.limit), need, self.limit.requests)
