"""Building calsync's EWS stack against a running simulator (shared by these tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from calsync.auth import TenantCredentials, TokenProvider
from calsync.ews import EwsClient, EwsExchangeSide, EwsSettings
from calsync.model import Mailbox

sim_module = pytest.importorskip("calsync.sim")


@dataclass
class Stack:
    sim: Any
    tenant: dict[str, Any]
    provider: TokenProvider
    client: EwsClient
    side: EwsExchangeSide

    def mailbox(self, index: int = 0) -> Mailbox:
        return Mailbox(address=self.tenant["mailboxes"][index], tenant=self.tenant["name"])


def credentials(sim: Any, *, certificate: bool = False, **kwargs: Any) -> TenantCredentials:
    info, tenant = sim.info, sim.info["tenants"][0]
    secret: dict[str, Any] = (
        {"certificate_file": tenant["certificate_file"]}
        if certificate
        else {"client_secret": tenant["client_secret"]}
    )
    return TenantCredentials(
        name=tenant["name"],
        tenant_id=tenant["tenant_id"],
        client_id=tenant["client_id"],
        authority=info["authority"],
        ca_file=info["ca_file"],
        secret_source="client_secret_file secrets/contoso",
        **secret,
        **kwargs,
    )


def build(sim: Any, *, certificate: bool = False, **settings: Any) -> Stack:
    info = sim.info
    provider = TokenProvider(credentials(sim, certificate=certificate))
    client = EwsClient(
        EwsSettings(
            tenant=info["tenants"][0]["name"],
            ews_url=info["ews_url"],
            ca_file=info["ca_file"],
            **settings,
        ),
        provider,
    )
    return Stack(sim, info["tenants"][0], provider, client, EwsExchangeSide(client))
