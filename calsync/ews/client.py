"""One tenant's EWS connection: exchangelib configured the way calsync needs it.

* app-only OAuth with ``MsalCredentials``: an ``OAuth2Credentials`` whose ``access_token`` comes
  from calsync's ``TokenProvider`` (exchangelib's own client-credentials refresh is broken against
  Entra ID: it tries a refresh-token grant), or NTLM/Basic for an on-premises service account;
* the server version set explicitly (no version-guessing request), ``IMPERSONATION`` so that
  every mailbox request carries ``ExchangeImpersonation`` and ``X-AnchorMailbox``;
* ``CalsyncRetryPolicy``: exchangelib never sleeps; 401/403 fail at once, throttling is raised and
  handled per mailbox by ``EwsClient.call`` (exchangelib's FaultTolerance shares one back-off
  across all mailboxes of a protocol);
* a bounded session pool, connect/read timeouts, the tenant's CA on every request, no cookies.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from typing import Protocol as Interface

from exchangelib import (
    BASIC,
    IMPERSONATION,
    NTLM,
    OAUTH2,
    Account,
    Configuration,
    Credentials,
    EWSTimeZone,
    OAuth2Credentials,
)
from exchangelib.errors import ErrorServerBusy, UnauthorizedError
from exchangelib.protocol import FailFast, Protocol
from exchangelib.version import EXCHANGE_2016, EXCHANGE_O365, Version

from calsync.errors import AuthError, ThrottledError
from calsync.ews.errors import HttpStatusError, classify
from calsync.ews.transport import TenantTransport, cookieless_jar

DEFAULT_EWS_URL = "https://outlook.office365.com/EWS/Exchange.asmx"
HINT_SERVICE_ACCOUNT = (
    "the Exchange server refused the service account: check username and password (and that the "
    "account is not locked out)"
)
USER_AGENT = "calsync/0.1 (exchangelib)"
T = TypeVar("T")


class AccessTokenLike(Interface):
    @property
    def token(self) -> str: ...

    @property
    def renew_at(self) -> float: ...  # time.monotonic() seconds


class TokenSource(Interface):
    """What the adapter needs of ``calsync.auth.TokenProvider`` (ews may not import msal)."""

    @property
    def tenant(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...

    def scope_for(self, api: str, url: str | None = None) -> str: ...

    def token(self, scope: str) -> AccessTokenLike: ...

    def invalidate(self, scope: str, token: str) -> None: ...


class MsalCredentials(OAuth2Credentials):  # type: ignore[misc]
    """OAuth2 client credentials whose token is always the provider's current one."""

    def __init__(self, provider: TokenSource, scope: str):
        self._provider = provider
        self._scope = scope
        self.last_token: str | None = None
        super().__init__(
            client_id=provider.client_id, client_secret=None, tenant_id=provider.tenant_id
        )

    @property
    def access_token(self) -> dict[str, Any]:
        token = self._provider.token(self._scope)
        self.last_token = token.token
        left = max(1.0, token.renew_at - time.monotonic())
        # oauthlib raises TokenExpiredError at expires_at; exchangelib then renews the session and
        # retries, so sessions switch to a new token when the provider would renew it.
        return {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": left,
            "expires_at": time.time() + left,
        }

    @access_token.setter
    def access_token(self, value: Any) -> None:
        """exchangelib resets the token to None on closing a session; the provider decides."""

    def refresh(self, session: Any) -> None:
        """Nothing to do: the next ``access_token`` read asks the provider."""

    def sig(self) -> int:
        return hash((self.client_id, self._scope, self.last_token))

    def invalidate(self) -> None:
        if self.last_token is not None:
            self._provider.invalidate(self._scope, self.last_token)

    # one credentials object = one exchangelib Protocol (its cache key): compare by identity
    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"MsalCredentials(tenant={self._provider.tenant!r})"


QUOTA_NOT_RATE = "ErrorExceededSubscriptionCount"


