"""The one place that knows exchangelib's exceptions: each becomes a calsync error with a code and
an operator hint (DESIGN.md "Logs, precisely": ``error_code`` is the server's own name, verbatim).
"""

from __future__ import annotations

import re

import requests
from exchangelib import errors as ex

from calsync.errors import (
    AccessDenied,
    AuthError,
    CalsyncError,
    ConflictError,
    EwsBlocked,
    ItemError,
    MailboxError,
    MailboxNotFound,
    SyncStateInvalid,
    ThrottledError,
    TransientError,
    Unlicensed,
)

HINT_ACCESS_DENIED = (
    "the app may not open this mailbox: add it to the scope of the app's ApplicationAccessPolicy "
    "or RBAC for Applications management scope (check with Test-ServicePrincipalAuthorization), "
    "or remove it from calsync's configuration"
)
HINT_IMPERSONATION = (
    "the credentials may not impersonate this mailbox: give the app the application permission "
    "full_access_as_app with admin consent (Exchange Online) or the service account the "
    "ApplicationImpersonation role (Exchange Server)"
)
HINT_NOT_FOUND = (
    "no mailbox with this address: check the spelling and that the user still exists and has an "
    "Exchange mailbox, or remove it from calsync's configuration"
)
HINT_EWS_BLOCKED = (
    "EWS is disabled for this tenant or this app: an Exchange admin must set EWSEnabled=True and "
    "add the app's client id to EwsAllowedAppIDs (Set-OrganizationConfig), or switch the tenant "
    'to the Graph adapter (api = "graph")'
)
HINT_UNLICENSED = (
    "the mailbox has no licence that allows EWS (Exchange Online Kiosk, F1 and F3 do not): assign "
    "another licence or remove the mailbox from calsync's configuration"
)
HINT_THROTTLED = "Exchange asked calsync to slow down; calsync retries after the back-off"
HINT_UNAUTHORIZED = (
    "EWS refused the token: the app registration needs the application permission "
    "full_access_as_app of Office 365 Exchange Online with admin consent in this tenant"
)
HINT_SYNC_STATE = "the stored sync state is no longer valid; calsync resynchronises the mailbox"

_THROTTLING = (
    ex.ErrorExceededConnectionCount,
    ex.ErrorExceededSubscriptionCount,
    ex.ErrorTooManyObjectsOpened,
    ex.ErrorExceededFindCountLimit,
    ex.ErrorMailboxMoveInProgress,
)
_NOT_FOUND = (
    ex.ErrorNonExistentMailbox,
    ex.ErrorInvalidSmtpAddress,
    ex.ErrorInvalidUserPrincipalName,
    ex.ErrorMissingEmailAddress,
    ex.ErrorInvalidUserSid,
)
_DENIED = (
    ex.ErrorImpersonateUserDenied,
    ex.ErrorImpersonationDenied,
    ex.ErrorImpersonationFailed,
    ex.ErrorInvalidExchangeImpersonationHeaderData,
)
_CONFLICT = (
    ex.ErrorIrresolvableConflict,
    ex.ErrorStaleObject,
    ex.ErrorInvalidChangeKey,
    ex.ErrorChangeKeyRequired,
    ex.ErrorChangeKeyRequiredForWriteOperations,
)
_TRANSIENT = (
    ex.ErrorTimeoutExpired,
    ex.ErrorInternalServerTransientError,
    ex.ErrorInternalServerError,
    ex.ErrorConnectionFailed,
    ex.ErrorConnectionFailedTransientError,
    ex.RateLimitError,
    ex.SessionPoolMinSizeReached,
    ex.RedirectError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)
DEFAULT_BACKOFF_S = 30.0


class HttpStatusError(ex.MalformedResponseError):  # type: ignore[misc]
    """An HTTP error status EWS answered without a SOAP body (raised by calsync's retry policy)."""

    def __init__(self, status_code: int, body: str, retry_after: float | None = None):
        self.status_code = status_code
        self.body = body[:500]
        self.retry_after = retry_after
        super().__init__(f"HTTP {status_code}: {self.body[:200]}")


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else _name(exc)
    return text[:300]


def classify(exc: BaseException, *, mailbox: str | None, tenant: str) -> CalsyncError:
    """The calsync error for ``exc`` raised while working on ``mailbox`` of ``tenant``."""
    if isinstance(exc, CalsyncError):
        return exc
    who = mailbox or tenant
    return (
        _throttling(exc, who)
        or _mailbox_problem(exc, who)
        or _http_problem(exc, who, tenant)
        or _other(exc, who)
    )


def _throttling(exc: BaseException, who: str) -> CalsyncError | None:
    if isinstance(exc, ex.ErrorServerBusy):
        return ThrottledError(
            f"{who}: Exchange is busy ({_short(exc)})",
            retry_after=exc.back_off if exc.back_off else DEFAULT_BACKOFF_S,
            error_code="ErrorServerBusy",
            hint=HINT_THROTTLED,
        )
    if isinstance(exc, _THROTTLING):
        return ThrottledError(
            f"{who}: {_name(exc)} ({_short(exc)})",
            retry_after=DEFAULT_BACKOFF_S,
            error_code=_name(exc),
            hint=HINT_THROTTLED,
        )
    return None


