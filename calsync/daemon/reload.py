"""What a configuration reload (SIGHUP) changes, and the runtime rebuilt for it.

A ``Generation`` is one loaded configuration with its runtime (token providers, EWS and Graph
clients, Exchange side; the store is shared by every generation). A reload builds the next
generation next to the current one: unchanged tenants keep their clients (and their tokens) and
their side, changed ones get new providers, clients and side, so a new secret is used from the
next token request and a tenant whose ``api`` changed is served by the other adapter (``ews`` ->
``graph`` re-links its items on each mailbox's first Graph run). Runs in progress keep the
generation they started with; the retired clients are closed at shutdown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from calsync.auth import TokenProvider
from calsync.config import Config, TenantConfig
from calsync.daemon.runtime import (
    Runtime,
    TenantSides,
    check_apis,
    graph_side,
    meeting_updates,
    secret_values,
    tenant_clients,
)
from calsync.errors import ConfigError
from calsync.ews.calendar import EwsExchangeSide
from calsync.ews.client import EwsClient
from calsync.graph import GraphClient
from calsync.logs import register_secrets
from calsync.model import Mailbox
from calsync.ports import ExchangeSide
from calsync.scheduler.policy import Timing

RESTART_KEYS = (
    ("store", "url"),
    ("daemon", "max_concurrent_syncs"),
    ("logging", "format"),
    ("logging", "level"),
    ("logging", "ews_protocol_debug"),
    *(
        ("webhooks", key)
        for key in (
            "enabled",
            "listen_host",
            "listen_port",
            "public_url",
            "tls_cert_file",
            "tls_key_file",
            "client_state",
            "client_state_file",
            "client_state_env",
            "client_state_credential",
            "subscription_minutes",
        )
    ),
)


def timing_of(config: Config) -> Timing:
    d = config.settings.daemon
    return Timing(
        poll_interval=d.poll_interval,
        poll_jitter=d.poll_jitter,
        healthy_poll_interval=config.settings.subscriptions.healthy_poll_interval,
        permanent_failure_retry=d.permanent_failure_retry,
        max_backoff=d.max_backoff,
    )


@dataclass(frozen=True)
class Generation:
    config: Config
    runtime: Runtime
    timing: Timing
    fingerprints: dict[str, str]
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)

    @classmethod
    def first(cls, config: Config, runtime: Runtime) -> Generation:
        return cls(
            config,
            runtime,
            timing_of(config),
            {name: tenant_fingerprint(t) for name, t in config.tenants.items()},
            {m.address: m for m in config.enabled_mailboxes()},
        )


@dataclass(frozen=True)
class Change:
    added: list[str]
    removed: list[str]
    changed_mailboxes: list[str]
    changed_tenants: list[str]
    needs_restart: list[str]
    switched_tenants: list[str] = field(default_factory=list)  # api changed (ews <-> graph)


def tenant_fingerprint(tenant: TenantConfig) -> str:
    """A digest of everything that shapes a tenant's clients, secret values included (never
    logged), so a new secret behind the same file name counts as a change."""
    digest = hashlib.sha256(tenant.settings.model_dump_json().encode())
    for source in (tenant.secret, tenant.password, tenant.certificate):
        if source is None:
            digest.update(b"\0none")
            continue
        try:
            digest.update(source.read_bytes())
        except ConfigError as exc:
            digest.update(str(exc).encode())
    return digest.hexdigest()


def next_generation(
    current: Generation, config: Config
) -> tuple[Generation, Change, list[EwsClient | GraphClient]]:
    """The generation for ``config``, what changed and the clients it retires (closed at
    shutdown, as runs in progress may still use them); raises ConfigError (nothing changed)."""
    check_apis(config)
    register_secrets(secret_values(config))
    old = current.runtime
    debug = config.settings.logging.ews_protocol_debug
    fingerprints = {name: tenant_fingerprint(t) for name, t in config.tenants.items()}
    changed_tenants = sorted(
        n for n, f in fingerprints.items() if current.fingerprints.get(n) not in (None, f)
    )
    added_tenants = sorted(set(fingerprints) - set(current.fingerprints))
    providers: dict[str, TokenProvider] = {}
    clients: dict[str, EwsClient] = {}
    graph_clients: dict[str, GraphClient] = {}
    sides: dict[str, ExchangeSide] = {}
    for name, tenant in config.tenants.items():
        fresh = name in changed_tenants or name in added_tenants
        if fresh:
            provider, clients[name] = tenant_clients(tenant, protocol_debug=debug)
            if provider is not None:
                providers[name] = provider
        else:
            clients[name] = old.clients[name]
            if name in old.providers:
                providers[name] = old.providers[name]
        old_side = None if fresh else _side_of(old.exchange, name)
        if tenant.settings.api == "graph":
            allowed = meeting_updates(config, name)
            reuse = None if fresh else old.graph_clients.get(name)
            if (
                reuse is not None
                and old_side is not None
                and (allowed == meeting_updates(current.config, name))
            ):
                graph_clients[name], sides[name] = reuse, old_side
            else:
                graph_clients[name], sides[name] = graph_side(
                    tenant, providers[name], old.store, allowed, client=reuse
                )
        else:
            sides[name] = old_side if old_side is not None else EwsExchangeSide(clients[name])
    retired: list[EwsClient | GraphClient] = [
        c for n, c in old.clients.items() if clients.get(n) is not c
    ]
    retired += [c for n, c in old.graph_clients.items() if graph_clients.get(n) is not c]
    unchanged = (
        not retired
        and not added_tenants
        and all(side is _side_of(old.exchange, n) for n, side in sides.items())
    )
    runtime = Runtime(
        config=config,
        store=old.store,
        providers=providers,
        clients=clients,
        exchange=old.exchange if unchanged else TenantSides(sides),
        clock=old.clock,
        graph_clients=graph_clients,
    )
    mailboxes = {m.address: m for m in config.enabled_mailboxes()}
    before = current.mailboxes
    old_tenants, tenants = current.config.tenants, config.tenants
    change = Change(
        added=sorted(set(mailboxes) - set(before)),
        removed=sorted(set(before) - set(mailboxes)),
        changed_mailboxes=sorted(a for a in mailboxes if a in before and before[a] != mailboxes[a]),
        changed_tenants=sorted(set(changed_tenants) | set(added_tenants)),
        needs_restart=_needs_restart(current.config, config),
        switched_tenants=[
            n for n in changed_tenants if old_tenants[n].settings.api != tenants[n].settings.api
        ],
    )
    generation = Generation(config, runtime, timing_of(config), fingerprints, mailboxes)
    return generation, change, retired


def _side_of(exchange: ExchangeSide, tenant: str) -> ExchangeSide | None:
    """The side serving ``tenant`` in a runtime's exchange (one side for all, or per tenant)."""
    if isinstance(exchange, TenantSides):
        return exchange.sides.get(tenant)
    return exchange


def _needs_restart(old: Config, new: Config) -> list[str]:
    out = []
    for table, key in RESTART_KEYS:
        before = getattr(getattr(old.settings, table), key)
        after = getattr(getattr(new.settings, table), key)
        if before != after:
            out.append(f"{table}.{key}")
    return out
