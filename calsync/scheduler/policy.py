"""PURE: when is a mailbox due next, given how its last run went?

No clock and no randomness of its own: ``now`` and a ``random`` function in [0, 1) are passed
in, so every decision is reproducible in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from calsync.errors import (
    AuthError,
    CalsyncError,
    MailboxError,
    MassDeleteGuard,
    ThrottledError,
    TransientError,
)


class OutcomeKind(StrEnum):
    OK = "ok"
    TRANSIENT = "transient"  # network, 5xx, timeouts
    THROTTLED = "throttled"  # ErrorServerBusy / 429 / 503 with a back-off hint
    PERMANENT = "permanent"  # access denied, mailbox not found, EWS blocked, unlicensed
    AUTH = "auth"  # the tenant's credentials were refused
    GUARD = "guard"  # mass-delete guard: needs an operator


@dataclass(frozen=True)
class Timing:
    """The [daemon]/[subscriptions] settings that shape the schedule (seconds)."""

    poll_interval: float = 300
    poll_jitter: float = 30
    healthy_poll_interval: float = 86400
    permanent_failure_retry: float = 3600
    max_backoff: float = 3600
    base_backoff: float = 15
    auth_retry: float = 900


@dataclass(frozen=True)
class Decision:
    due: datetime
    delay_s: float
    reason: str


def next_due(
    kind: OutcomeKind,
    *,
    now: datetime,
    consecutive_failures: int,
    timing: Timing,
    random: Callable[[], float],
    retry_after: float | None = None,
    subscription_healthy: bool = False,
) -> Decision:
    """The next run of a mailbox. ``consecutive_failures`` counts this failure too."""
    if kind is OutcomeKind.OK:
        interval = timing.healthy_poll_interval if subscription_healthy else timing.poll_interval
        delay = interval + random() * timing.poll_jitter
        reason = "healthy subscription" if subscription_healthy else "poll interval"
    elif kind in (OutcomeKind.TRANSIENT, OutcomeKind.THROTTLED):
        exponent = max(0, min(consecutive_failures - 1, 20))
        ceiling = min(timing.max_backoff, timing.base_backoff * 2**exponent)
        delay = ceiling * (0.5 + random() / 2)  # "equal jitter": never less than half
        if retry_after is not None:
            delay = max(delay, retry_after)
        reason = "back-off" if kind is OutcomeKind.TRANSIENT else "server asked to back off"
    elif kind is OutcomeKind.AUTH:
        delay = min(timing.auth_retry, timing.permanent_failure_retry)
        reason = "tenant credentials refused"
    else:
        delay = timing.permanent_failure_retry + random() * timing.poll_jitter
        reason = "permanent failure" if kind is OutcomeKind.PERMANENT else "mass-delete guard"
    return Decision(due=now + timedelta(seconds=delay), delay_s=delay, reason=reason)


def classify(error: CalsyncError | None) -> tuple[OutcomeKind, float | None]:
    """The kind of a run's outcome and the server's back-off hint (seconds), if any."""
    if error is None:
        return OutcomeKind.OK, None
    if isinstance(error, AuthError):
        return (OutcomeKind.TRANSIENT if error.transient else OutcomeKind.AUTH), None
    if isinstance(error, ThrottledError):
        return OutcomeKind.THROTTLED, error.retry_after
    if isinstance(error, TransientError):
        return OutcomeKind.TRANSIENT, error.retry_after
    if isinstance(error, MailboxError):
        return OutcomeKind.PERMANENT, None
    if isinstance(error, MassDeleteGuard):
        return OutcomeKind.GUARD, None
    # store trouble, another process holding the mailbox, a refused sync state …: retry soon
    return OutcomeKind.TRANSIENT, None
