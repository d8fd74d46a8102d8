"""Graph HTTP errors -> calsync's error tree (the one place that knows Graph's error codes)."""

from __future__ import annotations

from typing import Any

from calsync.errors import (
    AccessDenied,
    AuthError,
    CalsyncError,
    ConflictError,
    ItemError,
    MailboxNotFound,
    SyncStateInvalid,
    ThrottledError,
    TransientError,
    Unlicensed,
)

_NOT_FOUND_MAILBOX = {
    "ErrorInvalidUser",
    "ResourceNotFound",
    "MailboxNotEnabledForRESTAPI",
    "ErrorNonExistentMailbox",
    "UserNotFound",
}


def error_code(body: Any) -> tuple[str, str]:
    """(code, message) of a Graph error body (empty strings when it has none)."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return str(err.get("code") or ""), str(err.get("message") or "")
    return "", ""


def retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def classify(
    status: int,
    body: Any,
    headers: Any,
    *,
    mailbox: str,
    tenant: str,
    item: str | None = None,
) -> CalsyncError:
    """The calsync error for a Graph response with a non-success ``status``."""
    code, message = error_code(body)
    text = f"Graph {status} {code}: {message}".strip()
    if status == 401:
        return AuthError(
            text,
            tenant=tenant,
            error_code=code or "HTTP401",
            hint="the token was refused: check the app's Graph permission "
            "(Calendars.ReadWrite, application) and admin consent",
        )
    if status in (429, 503) or code in ("ApplicationThrottled", "ErrorServerBusy"):
        return ThrottledError(
            text, retry_after=retry_after(headers), error_code=code or f"HTTP{status}"
        )
    if status == 403:
        if code == "MailboxNotEnabledForRESTAPI":
            return Unlicensed(text, mailbox=mailbox, error_code=code)
        return AccessDenied(
            text,
            mailbox=mailbox,
            error_code=code or "HTTP403",
            hint="the mailbox is outside the app's RBAC for Applications scope "
            "or ApplicationAccessPolicy",
        )
    if status == 404 and (code in _NOT_FOUND_MAILBOX or item is None):
        return MailboxNotFound(text, mailbox=mailbox, error_code=code or "HTTP404")
    if status == 410 or code in ("SyncStateNotFound", "SyncStateInvalid"):
        return SyncStateInvalid(text, error_code=code or "SyncStateNotFound")
    if status == 412 or code == "ErrorIrresolvableConflict":
        return ConflictError(text, error_code=code or "ErrorIrresolvableConflict")
    if status == 404:
        return ItemError(text, item=item or "", error_code="ErrorItemNotFound")
    if status >= 500:
        return TransientError(
            text, retry_after=retry_after(headers), error_code=code or f"HTTP{status}"
        )
    return ItemError(text, item=item or "", error_code=code or f"HTTP{status}")