class CalsyncRetryPolicy(FailFast):  # type: ignore[misc]
    """Fail fast on everything; 401/403 before exchangelib may mistake them for throttling."""

    def raise_response_errors(self, response: Any) -> None:
        status = response.status_code
        if status == 401:
            raise UnauthorizedError(f"HTTP 401 from {response.url}")
        if status in {403, 429} or (status == 503 and not _is_xml(response)):
            retry_after = _retry_after(response)
            if status == 429:
                raise ErrorServerBusy("HTTP 429", back_off=retry_after)
            raise HttpStatusError(status, response.text, retry_after)
        super().raise_response_errors(response)


def _is_xml(response: Any) -> bool:
    return bool(response.content) and response.content.lstrip().startswith(b"<")


def _retry_after(response: Any) -> float | None:
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return value if value > 0 else None


class CalsyncProtocol(Protocol):  # type: ignore[misc]
    USERAGENT = USER_AGENT
    transport: TenantTransport | None = None

    def create_session(self) -> Any:
        session = super().create_session()
        transport = self.transport
        if transport is not None:
            adapter = transport.adapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount(self.service_endpoint, adapter)
        session.cookies = cookieless_jar()
        return session

    def decrease_poolsize(self) -> None:
        """Keep the pool as configured.

        exchangelib shrinks the pool on ErrorServerBusy / ErrorExceededConnectionCount while
        holding its (non-reentrant) pool lock and then asks for a session, which can call
        ``increase_poolsize`` and take the same lock: with every session checked out by other
        threads, the whole tenant deadlocks. calsync backs off per mailbox and tenant itself
        and bounds the pool with ``max_connections``, so shrinking is not needed.
        """


@dataclass(frozen=True, slots=True)
class EwsSettings:
    """How to reach one tenant's EWS (plain values from the config)."""

    tenant: str
    ews_url: str = DEFAULT_EWS_URL
    auth: str = "oauth"  # oauth | ntlm | basic
    username: str | None = None
    password: str | Callable[[], str] | None = field(default=None, repr=False)
    ca_file: str | None = None
    max_connections: int = 16
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    protocol_debug: bool = False
    server_version: str | None = None  # "o365" (default for OAuth) or "2016" (on premises)
    max_inline_backoff_s: float = 30.0  # longer back-offs go back to the scheduler
    max_attempts: int = 3


