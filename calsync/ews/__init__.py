"""The EWS adapter (the only package that imports exchangelib).

Build one ``EwsClient`` per tenant (``EwsSettings`` + the tenant's ``calsync.auth.TokenProvider``,
passed in by the caller: this package may not import ``calsync.auth``, which imports msal) and an
``EwsExchangeSide`` over them; ``check_all``/``check_mailbox``/``check_tenant`` diagnose.
"""

from __future__ import annotations

from calsync.ews.autodiscover import autodiscover_v2, discover_ews_url
from calsync.ews.calendar import EwsExchangeSide
from calsync.ews.client import DEFAULT_EWS_URL, EwsClient, EwsSettings, TokenSource
from calsync.ews.diagnostics import (
    CheckReport,
    MailboxCheck,
    TenantCheck,
    TenantTarget,
    check_all,
    check_mailbox,
    check_mailboxes,
    check_tenant,
)
from calsync.ews.errors import classify, event_name

__all__ = [
    "DEFAULT_EWS_URL",
    "CheckReport",
    "EwsClient",
    "EwsExchangeSide",
    "EwsSettings",
    "MailboxCheck",
    "TenantCheck",
    "TenantTarget",
    "TokenSource",
    "autodiscover_v2",
    "check_all",
    "check_mailbox",
    "check_mailboxes",
    "check_tenant",
    "classify",
    "discover_ews_url",
    "event_name",
]
