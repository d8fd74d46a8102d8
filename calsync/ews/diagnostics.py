"""``calsync check`` for EWS tenants: can we get a token, and can we open each mailbox's calendar?

Like Exchange's ``Test-ApplicationAccessPolicy``, but for every configured mailbox in one run:
mailboxes are checked concurrently (one GetFolder each), so thousands take minutes, not hours.
A throttled mailbox is reported as ``throttled`` rather than waited for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from exchangelib.services import GetFolder

from calsync.errors import AuthError, CalsyncError, MailboxError, ThrottledError
from calsync.ews.calendar import calendar_folder
from calsync.ews.client import EwsClient, TokenSource
from calsync.ews.errors import classify, event_name

log = structlog.get_logger("calsync.ews")

OK = "ok"


@dataclass(frozen=True, slots=True)
class TenantCheck:
    name: str
    status: str  # ok | auth_failed
    error_code: str | None = None
    hint: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "error_code": self.error_code,
                "hint": self.hint}  # fmt: skip


@dataclass(frozen=True, slots=True)
class MailboxCheck:
    address: str
    tenant: str
    # ok | access_denied | not_found | ews_blocked | unlicensed | throttled | auth_failed | error
    status: str
    error_code: str | None = None
    hint: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "tenant": self.tenant, "status": self.status,
                "error_code": self.error_code, "hint": self.hint}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CheckReport:
    tenants: tuple[TenantCheck, ...] = ()
    mailboxes: tuple[MailboxCheck, ...] = ()

    @property
    def ok(self) -> bool:
        return all(t.status == OK for t in self.tenants) and all(
            m.status == OK for m in self.mailboxes
        )

    def as_dict(self) -> dict[str, Any]:
        """The ``calsync check --json`` document (DESIGN.md "Machine-readable reports")."""
        return {
            "tenants": [t.as_dict() for t in self.tenants],
            "mailboxes": [m.as_dict() for m in self.mailboxes],
        }


def status_of(error: CalsyncError) -> str:
    if isinstance(error, MailboxError):
        return error.status
    if isinstance(error, ThrottledError):
        return "throttled"
    if isinstance(error, AuthError):
        return "auth_failed"
    return "error"


def check_tenant(
    provider: TokenSource | None, name: str, ews_url: str | None = None
) -> TenantCheck:
    """Acquire a token for the tenant's EWS resource (tenants with NTLM/Basic have none: ok)."""
    if provider is None:
        return TenantCheck(name, OK)
    scope = provider.scope_for("ews", ews_url)
    try:
        provider.token(scope)
    except AuthError as error:
        return TenantCheck(name, "auth_failed", error.error_code, error.hint, error.message)
    return TenantCheck(name, OK)


def check_mailbox(client: EwsClient, address: str) -> MailboxCheck:
    """Open the mailbox's calendar folder (one GetFolder, impersonating the mailbox)."""

    def open_calendar(account: Any) -> None:
        folder = calendar_folder(account)
        for result in GetFolder(account=account).call(
            folders=[folder], additional_fields=set(), shape="IdOnly"
        ):
            if isinstance(result, Exception):
                raise result

    try:
        client.call(address, open_calendar, retry_throttled=False)
    except CalsyncError as error:
        status = status_of(error)
        if isinstance(error, ThrottledError):
            log.warning("ews_throttled", mailbox=address, tenant=client.tenant,
                        error_code=error.error_code, back_off_s=error.retry_after)  # fmt: skip
        else:
            log.error(event_name(error), mailbox=address, tenant=client.tenant, status=status,
                      error_code=error.error_code, hint=error.hint)  # fmt: skip
        return MailboxCheck(address, client.tenant, status, error.error_code, error.hint,
                            error.message)  # fmt: skip
    except Exception as exc:  # a bug or an unforeseen answer: reported, never fatal to the run
        unknown = classify(exc, mailbox=address, tenant=client.tenant)
        return MailboxCheck(address, client.tenant, "error", unknown.error_code, None,
                            unknown.message)  # fmt: skip
    return MailboxCheck(address, client.tenant, OK)


@dataclass
class TenantTarget:
    """One tenant to check: its token provider (None for NTLM/Basic), client and mailboxes."""

    name: str
    client: EwsClient
    provider: TokenSource | None
    mailboxes: Sequence[str] = field(default_factory=tuple)


def check_mailboxes(
    client: EwsClient, addresses: Iterable[str], *, workers: int = 32
) -> list[MailboxCheck]:
    """Check many mailboxes of one tenant concurrently; results in the order given."""
    addresses = list(addresses)
    if not addresses:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(addresses)))) as pool:
        return list(pool.map(lambda a: check_mailbox(client, a), addresses))


def check_all(
    targets: Sequence[TenantTarget],
    *,
    workers: int = 32,
    progress: Callable[[MailboxCheck], None] | None = None,
) -> CheckReport:
    """Every tenant, then every mailbox of the tenants whose token worked."""
    tenants: list[TenantCheck] = []
    mailboxes: list[MailboxCheck] = []
    for target in targets:
        tenant = check_tenant(target.provider, target.name, target.client.settings.ews_url)
        tenants.append(tenant)
        if tenant.status != OK:
            mailboxes.extend(
                MailboxCheck(a, target.name, "auth_failed", tenant.error_code, tenant.hint)
                for a in target.mailboxes
            )
            continue
        for result in check_mailboxes(target.client, target.mailboxes, workers=workers):
            mailboxes.append(result)
            if progress is not None:
                progress(result)
    return CheckReport(tuple(tenants), tuple(mailboxes))
