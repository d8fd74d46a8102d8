"""When do the tenants' secrets and certificates expire? ``secret_expiring`` / ``secret_expired``.

The daemon checks at start, after each reload and once a day: from 30 days before a tenant's
configured ``secret_expires`` date or its certificate's notAfter it warns daily
(``secret_expiring`` with the days left), and once the date has passed it logs an error
(``secret_expired``): Entra ID will refuse the tenant with AADSTS7000222 (secret) or
AADSTS700027 (certificate) and its mailboxes pause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import structlog

from calsync.config import Config
from calsync.config.checks import check_certificate

WARN_DAYS = 30

log = structlog.get_logger("calsync.daemon")


@dataclass(frozen=True)
class ExpiryNotice:
    tenant: str
    credential: str  # "client secret" | "certificate"
    expires: date
    days_left: int

    @property
    def expired(self) -> bool:
        return self.days_left < 0

    @property
    def hint(self) -> str:
        if self.credential == "certificate":
            return (
                "upload a new certificate to the app registration in Entra ID, replace the file "
                "and send calsync SIGHUP"
            )
        return (
            "create a new client secret in Entra ID (App registrations → Certificates & "
            "secrets), put it where the configuration points, update secret_expires and send "
            "calsync SIGHUP"
        )


def expiry_notices(
    config: Config, today: date, *, warn_days: int = WARN_DAYS
) -> list[ExpiryNotice]:
    """The tenants whose secret or certificate expires within ``warn_days`` (or has expired)."""
    notices = []
    for name, tenant in sorted(config.tenants.items()):
        dates: list[tuple[str, date]] = []
        if tenant.settings.secret_expires is not None:
            dates.append(("client secret", tenant.settings.secret_expires))
        if tenant.certificate is not None:
            not_after, _problems = check_certificate(tenant.certificate, today)
            if not_after is not None:
                dates.append(("certificate", not_after.date()))
        for credential, expires in dates:
            days_left = (expires - today).days
            if days_left <= warn_days:
                notices.append(ExpiryNotice(name, credential, expires, days_left))
    return notices


def log_expiry(config: Config, today: date) -> list[ExpiryNotice]:
    notices = expiry_notices(config, today)
    for n in notices:
        if n.expired:
            log.error(
                "secret_expired",
                tenant=n.tenant,
                credential=n.credential,
                expired=n.expires.isoformat(),
                hint=n.hint,
            )
        else:
            log.warning(
                "secret_expiring",
                tenant=n.tenant,
                credential=n.credential,
                days_left=n.days_left,
                expires=n.expires.isoformat(),
                hint=n.hint,
            )
    return notices