def _mailbox_problem(exc: BaseException, who: str) -> CalsyncError | None:
    if isinstance(exc, ex.ErrorInvalidSyncStateData):
        return SyncStateInvalid(f"{who}: {_short(exc)}", hint=HINT_SYNC_STATE)
    if isinstance(exc, _CONFLICT):
        return ConflictError(f"{who}: {_short(exc)}", error_code=_name(exc))
    if isinstance(exc, ex.ErrorAccessDenied):
        return _mailbox(AccessDenied, exc, who, _name(exc), HINT_ACCESS_DENIED)
    if isinstance(exc, _DENIED):
        return _mailbox(AccessDenied, exc, who, _name(exc), HINT_IMPERSONATION)
    if isinstance(exc, _NOT_FOUND):
        return _mailbox(MailboxNotFound, exc, who, _name(exc), HINT_NOT_FOUND)
    return None


def _http_problem(exc: BaseException, who: str, tenant: str) -> CalsyncError | None:
    if isinstance(exc, ex.UnauthorizedError):
        return _http(401, "", who, tenant, None)
    if isinstance(exc, ex.CASError):
        return _http(exc.response.status_code, exc.cas_error, who, tenant, None)
    if isinstance(exc, HttpStatusError):
        return _http(exc.status_code, exc.body, who, tenant, exc.retry_after)
    if isinstance(exc, ex.MalformedResponseError):
        match = re.search(r"Code: (\d{3})", str(exc))
        if match:
            return _http(int(match.group(1)), str(exc), who, tenant, None)
    return None


def _other(exc: BaseException, who: str) -> CalsyncError:
    if isinstance(exc, _TRANSIENT):
        return TransientError(f"{who}: {_name(exc)}: {_short(exc)}", error_code=_name(exc))
    if isinstance(exc, ex.ErrorItemNotFound | ex.ErrorCalendarOccurrenceIsDeletedFromRecurrence):
        return ItemError(f"{who}: {_short(exc)}", item="", error_code=_name(exc))
    if isinstance(exc, ex.ResponseMessageError):
        return CalsyncError(f"{who}: {_name(exc)}: {_short(exc)}", error_code=_name(exc))
    if isinstance(exc, ex.TransportError | OSError):
        return TransientError(f"{who}: {_name(exc)}: {_short(exc)}", error_code=_name(exc))
    return CalsyncError(f"{who}: unexpected {_name(exc)}: {_short(exc)}", error_code=_name(exc))


def _mailbox(
    cls: type[MailboxError], exc: BaseException, who: str, code: str, hint: str
) -> MailboxError:
    return cls(f"{who}: {_short(exc)}", mailbox=who, error_code=code, hint=hint)


def _http(status: int, body: str, who: str, tenant: str, retry_after: float | None) -> CalsyncError:
    code = f"HTTP{status}"
    text = body.lower()
    if status == 401:
        return AuthError(
            f"{tenant}: EWS answered 401 Unauthorized", tenant=tenant, error_code=code,
            hint=HINT_UNAUTHORIZED,
        )  # fmt: skip
    if status == 403:
        if "ews is disabled" in text or "not allowed to use ews" in text or "allowlist" in text:
            return EwsBlocked(f"{who}: EWS is blocked for this app", mailbox=who, error_code=code,
                              hint=HINT_EWS_BLOCKED)  # fmt: skip
        if "licen" in text:
            return Unlicensed(f"{who}: no licence for EWS", mailbox=who, error_code=code,
                              hint=HINT_UNLICENSED)  # fmt: skip
        return AccessDenied(f"{who}: HTTP 403 Forbidden", mailbox=who, error_code=code,
                            hint=HINT_ACCESS_DENIED)  # fmt: skip
    if status in {429, 503} or status >= 500:
        cls = ThrottledError if status in {429, 503} and retry_after else TransientError
        return cls(f"{who}: HTTP {status}", retry_after=retry_after, error_code=code)
    return CalsyncError(f"{who}: HTTP {status}: {body[:200]}", error_code=code)


def event_name(error: CalsyncError) -> str:
    """The log event (DESIGN.md "Logs") for an error of one mailbox or tenant."""
    names: tuple[tuple[type[CalsyncError], str], ...] = (
        (EwsBlocked, "mailbox_access_denied"),  # the check status tells EWS blocked / unlicensed
        (Unlicensed, "mailbox_access_denied"),
        (AccessDenied, "mailbox_access_denied"),
        (MailboxNotFound, "mailbox_not_found"),
        (ThrottledError, "ews_throttled"),
        (AuthError, "auth_failed"),
        (SyncStateInvalid, "sync_state_invalid"),
        (ConflictError, "conflict"),
        (TransientError, "ews_unavailable"),
    )
    return next((name for cls, name in names if isinstance(error, cls)), "ews_error")
