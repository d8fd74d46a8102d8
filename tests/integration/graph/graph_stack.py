"""calsync's Graph (and EWS) sides against a running simulator, shared by these tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from calsync.auth import TenantCredentials, TokenProvider
from calsync.ews import EwsClient, EwsExchangeSide, EwsSettings
from calsync.graph import GraphClient, GraphExchangeSide, GraphSettings
from calsync.model import Mailbox


@dataclass
class GraphStack:
    sim: Any
    tenant: dict[str, Any]
    provider: TokenProvider
    client: GraphClient
    side: GraphExchangeSide

    def mailbox(self, index: int = 0, **kwargs: Any) -> Mailbox:
        return Mailbox(
            address=self.tenant["mailboxes"][index], tenant=self.tenant["name"], **kwargs
        )

    def close(self) -> None:
        self.client.close()


def provider_for(sim: Any, tenant: dict[str, Any]) -> TokenProvider:
    info = sim.info
    return TokenProvider(
        TenantCredentials(
            name=tenant["name"],
            tenant_id=tenant["tenant_id"],
            client_id=tenant["client_id"],
            authority=info["authority"],
            ca_file=info["ca_file"],
            client_secret=tenant["client_secret"],
            secret_source="test",
        )
    )


def graph_stack(sim: Any, *, page_size: int = 200) -> GraphStack:
    tenant = sim.info["tenants"][0]
    provider = provider_for(sim, tenant)
    client = GraphClient(
        GraphSettings(
            tenant=tenant["name"], graph_url=sim.info["graph_url"], ca_file=sim.info["ca_file"]
        ),
        provider,
    )
    return GraphStack(sim, tenant, provider, client, GraphExchangeSide(client, page_size=page_size))


def ews_side(sim: Any) -> tuple[EwsClient, EwsExchangeSide]:
    tenant = sim.info["tenants"][0]
    client = EwsClient(
        EwsSettings(
            tenant=tenant["name"], ews_url=sim.info["ews_url"], ca_file=sim.info["ca_file"]
        ),
        provider_for(sim, tenant),
    )
    return client, EwsExchangeSide(client)


def run_all(runtime: Any, *, workers: int = 4) -> dict[str, Any]:
    """One sync of every mailbox of ``runtime``; every one must succeed. Reports by address."""
    from calsync.daemon.runtime import sync_mailboxes

    outcomes = sync_mailboxes(runtime, runtime.mailboxes(), workers=workers)
    failed = [(o.mailbox, o.error) for o in outcomes if not o.ok]
    assert not failed, failed
    return {o.mailbox: o.report for o in outcomes}


def totals(reports: dict[str, Any], side: str) -> dict[str, int]:
    """create/update/delete written to ``side`` ("exchange" or "local"), summed over mailboxes."""
    out = {"create": 0, "update": 0, "delete": 0}
    for report in reports.values():
        for key, value in getattr(report, side).as_dict().items():
            out[key] += value
    return out
