"""Build the store, token providers and Exchange clients from a ``Config``; run syncs.

The daemon and ``calsync sync --once`` / ``calsync check`` share this wiring.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from calsync.auth import TenantCredentials, TokenProvider
from calsync.config import Config, TenantConfig
from calsync.daemon.graph_check import check_graph
from calsync.errors import CalsyncError, ConfigError, LockHeld
from calsync.ews.calendar import EwsExchangeSide
from calsync.ews.client import EwsClient, EwsSettings
from calsync.ews.diagnostics import (
    CheckReport,
    MailboxCheck,
    TenantCheck,
    TenantTarget,
    check_all,
)
from calsync.graph import GraphClient, GraphExchangeSide, GraphSettings
from calsync.graph.migrate import RelinkingSide
from calsync.graph.preview import PreviewStore
from calsync.logs import register_secrets
from calsync.model import EventData, ExchangeItem, ExchangePage, ItemRef, Mailbox, SyncReport
from calsync.ports import ExchangeSide, Store
from calsync.scheduler.worker import RunOutcome, run_mailbox
from calsync.store.sql import SqlStore
from calsync.sync.engine import run_sync


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def tenant_credentials(tenant: TenantConfig) -> TenantCredentials | None:
    """msal's view of a tenant (None for NTLM/Basic service accounts)."""
    s = tenant.settings
    if s.auth != "oauth":
        return None
    assert s.tenant_id  # checked by the config's validation
    assert s.client_id
    ca_file = str(s.ca_file) if s.ca_file else None
    if tenant.certificate is not None:
        return TenantCredentials(
            name=s.name,
            tenant_id=s.tenant_id,
            client_id=s.client_id,
            certificate_file=str(tenant.certificate.path()),
            certificate_thumbprint=s.certificate_thumbprint,
            send_x5c=s.send_x5c,
            authority=s.authority,
            ca_file=ca_file,
        )
    assert tenant.secret is not None
    return TenantCredentials(
        name=s.name,
        tenant_id=s.tenant_id,
        client_id=s.client_id,
        client_secret=tenant.secret.read,
        secret_source=tenant.secret.describe(),
        authority=s.authority,
        ca_file=ca_file,
    )


def ews_settings(tenant: TenantConfig, *, protocol_debug: bool) -> EwsSettings:
    s = tenant.settings
    return EwsSettings(
        tenant=s.name,
        ews_url=s.effective_ews_url,
        auth=s.auth,
        username=s.username,
        password=tenant.password.read if tenant.password is not None else None,
        ca_file=str(s.ca_file) if s.ca_file else None,
        protocol_debug=protocol_debug,
    )


def secret_values(config: Config) -> list[str]:
    """Every configured secret value, so the log redaction can recognise it anywhere."""
    values = []
    for tenant in config.tenants.values():
        for source in (tenant.secret, tenant.password):
            if source is not None:
                try:
                    values.append(source.read())
                except ConfigError:
                    continue
    return values


@dataclass
class Runtime:
    config: Config
    store: SqlStore
    providers: dict[str, TokenProvider]
    clients: dict[str, EwsClient]
    exchange: ExchangeSide
    clock: SystemClock = field(default_factory=SystemClock)
    graph_clients: dict[str, GraphClient] = field(default_factory=dict)

    def close(self) -> None:
        for client in self.graph_clients.values():
            client.close()
        self.store.close()

    def streaming_clients(self) -> dict[str, EwsClient]:
        """The EWS clients of the tenants synced over EWS (the only ones EWS streaming
        notifications watch)."""
        tenants = self.config.tenants
        return {
            n: c for n, c in self.clients.items() if n in tenants and
            tenants[n].settings.api == "ews"
        }  # fmt: skip

    def mailboxes(self, only: str | None = None) -> list[Mailbox]:
        enabled = self.config.enabled_mailboxes()
        if only is None:
            return enabled
        wanted = only.strip().lower()
        chosen = [m for m in enabled if m.address == wanted]
        if not chosen:
            raise ConfigError([f"--mailbox {only}: not an enabled mailbox of {self.config.path}"])
        return chosen


def tenant_clients(
    tenant: TenantConfig, *, protocol_debug: bool
) -> tuple[TokenProvider | None, EwsClient]:
    """A tenant's token provider (None for service accounts) and its EWS client."""
    credentials = tenant_credentials(tenant)
    provider = TokenProvider(credentials) if credentials is not None else None
    return provider, EwsClient(ews_settings(tenant, protocol_debug=protocol_debug), provider)


