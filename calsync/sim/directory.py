"""The simulated directory: tenants, their app registration and mailboxes."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field

from calsync.sim.tls import KeyPair, make_app_cert, thumbprints

TENANT_NAMES = ("contoso", "fabrikam", "northwind", "adatum", "litware", "tailspin", "woodgrove")


@dataclass
class ClientSecret:
    value: str
    expires: dt.datetime


@dataclass
class Tenant:
    """One Entra ID tenant with one app registration (client credentials) and its mailboxes."""

    name: str
    tenant_id: str
    client_id: str
    secrets: list[ClientSecret]
    app_cert: KeyPair
    mailboxes: list[str] = field(default_factory=list)
    onprem: bool = False
    service_user: str = ""
    service_password: str = ""

    @property
    def domain(self) -> str:
        return f"{self.name}.example"

    @property
    def client_secret(self) -> str:
        return self.secrets[0].value

    def cert_thumbprints(self) -> tuple[str, str, str]:
        return thumbprints(self.app_cert.cert)

    def add_secret(self, expires: dt.datetime) -> ClientSecret:
        secret = ClientSecret(value=new_secret_value(), expires=expires)
        self.secrets.append(secret)
        return secret


def new_secret_value() -> str:
    # Entra secrets look like "abc8Q~…" (40 characters, with a tilde)
    raw = secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
    return f"{raw[:3]}8Q~{raw[3:37]}"


def tenant_name(index: int) -> str:
    if index < len(TENANT_NAMES):
        return TENANT_NAMES[index]
    return f"tenant{index + 1:02d}"


def make_tenant(
    index: int, mailbox_count: int, rng_uuid: uuid.UUID, *, onprem: bool = False
) -> Tenant:
    name = tenant_name(index)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    tenant = Tenant(
        name=name,
        tenant_id=str(rng_uuid),
        client_id=str(uuid.uuid4()),
        secrets=[ClientSecret(new_secret_value(), expires)],
        app_cert=make_app_cert(f"calsync-{name}"),
        onprem=onprem,
    )
    tenant.mailboxes = [f"user{i + 1:03d}@{tenant.domain}" for i in range(mailbox_count)]
    if onprem:
        tenant.service_user = f"svc-calsync@{tenant.domain}"
        tenant.service_password = secrets.token_urlsafe(18)
    return tenant


class Directory:
    """All tenants, with lookups by id, name and mailbox address."""

    def __init__(self, tenants: list[Tenant]) -> None:
        self.tenants = tenants
        self._by_key: dict[str, Tenant] = {}
        for t in tenants:
            for key in (t.tenant_id, t.name, f"{t.name}.onmicrosoft.com", t.domain):
                self._by_key[key.lower()] = t
        self._by_client = {t.client_id: t for t in tenants}
        self._by_mailbox = {a.lower(): t for t in tenants for a in t.mailboxes}

    def tenant(self, key: str) -> Tenant | None:
        return self._by_key.get(key.lower())

    def tenant_of_mailbox(self, address: str) -> Tenant | None:
        return self._by_mailbox.get(address.lower())

    def tenant_by_client(self, client_id: str) -> Tenant | None:
        return self._by_client.get(client_id)
