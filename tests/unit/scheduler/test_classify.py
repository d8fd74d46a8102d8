"""Which policy branch an error takes."""

from __future__ import annotations

import pytest

from calsync.errors import (
    AccessDenied,
    AuthError,
    CalsyncError,
    LockHeld,
    MailboxNotFound,
    MassDeleteGuard,
    StoreError,
    ThrottledError,
    TransientError,
)
from calsync.scheduler.policy import OutcomeKind, classify


@pytest.mark.parametrize(
    ("error", "kind", "retry_after"),
    [
        (None, OutcomeKind.OK, None),
        (AuthError("x", tenant="t", error_code="AADSTS7000222"), OutcomeKind.AUTH, None),
        (AuthError("x", tenant="t", transient=True), OutcomeKind.TRANSIENT, None),
        (ThrottledError("busy", retry_after=2.0), OutcomeKind.THROTTLED, 2.0),
        (TransientError("reset", retry_after=None), OutcomeKind.TRANSIENT, None),
        (AccessDenied("no", mailbox="m"), OutcomeKind.PERMANENT, None),
        (MailboxNotFound("no", mailbox="m"), OutcomeKind.PERMANENT, None),
        (MassDeleteGuard("too many", deletes=9, total=10), OutcomeKind.GUARD, None),
        (StoreError("disk full"), OutcomeKind.TRANSIENT, None),
        (LockHeld("held", resource="mailbox:m"), OutcomeKind.TRANSIENT, None),
        (CalsyncError("bug", error_code="internal_error"), OutcomeKind.TRANSIENT, None),
    ],
)
def test_classify(error: CalsyncError | None, kind: OutcomeKind, retry_after: float | None) -> None:
    assert classify(error) == (kind, retry_after)
