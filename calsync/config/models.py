"""The shape of calsync's TOML configuration: one frozen pydantic model per table.

Field-level rules live here (types, ranges, enums, unknown keys); rules that look across
tables (unknown tenant, duplicate mailbox, secret sources, certificates) live in
``calsync.config.checks`` so they are reported even when some field is invalid.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from calsync.config.secrets import SecretSource, from_credential, from_env, from_file, inline
from calsync.model import ConflictPolicy, Direction

DEFAULT_CONFIG_PATH = Path("/etc/calsync/calsync.toml")
DEFAULT_STORE_URL = "sqlite:////var/lib/calsync/calsync.db"
DEFAULT_EWS_URL = "https://outlook.office365.com/EWS/Exchange.asmx"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"

_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")


def check_address(value: str) -> str:
    """Normalise an e-mail address (lower case) or refuse it."""
    value = value.strip()
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an e-mail address (expected user@domain.example)")
    return value.lower()


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class StoreSettings(_Table):
    url: str = DEFAULT_STORE_URL

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                "must start with sqlite:/// (a file) or postgresql+psycopg:// (a server)"
            )
        return value


class DaemonSettings(_Table):
    poll_interval: Annotated[int, Field(ge=10, le=86400)] = 300
    poll_jitter: Annotated[int, Field(ge=0, le=3600)] = 30
    max_concurrent_syncs: Annotated[int, Field(ge=1, le=256)] = 8
    shutdown_grace: Annotated[int, Field(ge=1, le=3600)] = 20
    permanent_failure_retry: Annotated[int, Field(ge=60, le=604800)] = 3600
    max_backoff: Annotated[int, Field(ge=10, le=86400)] = 3600
    local_scan_interval: Annotated[int, Field(ge=1, le=3600)] = 2
    notification_debounce_ms: Annotated[int, Field(ge=0, le=60000)] = 250


class SubscriptionSettings(_Table):
    mode: Literal["streaming", "off"] = "streaming"
    max_subscriptions_per_connection: Annotated[int, Field(ge=1, le=200)] = 200
    connection_timeout: Annotated[int, Field(ge=60, le=1800, multiple_of=60)] = 1800
    max_connections: Annotated[int, Field(ge=1, le=1000)] = 50
    healthy_poll_interval: Annotated[int, Field(ge=60, le=604800)] = 86400


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class WebhookSettings(_Table):
    """``[webhooks]``: Microsoft Graph change notifications for ``api = "graph"`` tenants.

    Off by default: delta polling stays the default and the safety net. ``public_url`` is what
    Graph calls (an https URL of the operator's reverse proxy, or of this listener with
    ``tls_cert_file``/``tls_key_file``); the listener binds ``listen_host:listen_port`` and serves
    the path of ``public_url``. ``client_state`` is the shared secret Graph echoes in every
    notification (at most one source; none = a random value generated at each start). Relative
    paths are relative to the configuration file's folder.
    """

    enabled: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: Annotated[int, Field(ge=1, le=65535)] = 8443
    public_url: str | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    client_state: SecretStr | None = None
    client_state_file: Path | None = None
    client_state_env: str | None = None
    client_state_credential: str | None = None
    subscription_minutes: Annotated[int, Field(ge=45, le=10080)] = 10000

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "https" and parts.hostname:
            return value
        if parts.scheme == "http" and parts.hostname in _LOOPBACK:
            return value  # the simulator only: Microsoft Graph calls https URLs alone
        raise ValueError(
            "must be an https:// URL that Microsoft Graph can reach "
            "(http:// only on 127.0.0.1/localhost, for the simulator)"
        )

    @field_validator("client_state")
    @classmethod
    def _client_state(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 1 <= len(value.get_secret_value()) <= 128:
            raise ValueError("must be 1 to 128 characters (Graph's limit for clientState)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WebhookSettings:
        problems = []
        if self.enabled and self.public_url is None:
            problems.append("public_url: required when enabled = true")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            problems.append("tls_cert_file and tls_key_file: give both or neither")
        given = [k for k in _CLIENT_STATE_KEYS if getattr(self, k) not in (None, "")]
        if len(given) > 1:
            problems.append(
                f"give at most one of {', '.join(_CLIENT_STATE_KEYS)} (found: {', '.join(given)})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def path(self) -> str:
        """The path the listener serves (that of ``public_url``)."""
        return urlsplit(self.public_url or "").path or "/"

    def client_state_source(self, base_dir: Path | None = None) -> SecretSource | None:
        """Where the client state comes from (None: generate one at start)."""
        if self.client_state is not None:
            return inline(self.client_state.get_secret_value())
        if self.client_state_file is not None:
            path = self.client_state_file
            return from_file(path if base_dir is None or path.is_absolute() else base_dir / path)
        if self.client_state_env:
            return from_env(self.client_state_env)
        if self.client_state_credential:
            return from_credential(self.client_state_credential)
        return None


_CLIENT_STATE_KEYS = (
    "client_state",
    "client_state_file",
    "client_state_env",
    "client_state_credential",
)


class LoggingSettings(_Table):
    format: Literal["json", "console", "auto"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"
    ews_protocol_debug: bool = False

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class MailboxDefaults(_Table):
    direction: Direction = Direction.TWO_WAY
    conflict: ConflictPolicy = ConflictPolicy.EXCHANGE_WINS
    window_past_days: Annotated[int, Field(ge=0, le=3650)] = 30
    window_future_days: Annotated[int, Field(ge=1, le=3650)] = 365
    max_delete_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    max_delete_min: Annotated[int, Field(ge=0)] = 10
    enabled: bool = True
    allow_meeting_updates: bool = False


class _MailboxOverrides(_Table):
    """Per-mailbox settings; None means "as in [defaults]"."""

    tenant: str
    direction: Direction | None = None
    conflict: ConflictPolicy | None = None
    window_past_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    window_future_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    max_delete_share: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    max_delete_min: Annotated[int, Field(ge=0)] | None = None
    enabled: bool | None = None
    allow_meeting_updates: bool | None = None


class MailboxSettings(_MailboxOverrides):
    address: str

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value)


class MailboxGroupSettings(_MailboxOverrides):
    addresses: list[str] = Field(min_length=1)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        return [check_address(v) for v in values]


class TenantSettings(_Table):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    api: Literal["ews", "graph"] = "ews"
    auth: Literal["oauth", "ntlm", "basic"] = "oauth"
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    client_secret_env: str | None = None
    client_secret_credential: str | None = None
    certificate_file: Path | None = None
    certificate_credential: str | None = None
    certificate_thumbprint: str | None = None
    send_x5c: bool = False
    secret_expires: date | None = None
    authority: str = DEFAULT_AUTHORITY
    ews_url: str | None = None
    autodiscover: bool = False
    graph_url: str = DEFAULT_GRAPH_URL
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    password_env: str | None = None
    password_credential: str | None = None

    @field_validator("tenant_id")
    @classmethod
    def _tenant_id(cls, value: str | None) -> str | None:
        if value is not None and not (_GUID.match(value) or _DOMAIN.match(value)):
            raise ValueError("must be a GUID or a domain such as contoso.onmicrosoft.com")
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None and not _GUID.match(value):
            raise ValueError("must be the application (client) id, a GUID")
        return value

    @field_validator("authority", "ews_url", "graph_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL (TLS verification stays on)")
        return value.rstrip("/") if value else value

    @field_validator("certificate_thumbprint")
    @classmethod
    def _thumbprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = value.replace(":", "").replace(" ", "").upper()
        if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", cleaned):
            raise ValueError("must be a SHA-1 (40 hex digits) or SHA-256 (64) thumbprint")
        return cleaned

    @property
    def effective_ews_url(self) -> str:
        return self.ews_url or DEFAULT_EWS_URL


class CalsyncSettings(BaseSettings):
    """The whole configuration file; environment variables override the single tables."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="CALSYNC_",
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    store: StoreSettings = StoreSettings()
    daemon: DaemonSettings = DaemonSettings()
    subscriptions: SubscriptionSettings = SubscriptionSettings()
    webhooks: WebhookSettings = WebhookSettings()
    logging: LoggingSettings = LoggingSettings()
    defaults: MailboxDefaults = MailboxDefaults()
    tenants: list[TenantSettings] = []
    mailboxes: list[MailboxSettings] = []
    mailbox_groups: list[MailboxGroupSettings] = []


SINGLE_TABLES: dict[str, type[BaseModel]] = {
    "store": StoreSettings,
    "daemon": DaemonSettings,
    "subscriptions": SubscriptionSettings,
    "webhooks": WebhookSettings,
    "logging": LoggingSettings,
    "defaults": MailboxDefaults,
}
SECRET_KEYS = (
    "client_secret",
    "client_secret_file",
    "client_secret_env",
    "client_secret_credential",
    "certificate_file",
    "certificate_credential",
)
PASSWORD_KEYS = ("password", "password_file", "password_env", "password_credential")
PATH_KEYS = ("client_secret_file", "certificate_file", "ca_file", "password_file")
