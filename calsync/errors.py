"""The calsync exception tree: errors are data, the CLI edge turns them into English.

Every error carries an ``error_code`` (the most specific code the server gave, verbatim, such as
``AADSTS7000222`` or ``ErrorAccessDenied``, or one of calsync's own such as ``mass_delete_guard``)
and an optional operator ``hint``. Messages never contain secrets or tokens.
"""

from __future__ import annotations

from collections.abc import Sequence


class CalsyncError(Exception):
    """Base of every error calsync raises on purpose."""

    default_code = "error"

    def __init__(self, message: str, *, error_code: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.error_code = error_code or self.default_code
        self.hint = hint

    def __str__(self) -> str:
        return self.message


# --- configuration -----------------------------------------------------------------------------


class ConfigError(CalsyncError):
    """The configuration is invalid; ``problems`` lists every problem found, one line each."""

    default_code = "config_invalid"

    def __init__(self, problems: Sequence[str], *, source: str | None = None):
        self.problems = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} configuration {noun}{where}:\n" + "\n".join(self.problems))


# --- authentication ----------------------------------------------------------------------------


class AuthError(CalsyncError):
    """A tenant's credentials were refused; pauses that tenant's mailboxes only."""

    default_code = "auth_failed"

    def __init__(
        self,
        message: str,
        *,
        tenant: str,
        error_code: str | None = None,
        hint: str | None = None,
        transient: bool = False,
    ):
        super().__init__(message, error_code=error_code, hint=hint)
        self.tenant = tenant
        self.transient = transient


# --- transient: retry later --------------------------------------------------------------------


class TransientError(CalsyncError):
    """Worth retrying: network trouble, 5xx, timeouts. ``retry_after`` in seconds when known."""

    default_code = "transient"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        error_code: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, error_code=error_code, hint=hint)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """The server asked us to slow down (ErrorServerBusy, HTTP 429/503 with Retry-After)."""

    default_code = "ErrorServerBusy"


# --- permanent per mailbox ---------------------------------------------------------------------


class MailboxError(CalsyncError):
    """A problem of one mailbox that retrying soon will not fix; other mailboxes go on."""

    default_code = "mailbox_error"
    status = "error"

    def __init__(
        self,
        message: str,
        *,
        mailbox: str,
        error_code: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, error_code=error_code, hint=hint)
        self.mailbox = mailbox


class AccessDenied(MailboxError):
    """The app may not open this mailbox (access policy, RBAC for Applications, impersonation)."""

    default_code = "ErrorAccessDenied"
    status = "access_denied"


class MailboxNotFound(MailboxError):
    """No such mailbox (wrong address, deleted user, not licensed for Exchange)."""

    default_code = "ErrorNonExistentMailbox"
    status = "not_found"


class EwsBlocked(MailboxError):
    """EWS is disabled for this tenant or this app is not on the tenant's EWS allow list."""

    default_code = "HTTP403"
    status = "ews_blocked"


class Unlicensed(MailboxError):
    """The mailbox has no licence that allows EWS."""

    default_code = "HTTP403"
    status = "unlicensed"


# --- sync --------------------------------------------------------------------------------------


class ConflictError(CalsyncError):
    """A write was planned from a ChangeKey that is no longer current."""

    default_code = "ErrorIrresolvableConflict"


class SyncStateInvalid(CalsyncError):
    """The stored sync state is no longer accepted; a full resync is needed."""

    default_code = "ErrorInvalidSyncStateData"


class ItemError(CalsyncError):
    """One item could not be read or written; it is recorded and skipped, the run goes on."""

    default_code = "bad_item"

    def __init__(self, message: str, *, item: str, error_code: str | None = None):
        super().__init__(message, error_code=error_code)
        self.item = item


class MassDeleteGuard(CalsyncError):
    """A run would delete more than the allowed share of a mailbox; it stopped instead."""

    default_code = "mass_delete_guard"

    def __init__(self, message: str, *, deletes: int, total: int, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.deletes = deletes
        self.total = total


# --- store -------------------------------------------------------------------------------------


class StoreError(CalsyncError):
    """The local store failed (disk full, read-only, locked, unreachable)."""

    default_code = "store_error"


class StoreUnavailable(StoreError):
    """The store cannot be opened at all."""

    default_code = "store_unavailable"


class LockHeld(StoreError):
    """Another calsync process holds the lock of this mailbox or store."""

    default_code = "lock_held"

    def __init__(self, message: str, *, resource: str):
        super().__init__(message)
        self.resource = resource
