"""One mailbox run: bind the log context, call the engine, classify the outcome.

Every run ends with exactly one canonical log line, ``sync_finished`` or ``sync_failed``.
The daemon and ``calsync sync --once`` share this code path.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from calsync.errors import (
    AccessDenied,
    AuthError,
    CalsyncError,
    MailboxError,
    MailboxNotFound,
    MassDeleteGuard,
    ThrottledError,
    TransientError,
)
from calsync.model import Mailbox, SyncReport

log = structlog.get_logger("calsync.worker")

RunSync = Callable[[Mailbox], SyncReport]


@dataclass(frozen=True)
class RunOutcome:
    """What the scheduler needs to decide when this mailbox is due next."""

    mailbox: str
    tenant: str
    ok: bool
    report: SyncReport | None = None
    error: CalsyncError | None = None
    duration_s: float = 0.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def error_code(self) -> str | None:
        return self.error.error_code if self.error else None

    @property
    def status(self) -> str:
        """The ``check``/``status`` vocabulary: ok, access_denied, not_found, throttled …"""
        if self.ok:
            return "ok"
        if isinstance(self.error, AuthError):
            return "auth_failed"
        if isinstance(self.error, MailboxError):
            return self.error.status
        if isinstance(self.error, ThrottledError):
            return "throttled"
        return "error"


def run_mailbox(
    mailbox: Mailbox,
    run_sync: RunSync,
    *,
    requests: Callable[[], int] = lambda: 0,
    retry_in_s: Callable[[RunOutcome], float | None] = lambda _o: None,
) -> RunOutcome:
    """Run one sync of ``mailbox`` and log its canonical line; never raises CalsyncError."""
    run_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    before = requests()
    with structlog.contextvars.bound_contextvars(
        mailbox=mailbox.address, tenant=mailbox.tenant, run_id=run_id
    ):
        log.debug("sync_started")
        try:
            report = run_sync(mailbox)
        except CalsyncError as exc:
            outcome = RunOutcome(
                mailbox.address,
                mailbox.tenant,
                ok=False,
                error=exc,
                duration_s=time.monotonic() - started,
                run_id=run_id,
            )
            _log_failure(mailbox, outcome, requests() - before, retry_in_s(outcome))
            return outcome
        outcome = RunOutcome(
            mailbox.address,
            mailbox.tenant,
            ok=True,
            report=report,
            duration_s=time.monotonic() - started,
            run_id=run_id,
        )
        log.info(
            "sync_finished",
            direction=str(mailbox.direction),
            outcome=report.outcome,
            exchange=report.exchange.as_dict(),
            local=report.local.as_dict(),
            conflicts=report.conflicts,
            skipped=report.skipped,
            requests=report.requests or requests() - before,
            duration_s=round(outcome.duration_s, 3),
        )
        return outcome


def _log_failure(
    mailbox: Mailbox, outcome: RunOutcome, requests: int, retry_in_s: float | None
) -> None:
    error = outcome.error
    assert error is not None
    if isinstance(error, AuthError):
        log.error("auth_failed", error_code=error.error_code, hint=error.hint)
    elif isinstance(error, AccessDenied):
        log.error("mailbox_access_denied", error_code=error.error_code, hint=error.hint)
    elif isinstance(error, MailboxNotFound):
        log.error("mailbox_not_found", error_code=error.error_code, hint=error.hint)
    elif isinstance(error, ThrottledError):
        log.warning("ews_throttled", error_code=error.error_code, back_off_s=error.retry_after)
    elif isinstance(error, MassDeleteGuard):
        log.error("mass_delete_guard", deletes=error.deletes, total=error.total)
    level = "warning" if isinstance(error, TransientError) else "error"
    getattr(log, level)(
        "sync_failed",
        direction=str(mailbox.direction),
        outcome="failed",
        exchange={"create": 0, "update": 0, "delete": 0},
        local={"create": 0, "update": 0, "delete": 0},
        conflicts=0,
        skipped=0,
        requests=requests,
        duration_s=round(outcome.duration_s, 3),
        error_code=error.error_code,
        error=str(error),
        hint=error.hint,
        retry_in_s=retry_in_s,
    )