def check_apis(config: Config) -> None:
    unsupported = [t for t in config.tenants.values() if t.settings.api not in ("ews", "graph")]
    if unsupported:
        raise ConfigError(
            [
                f'tenants ({t.name}).api: "{t.settings.api}": use "ews" or "graph"'
                for t in unsupported
            ]
        )
    no_oauth = [t.name for t in config.tenants.values() if t.settings.api == "graph" and
                tenant_credentials(t) is None]  # fmt: skip
    if no_oauth:
        raise ConfigError([f"tenants ({n}).api: Graph needs app-only OAuth" for n in no_oauth])


class TenantSides:
    """``ports.ExchangeSide`` that hands each mailbox to its tenant's side (EWS or Graph)."""

    def __init__(self, sides: dict[str, ExchangeSide]) -> None:
        self.sides = sides

    def _side(self, mailbox: Mailbox) -> ExchangeSide:
        try:
            return self.sides[mailbox.tenant]
        except KeyError:
            raise ValueError(
                f"{mailbox.address}: no client for tenant {mailbox.tenant!r}"
            ) from None

    def fetch_changes(self, mailbox: Mailbox, sync_state: str | None) -> Iterator[ExchangePage]:
        return self._side(mailbox).fetch_changes(mailbox, sync_state)

    def create(self, mailbox: Mailbox, calsync_id: str, data: EventData) -> ItemRef:
        return self._side(mailbox).create(mailbox, calsync_id, data)

    def update(self, mailbox: Mailbox, ref: ItemRef, data: EventData) -> ItemRef:
        return self._side(mailbox).update(mailbox, ref, data)

    def delete(self, mailbox: Mailbox, ref: ItemRef) -> None:
        self._side(mailbox).delete(mailbox, ref)

    def get(self, mailbox: Mailbox, item_id: str) -> ExchangeItem | None:
        return self._side(mailbox).get(mailbox, item_id)

    def find_by_calsync_id(self, mailbox: Mailbox, calsync_id: str) -> ExchangeItem | None:
        return self._side(mailbox).find_by_calsync_id(mailbox, calsync_id)

    def request_count(self, mailbox: Mailbox) -> int:
        return self._side(mailbox).request_count(mailbox)

    def forget_echoes(self, mailbox: Mailbox) -> None:
        """Passed on to the tenant's side (see ``calsync.sync.engine.run_sync``)."""
        forget = getattr(self._side(mailbox), "forget_echoes", None)
        if forget is not None:
            forget(mailbox)


def meeting_updates(config: Config, tenant: str | None = None) -> frozenset[str]:
    """The mailboxes (of ``tenant``, else all) whose meetings calsync may update."""
    return frozenset(
        m.address
        for m in config.mailboxes
        if m.allow_meeting_updates and (tenant is None or m.mailbox.tenant == tenant)
    )


def graph_side(
    tenant: TenantConfig,
    provider: TokenProvider,
    store: Store,
    allowed: frozenset[str],
    client: GraphClient | None = None,
) -> tuple[GraphClient, ExchangeSide]:
    """A Graph tenant's client (``client`` when given, else a new one) and its side (re-linking
    EWS links on a mailbox's first Graph run)."""
    if client is None:
        s = tenant.settings
        ca_file = str(s.ca_file) if s.ca_file else None
        settings = GraphSettings(tenant=tenant.name, graph_url=s.graph_url, ca_file=ca_file)
        client = GraphClient(settings, provider)
    return client, RelinkingSide(GraphExchangeSide(client, meeting_updates=allowed), store)


def graph_sides(
    config: Config, providers: dict[str, TokenProvider], store: Store
) -> tuple[dict[str, GraphClient], dict[str, ExchangeSide]]:
    """A Graph client and side for each tenant with ``api = "graph"``."""
    allowed = meeting_updates(config)
    clients: dict[str, GraphClient] = {}
    sides: dict[str, ExchangeSide] = {}
    for name, tenant in config.tenants.items():
        if tenant.settings.api == "graph":
            clients[name], sides[name] = graph_side(tenant, providers[name], store, allowed)
    return clients, sides


