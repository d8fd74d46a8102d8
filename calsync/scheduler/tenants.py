"""Per-tenant gates: a throttled tenant slows all of its mailboxes, a refused one pauses them.

Exchange throttles per tenant (and per app), so when one mailbox hears ``ErrorServerBusy`` its
siblings would hear it too: they wait out the same back-off instead of adding load. Other
tenants are not affected. When Entra ID refuses a tenant's credentials every mailbox of that
tenant would fail the same way, so the tenant is paused: its mailboxes are deferred, and one
probe run per ``auth_retry`` finds out whether the credentials work again (a SIGHUP with new
credentials resumes the tenant at once).

Thread-safe; no clock of its own (``now`` is passed in).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Pause:
    """Why a tenant is paused (what ``auth_failed`` said)."""

    error_code: str
    message: str
    hint: str | None
    since: datetime
    probe_at: datetime


@dataclass(frozen=True)
class Gate:
    """A mailbox may not run now: ``reason`` is ``throttled`` or ``paused`` (its tenant), or
    ``budget`` (its Graph request budget, ``scheduler.budget``); retry at ``until``."""

    reason: str
    until: datetime
    pause: Pause | None = None


class TenantGates:
    def __init__(self, *, auth_retry_s: float = 900.0) -> None:
        self.auth_retry_s = auth_retry_s
        self._lock = threading.Lock()
        self._throttled: dict[str, datetime] = {}
        self._paused: dict[str, Pause] = {}

    def check(self, tenant: str, now: datetime) -> Gate | None:
        """None when a run of this tenant's mailbox may start now.

        A paused tenant lets exactly one run through per ``auth_retry_s`` (the probe).
        """
        with self._lock:
            pause = self._paused.get(tenant)
            if pause is not None:
                if now >= pause.probe_at:
                    retry = now + timedelta(seconds=self.auth_retry_s)
                    self._paused[tenant] = Pause(
                        pause.error_code, pause.message, pause.hint, pause.since, retry
                    )
                    return None
                return Gate("paused", pause.probe_at, pause)
            until = self._throttled.get(tenant)
            if until is not None:
                if now < until:
                    return Gate("throttled", until)
                del self._throttled[tenant]
            return None

    def throttle(self, tenant: str, until: datetime) -> bool:
        """Slow the tenant until ``until``; True when this starts a new throttle window."""
        with self._lock:
            current = self._throttled.get(tenant)
            if current is None or until > current:
                self._throttled[tenant] = until
            return current is None

    def throttled_until(self, tenant: str) -> datetime | None:
        with self._lock:
            return self._throttled.get(tenant)

    def pause(
        self, tenant: str, *, error_code: str, message: str, hint: str | None, now: datetime
    ) -> bool:
        """Pause the tenant; True when it was not paused before."""
        with self._lock:
            before = self._paused.get(tenant)
            probe_at = now + timedelta(seconds=self.auth_retry_s)
            since = before.since if before else now
            self._paused[tenant] = Pause(error_code, message, hint, since, probe_at)
            return before is None

    def resume(self, tenant: str) -> bool:
        """Lift a pause; True when the tenant was paused."""
        with self._lock:
            self._throttled.pop(tenant, None)
            return self._paused.pop(tenant, None) is not None

    def paused(self) -> dict[str, Pause]:
        with self._lock:
            return dict(self._paused)
