"""Start and stop Graph change notifications in the daemon (``[webhooks] enabled = true``).

Order at start: resolve the client state (configured source, else a random one for this
process; registered with the log redaction, never stored), bind the receiver, then let the
manager create the subscriptions (Graph validates the receiver while creating one). Order at
stop: the manager deletes the subscriptions, then the receiver stops. Anything that keeps the
webhooks from starting (unreadable client state or certificate, port in use) is logged as
``webhook_disabled`` and the daemon goes on with delta polling, which never stops anyway.
"""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path

import structlog

from calsync.config import Config
from calsync.daemon.reload import Generation
from calsync.daemon.webhooks import WebhookManager, WebhookTiming
from calsync.errors import ConfigError
from calsync.graph.webhook import WebhookReceiver
from calsync.logs import register_secrets
from calsync.model import Mailbox
from calsync.subscriptions.debounce import OnChange

log = structlog.get_logger("calsync.webhooks")


class Webhooks:
    """The receiver and the subscription manager of a running daemon."""

    def __init__(self, receiver: WebhookReceiver, manager: WebhookManager) -> None:
        self.receiver = receiver
        self.manager = manager

    def healthy(self, address: str) -> bool:
        return self.manager.healthy(address)

    def update(self, generation: Generation) -> None:
        self.manager.update(generation.runtime.graph_clients, graph_mailboxes(generation))

    def stop(self) -> None:
        self.manager.stop()  # deletes the subscriptions first
        self.receiver.stop()


def graph_mailboxes(generation: Generation) -> list[Mailbox]:
    clients = generation.runtime.graph_clients
    return [m for m in generation.mailboxes.values() if m.tenant in clients]


def _client_state(config: Config) -> str:
    settings = config.settings.webhooks
    base_dir = config.path.resolve().parent if config.path is not None else None
    source = settings.client_state_source(base_dir)
    if source is None:
        return secrets.token_urlsafe(32)  # lives as long as this process and its subscriptions
    value = source.read()
    if not 1 <= len(value) <= 128:
        raise ConfigError([f"webhooks.client_state ({source.describe()}): must be 1 to 128 "
                           "characters (Graph's limit for clientState)"])  # fmt: skip
    return value


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    settings = config.settings.webhooks
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    base_dir = config.path.resolve().parent if config.path is not None else Path.cwd()
    cert, key = (base_dir / settings.tls_cert_file, base_dir / settings.tls_key_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)  # an absolute path in the file stays as it is
    return context


def start_webhooks(
    config: Config,
    generation: Generation,
    on_change: OnChange,
    *,
    timing: WebhookTiming | None = None,
) -> Webhooks | None:
    """The running webhooks, or None when they are off or cannot start (logged)."""
    settings = config.settings.webhooks
    if not settings.enabled:
        return None
    clients = generation.runtime.graph_clients
    if not clients:
        log.warning("webhook_disabled", reason='no tenant has api = "graph"')
        return None
    assert settings.public_url is not None  # checked by the configuration
    try:
        client_state = _client_state(config)
        context = _ssl_context(config)
    except (ConfigError, OSError, ssl.SSLError) as exc:
        log.error("webhook_disabled", reason=str(exc))
        return None
    register_secrets([client_state])
    manager = WebhookManager(
        clients,
        on_change,
        notification_url=settings.public_url,
        client_state=client_state,
        timing=timing
        or WebhookTiming(
            lifetime_s=settings.subscription_minutes * 60.0,
            debounce_ms=config.settings.daemon.notification_debounce_ms,
        ),
    )
    receiver = WebhookReceiver(
        host=settings.listen_host,
        port=settings.listen_port,
        path=settings.path,
        client_state=client_state,
        sink=manager.deliver,
        ssl_context=context,
    )
    try:
        receiver.start()
    except OSError as exc:
        log.error(
            "webhook_disabled",
            reason=f"cannot listen on {settings.listen_host}:{settings.listen_port}: {exc}",
        )
        return None
    log.info(
        "webhook_listening",
        host=settings.listen_host,
        port=receiver.port,
        path=settings.path,
        public_url=settings.public_url,
        tls=context is not None,
    )
    manager.start(graph_mailboxes(generation))
    return Webhooks(receiver, manager)