def build_runtime(config: Config, *, open_store: bool = True) -> Runtime:
    register_secrets(secret_values(config))
    check_apis(config)
    debug = config.settings.logging.ews_protocol_debug
    providers: dict[str, TokenProvider] = {}
    clients: dict[str, EwsClient] = {}
    for name, tenant in config.tenants.items():
        provider, clients[name] = tenant_clients(tenant, protocol_debug=debug)
        if provider is not None:
            providers[name] = provider
    store = SqlStore(config.settings.store.url, upgrade=True) if open_store else None
    ews = EwsExchangeSide(clients)
    exchange: ExchangeSide = ews
    graph: dict[str, GraphClient] = {}
    if any(t.settings.api == "graph" for t in config.tenants.values()):
        graph, sides = graph_sides(config, providers, store)  # type: ignore[arg-type]
        exchange = TenantSides({name: sides.get(name, ews) for name in config.tenants})
    return Runtime(
        config=config,
        store=store,  # type: ignore[arg-type]
        providers=providers,
        clients=clients,
        exchange=exchange,
        graph_clients=graph,
    )


def sync_mailboxes(
    runtime: Runtime,
    mailboxes: Sequence[Mailbox],
    *,
    dry_run: bool = False,
    allow_mass_delete: bool = False,
    workers: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[RunOutcome]:
    """One sync of each mailbox (at most ``workers`` at once), each under its mailbox lock.
    A ``dry_run`` writes nothing (a Graph side re-links into a ``PreviewStore``)."""
    store = runtime.store
    exchange, view = preview(runtime) if dry_run else (runtime.exchange, store)
    if not dry_run:
        store.register_mailboxes(runtime.config.enabled_mailboxes())

    def one(mailbox: Mailbox) -> RunOutcome:
        def sync(mb: Mailbox) -> SyncReport:
            with store.mailbox_lock(mb.address):
                return run_sync(
                    mb,
                    exchange,
                    view,
                    clock=runtime.clock,
                    dry_run=dry_run,
                    allow_mass_delete=allow_mass_delete,
                    should_stop=should_stop,
                )

        outcome = run_mailbox(
            mailbox, sync, requests=lambda: runtime.exchange.request_count(mailbox)
        )
        if not dry_run:
            record_outcome(runtime, outcome)
        return outcome

    limit = workers or runtime.config.settings.daemon.max_concurrent_syncs
    with ThreadPoolExecutor(max_workers=max(1, min(limit, len(mailboxes) or 1))) as pool:
        return list(pool.map(one, mailboxes))


def preview(runtime: Runtime) -> tuple[ExchangeSide, Store]:
    """The sides and store of a dry run: re-linking Graph sides write their links into a
    ``PreviewStore`` (memory) that the engine reads too, so the plan is the real run's."""
    exchange = runtime.exchange
    if not isinstance(exchange, TenantSides):
        return exchange, runtime.store
    view = PreviewStore(runtime.store)
    sides = {
        name: side.over(view) if isinstance(side, RelinkingSide) else side
        for name, side in exchange.sides.items()
    }
    return TenantSides(sides), view


def record_outcome(runtime: Runtime, outcome: RunOutcome) -> None:
    now = runtime.clock.now()
    if outcome.ok and outcome.report is not None:
        report = outcome.report
        items_in = report.local.create + report.local.update + report.local.delete
        items_out = report.exchange.create + report.exchange.update + report.exchange.delete
        runtime.store.record_run_success(
            outcome.mailbox, now, items_in=items_in, items_out=items_out
        )
    elif outcome.error is not None and not isinstance(outcome.error, LockHeld):
        runtime.store.record_run_failure(
            outcome.mailbox,
            now,
            outcome.error.error_code,
            str(outcome.error),
            paused=outcome.status == "auth_failed",
        )


def check(runtime: Runtime, only: str | None = None, *, workers: int = 32) -> CheckReport:
    """Per tenant (in configuration order) a token, then each mailbox: over EWS, or over Graph
    for ``api = "graph"`` tenants; one report shape for both."""
    chosen = runtime.mailboxes(only)
    tenants: list[TenantCheck] = []
    mailboxes: list[MailboxCheck] = []
    for name, client in runtime.clients.items():
        addresses = [m.address for m in chosen if m.tenant == name]
        if only is not None and not addresses:
            continue
        graph = runtime.graph_clients.get(name)
        if graph is not None:  # a client of its own, closed here (the CLI's runtime is not)
            probe = GraphClient(graph.settings, graph.provider)
            try:
                tenant, results = check_graph(probe, addresses, workers=workers)
            finally:
                probe.close()
            tenants.append(tenant)
            mailboxes.extend(results)
            continue
        target = TenantTarget(name, client, runtime.providers.get(name), addresses)
        report = check_all([target], workers=workers)
        tenants.extend(report.tenants)
        mailboxes.extend(report.mailboxes)
    return CheckReport(tuple(tenants), tuple(mailboxes))


__all__ = ["CalsyncError", "Runtime", "build_runtime", "check", "sync_mailboxes"]
