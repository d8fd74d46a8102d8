"""Fault injection: the active faults, merged from POST /_sim/faults, and their dice.

Keys: ``error_rate`` (EWS: HTTP 503 or ErrorInternalServerError; Graph: 503 with Retry-After),
``server_busy_rate`` (EWS: ErrorServerBusy with ``server_busy_backoff_ms``; Graph: 429 with
Retry-After), ``reset_rate`` (the connection is aborted before an answer; EWS and Graph),
``latency_ms`` (every EWS and Graph request waits), ``token_outage`` (Entra ID answers 503),
``drop_streams`` (once: streaming connections closed), ``invalidate_sync_state`` (once),
``deny_mailboxes`` + ``deny_mode``, ``ews_blocked``, ``unlicensed``, ``expire_secret``,
``corrupt`` (damaged responses for some mailboxes, see ``calsync.sim.wire_faults``),
``scope`` (limits the rate faults to tenants/mailboxes) and ``seed`` (reproducible dice).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from calsync.sim.wire_faults import check as check_corrupt

RATE_KEYS = ("server_busy_rate", "error_rate", "reset_rate")
LIST_KEYS = ("deny_mailboxes", "invalidate_sync_state", "ews_blocked", "unlicensed")
KNOWN_KEYS = frozenset(
    {
        *RATE_KEYS,
        *LIST_KEYS,
        "latency_ms",
        "drop_streams",
        "expire_secret",
        "deny_mode",
        "token_outage",
        "scope",
        "seed",
        "server_busy_backoff_ms",
        "corrupt",  # damaged responses: see calsync.sim.wire_faults
    }
)


class FaultError(ValueError):
    """An invalid fault specification (answered with HTTP 400)."""


@dataclass
class Faults:
    """The active faults. `invalidate_sync_state` and `drop_streams` act once and are never
    stored here (the admin API applies them at once)."""

    active: dict[str, Any] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def merge(self, spec: dict[str, Any]) -> dict[str, Any]:
        unknown = set(spec) - KNOWN_KEYS
        if unknown:
            raise FaultError(f"unknown fault keys: {sorted(unknown)}")
        for key in RATE_KEYS:
            if key in spec and not 0 <= float(spec[key]) <= 1:
                raise FaultError(f"{key} must be between 0 and 1")
        for key in LIST_KEYS:
            if key in spec and not isinstance(spec[key], list):
                raise FaultError(f"{key} must be a list")
        if "deny_mode" in spec and spec["deny_mode"] not in ("soap", "http403"):
            raise FaultError("deny_mode must be 'soap' or 'http403'")
        try:
            check_corrupt(spec.get("corrupt"))
        except ValueError as exc:
            raise FaultError(str(exc)) from None
        if "seed" in spec:
            self.rng = random.Random(spec["seed"])
        self.active.update(spec)
        return self.snapshot()

    def clear(self) -> None:
        self.active.clear()

    def snapshot(self) -> dict[str, Any]:
        return dict(self.active)

    def in_scope(self, tenant: str | None, mailbox: str | None) -> bool:
        scope = self.active.get("scope")
        if not scope:
            return True
        tenants = scope.get("tenants")
        mailboxes = [m.lower() for m in scope.get("mailboxes") or []]
        if tenants is not None and tenant not in tenants:
            return False
        return not (mailboxes and (mailbox or "").lower() not in mailboxes)

    def roll(self, key: str, tenant: str | None, mailbox: str | None) -> bool:
        rate = float(self.active.get(key) or 0)
        if rate <= 0 or not self.in_scope(tenant, mailbox):
            return False
        return self.rng.random() < rate

    @property
    def latency_s(self) -> float:
        return float(self.active.get("latency_ms") or 0) / 1000

    @property
    def backoff_ms(self) -> int:
        return int(self.active.get("server_busy_backoff_ms", 2000))

    def listed(self, key: str, value: str) -> bool:
        return value.lower() in (str(v).lower() for v in self.active.get(key) or [])
