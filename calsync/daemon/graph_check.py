"""``calsync check`` for tenants with ``api = "graph"``: a token for the Graph scope, then one
Graph request per mailbox (the first event of its calendar, ids only), reported with the same
types and statuses as the EWS check so ``check --json`` has one shape for both adapters.

It lives in the daemon layer because ``calsync.graph`` must not import ``calsync.ews`` (where the
report types are) and uses only the Graph client's public calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from calsync.errors import AuthError, CalsyncError
from calsync.ews.diagnostics import OK, MailboxCheck, TenantCheck, status_of
from calsync.graph import GraphClient

PROBE = "/calendar/events?$top=1&$select=id"

HINTS = {
    "access_denied": "the mailbox is outside the app's RBAC for Applications scope or "
    "ApplicationAccessPolicy (Graph: Calendars.ReadWrite, application)",
    "not_found": "no Exchange Online mailbox with this address in the tenant (check the "
    "address, the user's Exchange licence and that the mailbox is not on-premises)",
    "throttled": "Graph throttled the check (429): run it again later",
    "auth_failed": "Graph refused the app's token: check the Calendars.ReadWrite application "
    "permission and admin consent",
}


def check_graph_tenant(client: GraphClient) -> TenantCheck:
    """Acquire a token for the tenant's Graph scope."""
    try:
        client.provider.token(client.scope)
    except AuthError as error:
        hint = error.hint or HINTS["auth_failed"]
        return TenantCheck(client.tenant, "auth_failed", error.error_code, hint, error.message)
    return TenantCheck(client.tenant, OK)


def check_graph_mailbox(client: GraphClient, address: str) -> MailboxCheck:
    """Read the first event of the mailbox's calendar (one GET, ids only)."""
    try:
        client.call(address, "GET", client.user_url(address, PROBE))
    except CalsyncError as error:
        status = status_of(error)  # a throttled mailbox is reported, never waited for
        hint = error.hint or HINTS.get(status)
        return MailboxCheck(address, client.tenant, status, error.error_code, hint, error.message)
    except Exception as exc:  # a bug or an unforeseen answer: reported, never fatal to the run
        message = f"{type(exc).__name__}: {exc}"
        return MailboxCheck(address, client.tenant, "error", "unknown", None, message)
    return MailboxCheck(address, client.tenant, OK)


def check_graph(
    client: GraphClient, addresses: Iterable[str], *, workers: int = 32
) -> tuple[TenantCheck, list[MailboxCheck]]:
    """The tenant, then (if its token worked) its mailboxes concurrently, in the order given."""
    addresses = list(addresses)
    tenant = check_graph_tenant(client)
    if tenant.status != OK:
        return tenant, [
            MailboxCheck(a, client.tenant, "auth_failed", tenant.error_code, tenant.hint)
            for a in addresses
        ]
    if not addresses:
        return tenant, []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(addresses)))) as pool:
        return tenant, list(pool.map(lambda a: check_graph_mailbox(client, a), addresses))
