"""App-only OAuth tokens from Entra ID with msal: one ``TokenProvider`` per tenant.

This is the only module that imports msal. A provider keeps msal's last result per scope and asks
msal again only when less than min(300 s, half the token's lifetime) is left (DESIGN.md "Tokens");
client credentials never get a refresh token, so none is ever used. msal's HTTP goes through a
session that passes the configured CA file on every request, so ``REQUESTS_CA_BUNDLE`` and
``CURL_CA_BUNDLE`` cannot override it. Errors become ``calsync.errors.AuthError`` with the AADSTS
code and a hint for the operator; secrets and tokens never appear in messages or reprs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
import structlog

from calsync.errors import AuthError

log = structlog.get_logger(__name__)

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
# Entra ID hosts msal may ask for instance discovery; any other host (a simulator, ADFS) is used
# as given.
_US = ("https://outlook.office365.us", "https://graph.microsoft.us")
_CN = ("https://partner.outlook.cn", "https://microsoftgraph.chinacloudapi.cn")
# authority host -> (EWS resource, Graph resource) of that national cloud
_CLOUDS = {
    "login.microsoftonline.us": _US,
    "login-us.microsoftonline.com": _US,
    "login.chinacloudapi.cn": _CN,
    "login.partner.microsoftonline.cn": _CN,
}
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {"login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net"}
    | set(_CLOUDS)
)
_GLOBAL = ("https://outlook.office365.com", "https://graph.microsoft.com")
_RESOURCE_HOSTS = {
    urlsplit(url).hostname for pair in (*_CLOUDS.values(), _GLOBAL) for url in pair
} | {"dod-graph.microsoft.us", "webmail.apps.mil", "outlook.office.com"}
RENEW_MARGIN_S = 300.0


def resource_scope(api: str, authority: str = DEFAULT_AUTHORITY, url: str | None = None) -> str:
    """The ``.default`` scope of the real resource for ``api`` ("ews" or "graph").

    A URL naming a Microsoft resource host decides (``https://outlook.office365.us/EWS/...``);
    any other host (a simulator at 127.0.0.1, a proxy) gets the scope of the authority's cloud.
    """
    host = urlsplit(url).hostname if url else None
    if host in _RESOURCE_HOSTS:
        return f"https://{host}/.default"
    ews, graph = _CLOUDS.get(urlsplit(authority).hostname or "", _GLOBAL)
    if api == "ews":
        return f"{ews}/.default"
    if api == "graph":
        return f"{graph}/.default"
    raise ValueError(f"unknown api {api!r} (ews or graph)")


@dataclass(frozen=True, slots=True)
class TenantCredentials:
    """What one tenant's app registration needs to get tokens (plain values from the config).

    Exactly one of ``client_secret`` (a string, or a callable read each time msal needs it, so a
    rotated secret file is picked up) and ``certificate_file`` (PEM with the private key, usually
    with its certificate) is set. ``secret_source`` says where the secret comes from, for hints
    ("client_secret_file /etc/calsync/secrets/contoso").
    """

    name: str
    tenant_id: str
    client_id: str
    client_secret: str | Callable[[], str] | None = field(default=None, repr=False)
    secret_source: str = "calsync's configuration"  # noqa: S105 - a description, not a secret
    certificate_file: str | None = None
    certificate_thumbprint: str | None = None  # SHA-1 (40 hex) or SHA-256 (64 hex)
    public_certificate_file: str | None = None  # when the PEM above holds only the key
    send_x5c: bool = True  # subject name / issuer authentication
    authority: str = DEFAULT_AUTHORITY
    ca_file: str | None = None
    token_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if (self.client_secret is None) == (self.certificate_file is None):
            raise ValueError(
                f"tenant {self.name}: give exactly one of client_secret and certificate_file"
            )

    @property
    def authority_url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant_id}"

    @property
    def is_microsoft_authority(self) -> bool:
        return (urlsplit(self.authority).hostname or "") in MICROSOFT_AUTHORITY_HOSTS

    def secret(self) -> str:
        value = self.client_secret() if callable(self.client_secret) else self.client_secret
        if not value:
            raise AuthError(
                f"tenant {self.name}: the client secret is empty",
                tenant=self.name,
                error_code="secret_missing",
                hint=f"put the client secret's value into {self.secret_source}",
            )
        return value


class PinnedSession(requests.Session):
    """A requests session that passes ``verify`` (the configured CA) and a timeout on every
    request, so the environment's CA bundle variables cannot replace it."""

    def __init__(self, ca_file: str | None, timeout: float | tuple[float, float] = 30.0):
        super().__init__()
        self.ca_file = ca_file
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.ca_file:
            kwargs["verify"] = self.ca_file
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str = field(repr=False)
    expires_at: float  # on the provider's clock (monotonic by default)
    renew_at: float


class TokenProvider:
    """Tokens for one tenant, shared by every worker thread of that tenant."""

    def __init__(
        self,
        credentials: TenantCredentials,
        *,
        http_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.credentials = credentials
        self._http = http_client or PinnedSession(credentials.ca_file, credentials.token_timeout_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._app: Any = None
        self._app_secret: str | None = None
        self._held: dict[str, AccessToken] = {}
        self._certificate: CertificateCredential | None = None
        self.token_requests = 0  # answers msal had to fetch from the identity provider
        self.msal_calls = 0  # times the provider asked msal (msal may answer from its cache)

    def __repr__(self) -> str:
        return f"TokenProvider(tenant={self.credentials.name!r})"

    @property
    def tenant(self) -> str:
        return self.credentials.name

    @property
    def client_id(self) -> str:
        return self.credentials.client_id

    @property
    def tenant_id(self) -> str:
        return self.credentials.tenant_id

    def scope_for(self, api: str, url: str | None = None) -> str:
        """The scope of the real resource behind ``url`` in this tenant's cloud."""
        return resource_scope(api, self.credentials.authority, url)

    @property
    def certificate(self) -> CertificateCredential | None:
        """The loaded certificate (thumbprints for the operator), once a token was requested."""
        return self._certificate

    def token(self, scope: str) -> AccessToken:
        """A token for ``scope`` with comfortably more than the renewal margin left."""
        with self._lock:
            now = self._clock()
            held = self._held.get(scope)
            if held is None or now >= held.renew_at:
                held = self._held[scope] = self._acquire(scope, now)
            return held

    def invalidate(self, scope: str, token: str) -> None:
        """Forget ``token`` (the resource refused it), here and in msal's cache."""
        with self._lock:
            held = self._held.get(scope)
            if held is not None and held.token == token:
                del self._held[scope]
            app = self._app
        if app is not None:
            cache = app.token_cache
            for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
                if entry.get("secret") == token:
                    cache.remove_at(entry)

    # --- msal -----------------------------------------------------------------------------------

    def _acquire(self, scope: str, now: float) -> AccessToken:
        app = self._application()
        self.msal_calls += 1
        try:
            result = app.acquire_token_for_client(scopes=[scope])
        except msal.exceptions.MsalServiceError as exc:  # msal raises on 5xx answers
            raise AuthError(
                f"tenant {self.tenant}: Entra ID unavailable ({exc})",
                tenant=self.tenant,
                error_code="temporarily_unavailable",
                hint="Entra ID is temporarily unavailable; calsync retries",
                transient=True,
            ) from None
        except requests.RequestException as exc:
            raise AuthError(
                f"tenant {self.tenant}: token endpoint unreachable ({type(exc).__name__})",
                tenant=self.tenant,
                error_code="token_endpoint_unreachable",
                hint=f"check network access and TLS trust for {self.credentials.authority}",
                transient=True,
            ) from None
        if not isinstance(result, Mapping) or "access_token" not in result:
            error = aadsts_error(self.credentials, dict(result or {}))
            log.warning(
                "auth_failed", tenant=self.tenant, error_code=error.error_code, hint=error.hint
            )
            raise error
        if result.get("token_source") != "cache":
            self.token_requests += 1
        lifetime = float(result.get("expires_in") or 0)
        margin = min(RENEW_MARGIN_S, lifetime / 2)
        return AccessToken(str(result["access_token"]), now + lifetime, now + lifetime - margin)

    def _application(self) -> Any:
        creds = self.credentials
        if creds.certificate_file is not None:
            if self._app is None:
                try:
                    self._certificate = load_certificate(
                        creds.certificate_file, creds.certificate_thumbprint,
                        creds.public_certificate_file,
                    )  # fmt: skip
                    credential = self._certificate.msal_credential(creds.send_x5c)
                except (OSError, ValueError) as exc:
                    raise construction_error(creds, exc) from None
                self._app = self._build(credential)
            return self._app
        secret = creds.secret()
        if self._app is None or secret != self._app_secret:
            self._app = self._build(secret)
            self._app_secret = secret
        return self._app

    def _build(self, client_credential: Any) -> Any:
        creds = self.credentials
        try:
            return msal.ConfidentialClientApplication(
                creds.client_id,
                client_credential=client_credential,
                authority=creds.authority_url,
                http_client=self._http,
                instance_discovery=creds.is_microsoft_authority,
            )
        except (ValueError, requests.RequestException) as exc:
            raise construction_error(creds, exc) from None


# --- certificates ------------------------------------------------------------------------------

_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


@dataclass(frozen=True, slots=True)
class CertificateCredential:
    """A private key and (usually) its certificate, with both thumbprints for the operator."""

    private_key: str = field(repr=False)
    certificate: str | None
    sha1_thumbprint: str | None
    sha256_thumbprint: str | None

    def msal_credential(self, send_x5c: bool) -> dict[str, Any]:
        if self.certificate is not None and (send_x5c or self.sha1_thumbprint is None):
            # msal computes the SHA-256 thumbprint (PS256 with x5t#S256) and sends x5c
            return {"private_key": self.private_key, "public_certificate": self.certificate}
        if self.sha1_thumbprint is None:
            raise ValueError("a SHA-1 thumbprint is needed without the certificate")
        return {"private_key": self.private_key, "thumbprint": self.sha1_thumbprint}


def load_certificate(
    path: str, thumbprint: str | None = None, public_path: str | None = None
) -> CertificateCredential:
    """Read a PEM file with a private key (and its certificate, or one in ``public_path``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    with open(path, encoding="ascii") as handle:
        blocks = [(m.group(1), m.group(0)) for m in _PEM.finditer(handle.read())]
    if public_path:
        with open(public_path, encoding="ascii") as handle:
            blocks += [(m.group(1), m.group(0)) for m in _PEM.finditer(handle.read())]
    keys = [text for kind, text in blocks if kind.endswith("PRIVATE KEY")]
    certs = [text for kind, text in blocks if kind == "CERTIFICATE"]
    if not keys:
        raise ValueError(f"{path}: no PEM private key found")
    sha1 = sha256 = None
    if certs:
        cert = x509.load_pem_x509_certificate(certs[0].encode())
        sha1 = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t is SHA-1
        sha256 = cert.fingerprint(hashes.SHA256()).hex().upper()
    if thumbprint:
        given = thumbprint.replace(":", "").upper()
        if len(given) == 40:
            if sha1 is not None and given != sha1:
                raise ValueError(f"{path}: certificate_thumbprint does not match the certificate")
            sha1 = given
        elif len(given) == 64:
            if sha256 is not None and given != sha256:
                raise ValueError(f"{path}: certificate_thumbprint does not match the certificate")
            sha256 = given
        else:
            raise ValueError("certificate_thumbprint must be 40 (SHA-1) or 64 (SHA-256) hex digits")
    return CertificateCredential(keys[0], certs[0] if certs else None, sha1, sha256)


# --- errors -------------------------------------------------------------------------------------

_PORTAL = "Entra ID → App registrations"


def _hint(creds: TenantCredentials, number: int | None, error: str) -> tuple[str, bool]:
    """(operator hint, transient?) for an Entra ID error."""
    app = f"app {creds.client_id}"
    hints = {
        7000222: f"client secret expired: create a new secret in {_PORTAL} → Certificates & "
        f"secrets and update {creds.secret_source}",
        7000215: f"wrong client secret: copy the secret's Value (not its Secret ID) from "
        f"{_PORTAL} → Certificates & secrets into {creds.secret_source}",
        7000218: f"no secret or certificate was sent: configure one for {app}",
        90002: f"tenant {creds.tenant_id} not found: check tenant_id (Entra ID → Overview → "
        f"Tenant ID) and, for national clouds, authority (now {creds.authority})",
        700016: f"{app} not found in tenant {creds.tenant_id}: check client_id (the app's "
        f"Application (client) ID) and that an admin of this tenant consented to the app",
        7000112: f"{app} is disabled in this tenant: enable it in Enterprise applications",
        70001: f"{app} is disabled in this tenant: enable it in Enterprise applications",
        700027: f"the certificate is not registered for {app}: upload it in {_PORTAL} → "
        "Certificates & secrets (compare the thumbprints)",
        700024: "the client assertion is outside its valid time: check this host's clock",
        65001: f"admin consent missing: an admin must grant consent for {app} "
        "(API permissions → Grant admin consent)",
    }
    if number in hints:
        return hints[number], False
    if error in {"temporarily_unavailable", "server_error"} or number in {90055, 50196}:
        return "Entra ID is temporarily unavailable or throttling; calsync retries", True
    if error == "invalid_scope":
        return f"the scope was refused: check the authority ({creds.authority})", False
    return f"Entra ID refused the token request ({error or 'unknown error'})", False


def aadsts_error(creds: TenantCredentials, result: dict[str, Any]) -> AuthError:
    codes = result.get("error_codes") or []
    number = int(codes[0]) if codes else None
    if number is None:
        found = re.search(r"AADSTS(\d+)", str(result.get("error_description", "")))
        number = int(found.group(1)) if found else None
    error = str(result.get("error", ""))
    hint, transient = _hint(creds, number, error)
    code = f"AADSTS{number}" if number is not None else (error or "auth_failed")
    message = f"tenant {creds.name}: token request failed: {code}"
    return AuthError(message, tenant=creds.name, error_code=code, hint=hint, transient=transient)


def construction_error(creds: TenantCredentials, exc: Exception) -> AuthError:
    """msal builds the authority eagerly: OIDC discovery 4xx = unknown tenant (ValueError)."""
    if isinstance(exc, requests.RequestException):
        return AuthError(
            f"tenant {creds.name}: authority {creds.authority} unreachable ({type(exc).__name__})",
            tenant=creds.name,
            error_code="authority_unreachable",
            hint=f"check network access and TLS trust (ca_file) for {creds.authority}",
            transient=True,
        )
    if "authority configuration" in str(exc) or "tenant" in str(exc).lower():
        hint, _ = _hint(creds, 90002, "invalid_request")
        return AuthError(
            f"tenant {creds.name}: tenant not found", tenant=creds.name,
            error_code="AADSTS90002", hint=hint,
        )  # fmt: skip
    return AuthError(
        f"tenant {creds.name}: unusable certificate: {exc}",
        tenant=creds.name,
        error_code="certificate_invalid",
        hint=f"check certificate_file ({creds.certificate_file}): a PEM with the private key and "
        "its certificate, or the key with certificate_thumbprint",
    )