class EwsClient:
    """exchangelib objects of one tenant and the per-mailbox call discipline around them."""

    def __init__(
        self,
        settings: EwsSettings,
        provider: TokenSource | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_accounts: int = 20_000,
    ):
        self.settings = settings
        self.provider = provider
        self._sleep = sleep
        self._clock = clock
        self.transport = TenantTransport(settings.tenant, settings.ca_file, settings.protocol_debug)
        self.credentials = self._credentials()
        self.config = Configuration(
            service_endpoint=settings.ews_url,
            credentials=self.credentials,
            auth_type={"oauth": OAUTH2, "ntlm": NTLM, "basic": BASIC}[settings.auth],
            version=Version(build=self._build()),
            retry_policy=CalsyncRetryPolicy(),
            max_connections=settings.max_connections,
        )
        self.protocol = CalsyncProtocol(config=self.config)
        self.protocol.transport = self.transport
        self.protocol.TIMEOUT = (settings.connect_timeout_s, settings.read_timeout_s)
        self._accounts: OrderedDict[str, Account] = OrderedDict()
        self._max_accounts = max_accounts
        self._lock = threading.Lock()
        self._backoff: dict[str, float] = {}

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def _credentials(self) -> Any:
        settings = self.settings
        if settings.auth == "oauth":
            if self.provider is None:
                raise ValueError(f"tenant {settings.tenant}: OAuth needs a TokenProvider")
            return MsalCredentials(self.provider, self.provider.scope_for("ews", settings.ews_url))
        if settings.auth not in {"ntlm", "basic"} or not settings.username:
            raise ValueError(f"tenant {settings.tenant}: auth {settings.auth!r} needs a username")
        password = settings.password() if callable(settings.password) else settings.password
        return Credentials(settings.username, password or "")

    def _build(self) -> Any:
        version = self.settings.server_version or (
            "o365" if self.settings.auth == "oauth" else "2016"
        )
        builds = {"o365": EXCHANGE_O365, "2016": EXCHANGE_2016, "2019": EXCHANGE_2016}
        if version not in builds:
            raise ValueError(
                f"tenant {self.tenant}: server_version must be one of {sorted(builds)}"
            )
        return builds[version]

    def account(self, address: str) -> Account:
        """The exchangelib Account of a mailbox (cached; building one sends no request)."""
        key = address.lower()
        with self._lock:
            account = self._accounts.get(key)
            if account is not None:
                self._accounts.move_to_end(key)
                return account
        account = Account(
            primary_smtp_address=address,
            config=self.config,
            access_type=IMPERSONATION,
            default_timezone=EWSTimeZone("UTC"),
            locale="en_US",
        )
        account.protocol = self.protocol
        with self._lock:
            self._accounts[key] = account
            while len(self._accounts) > self._max_accounts:
                self._accounts.popitem(last=False)
        return account

    def call(
        self, mailbox: str, operation: Callable[[Account], T], *, retry_throttled: bool = True
    ) -> T:
        """Run ``operation`` for ``mailbox``; exchangelib errors come out as calsync errors.

        Throttling is honoured per mailbox: a back-off up to ``max_inline_backoff_s`` is waited
        here (only this mailbox's worker waits), longer ones raise ``ThrottledError``. A 401 makes
        the provider forget the refused token and is retried once.
        """
        settings = self.settings
        refused_token = False
        for attempt in range(1, settings.max_attempts + 1):
            self._wait_for_backoff(mailbox, retry_throttled)
            try:
                return operation(self.account(mailbox))
            except Exception as exc:
                error = classify(exc, mailbox=mailbox, tenant=self.tenant)
                if error.error_code == QUOTA_NOT_RATE:
                    # a cap on live subscriptions, not on requests: retrying cannot help, and a
                    # back-off would stall this mailbox's syncs (its subscriber retries later)
                    raise error from None
                if isinstance(error, ThrottledError):
                    delay = error.retry_after or 0.0
                    self._backoff[mailbox.lower()] = self._clock() + delay
                    if (
                        retry_throttled
                        and attempt < settings.max_attempts
                        and delay <= settings.max_inline_backoff_s
                    ):
                        continue
                if (
                    isinstance(error, AuthError)
                    and error.error_code == "HTTP401"
                    and not refused_token
                    and isinstance(self.credentials, MsalCredentials)
                ):
                    refused_token = True
                    self.credentials.invalidate()
                    continue
                if isinstance(error, AuthError) and settings.auth != "oauth":
                    error.hint = HINT_SERVICE_ACCOUNT
                raise error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_for_backoff(self, mailbox: str, wait: bool) -> None:
        until = self._backoff.get(mailbox.lower())
        if until is None:
            return
        left = until - self._clock()
        if left <= 0:
            self._backoff.pop(mailbox.lower(), None)
            return
        if not wait or left > self.settings.max_inline_backoff_s:
            raise ThrottledError(
                f"{mailbox}: backing off for {left:.0f} s",
                retry_after=left,
                error_code="ErrorServerBusy",
            )
        self._sleep(left)

    def request_count(self, mailbox: str) -> int:
        return self.transport.requests_for(mailbox)

    def affinity_cookie(self, mailbox: str) -> str | None:
        """The affinity cookie Exchange set for ``mailbox`` (for subscription groups)."""
        return self.transport.affinity_cookie(mailbox)

    def close(self) -> None:
        """Close the sessions and drop the protocol from exchangelib's global cache."""
        self.protocol.close()
        with contextlib.suppress(KeyError):
            del CalsyncProtocol[self.config]
