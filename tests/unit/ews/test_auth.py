from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from calsync.auth import (
    PinnedSession,
    TenantCredentials,
    TokenProvider,
    load_certificate,
    resource_scope,
)
from calsync.errors import AuthError

AUTHORITY = "https://login.example.test"
EWS = "https://outlook.office365.com/.default"


class Response:
    def __init__(self, status: int, body: dict[str, Any]):
        self.status_code = status
        self.text = json.dumps(body)
        self.headers: dict[str, str] = {}

    def json(self) -> Any:
        return json.loads(self.text)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.HTTPError(self.text)


class FakeEntra:
    """An OIDC authority and token endpoint, answering like Entra ID."""

    def __init__(self, tenant: str = "t1", expires_in: int = 3600):
        self.tenant = tenant
        self.expires_in = expires_in
        self.secret = "s3cret-value"
        self.error: tuple[int, str, int | None] | None = None
        self.token_posts: list[dict[str, list[str]]] = []
        self.issued = 0
        self.lock = threading.Lock()

    def get(self, url: str, **_: Any) -> Response:
        if url != f"{AUTHORITY}/{self.tenant}/v2.0/.well-known/openid-configuration":
            return Response(400, {"error": "invalid_tenant", "error_codes": [90002]})
        base = f"{AUTHORITY}/{self.tenant}/oauth2/v2.0"
        return Response(
            200,
            {
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "issuer": f"{AUTHORITY}/{self.tenant}/v2.0",
            },
        )

    def post(self, url: str, data: Any = None, **_: Any) -> Response:
        form = data if isinstance(data, dict) else parse_qs(data)
        form = {k: v if isinstance(v, list) else [v] for k, v in form.items()}
        with self.lock:
            self.token_posts.append(form)
            assert form["grant_type"] == ["client_credentials"]  # never a refresh-token grant
            if self.error is not None:
                status, error, number = self.error
                body: dict[str, Any] = {"error": error, "error_description": f"AADSTS{number}: x"}
                if number is not None:
                    body["error_codes"] = [number]
                return Response(status, body)
            if "client_secret" in form and form["client_secret"] != [self.secret]:
                return Response(401, {"error": "invalid_client", "error_codes": [7000215]})
            self.issued += 1
            return Response(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                    "access_token": f"token-{self.issued}",
                },
            )

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(entra: FakeEntra, clock: Clock | None = None, **kwargs: Any) -> TokenProvider:
    kwargs.setdefault("client_secret", "s3cret-value")
    creds = TenantCredentials(
        name="contoso",
        tenant_id="t1",
        client_id="app-1",
        authority=AUTHORITY,
        secret_source="client_secret_file /etc/calsync/contoso",
        **kwargs,
    )
    return TokenProvider(creds, http_client=entra, clock=clock or Clock())


def test_token_is_reused_until_five_minutes_before_expiry() -> None:
    entra, clock = FakeEntra(), Clock()
    provider = make(entra, clock)
    first = provider.token(EWS)
    clock.now += 3299
    assert provider.token(EWS).token == first.token
    assert provider.msal_calls == 1
    assert len(entra.token_posts) == 1
    clock.now += 2  # 299 s left: msal is asked again (its own cache runs on the real clock)
    provider.token(EWS)
    assert provider.msal_calls == 2
    assert entra.token_posts[0]["scope"][0].split() == [EWS]


def test_short_tokens_are_renewed_at_half_their_lifetime() -> None:
    entra, clock = FakeEntra(expires_in=5), Clock()
    provider = make(entra, clock)
    for _ in range(10):  # 10 calls over 2.4 s: one request
        provider.token(EWS)
        clock.now += 0.24
    assert len(entra.token_posts) == 1
    clock.now += 0.2
    provider.token(EWS)
    assert len(entra.token_posts) == 2
    assert provider.token_requests == 2


def test_many_threads_share_one_request() -> None:
    entra = FakeEntra()
    provider = make(entra)
    barrier = threading.Barrier(16)
    tokens: list[str] = []

    def work() -> None:
        barrier.wait()
        tokens.append(provider.token(EWS).token)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(tokens) == {"token-1"}
    assert len(entra.token_posts) == 1


@pytest.mark.parametrize(
    ("error", "code", "hint", "transient"),
    [
        ((401, "invalid_client", 7000222), "AADSTS7000222", "client secret expired", False),
        ((401, "invalid_client", 7000215), "AADSTS7000215", "wrong client secret", False),
        ((400, "unauthorized_client", 700016), "AADSTS700016", "app-1 not found", False),
        ((400, "invalid_client", 65001), "AADSTS65001", "admin consent", False),
        ((503, "temporarily_unavailable", None), "temporarily_unavailable", "retries", True),
    ],
)
def test_token_errors_carry_code_and_hint(
    error: tuple[int, str, int | None], code: str, hint: str, transient: bool
) -> None:
    entra = FakeEntra()
    entra.error = error
    with pytest.raises(AuthError) as caught:
        make(entra).token(EWS)
    assert caught.value.error_code == code
    assert caught.value.hint is not None
    assert hint in caught.value.hint
    assert caught.value.transient is transient
    assert caught.value.tenant == "contoso"


def test_expired_secret_hint_names_the_secret_source() -> None:
    entra = FakeEntra()
    entra.error = (401, "invalid_client", 7000222)
    with pytest.raises(AuthError) as caught:
        make(entra).token(EWS)
    assert caught.value.hint == (
        "client secret expired: create a new secret in Entra ID → App registrations → "
        "Certificates & secrets and update client_secret_file /etc/calsync/contoso"
    )


def test_unknown_tenant_is_reported_as_aadsts90002() -> None:
    entra = FakeEntra(tenant="other")
    with pytest.raises(AuthError) as caught:
        make(entra).token(EWS)
    assert caught.value.error_code == "AADSTS90002"
    assert "tenant t1 not found" in (caught.value.hint or "")


def test_rotated_secret_is_picked_up() -> None:
    entra, clock = FakeEntra(expires_in=60), Clock()
    current = {"value": "old"}
    provider = make(entra, clock, client_secret=lambda: current["value"])
    with pytest.raises(AuthError, match="AADSTS7000215"):
        provider.token(EWS)
    current["value"] = "s3cret-value"
    assert provider.token(EWS).token == "token-1"


def test_secret_never_in_repr() -> None:
    provider = make(FakeEntra())
    assert "s3cret" not in repr(provider.credentials)
    assert "s3cret" not in repr(provider)
    token = provider.token(EWS)
    assert "token-1" not in repr(token)


def test_exactly_one_credential_kind() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TenantCredentials(name="x", tenant_id="t", client_id="c")


@pytest.mark.parametrize(
    ("api", "authority", "url", "scope"),
    [
        ("ews", "https://login.microsoftonline.com", None, EWS),
        ("ews", "https://127.0.0.1:8443", "https://127.0.0.1:8443/EWS/Exchange.asmx", EWS),
        ("graph", "https://127.0.0.1:8443", None, "https://graph.microsoft.com/.default"),
        ("ews", "https://login.microsoftonline.us", None, "https://outlook.office365.us/.default"),
        ("graph", "https://login.microsoftonline.us", None, "https://graph.microsoft.us/.default"),
        ("ews", "https://login.chinacloudapi.cn", None, "https://partner.outlook.cn/.default"),
        (
            "ews",
            "https://login.microsoftonline.com",
            "https://outlook.office365.us/EWS/Exchange.asmx",
            "https://outlook.office365.us/.default",
        ),
    ],
)
def test_scope_is_the_real_resource(api: str, authority: str, url: str | None, scope: str) -> None:
    assert resource_scope(api, authority, url) == scope


def test_pinned_session_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/env-bundle.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/curl-bundle.pem")
    seen: list[Any] = []

    class Adapter(requests.adapters.HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            seen.append(kwargs["verify"])
            response = requests.Response()
            response.status_code = 200
            return response

    session = PinnedSession("/etc/calsync/ca.pem")
    session.mount("https://", Adapter())
    session.get("https://login.example.test/x")
    assert seen == ["/etc/calsync/ca.pem"]


def _certificate(tmp_path: Path, with_cert: bool = True) -> tuple[Path, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calsync")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if with_cert:
        pem += cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path / "app.pem"
    path.write_bytes(pem)
    return path, cert


def test_certificate_thumbprints_are_computed(tmp_path: Path) -> None:
    path, cert = _certificate(tmp_path)
    loaded = load_certificate(str(path))
    assert loaded.sha1_thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert loaded.sha256_thumbprint == cert.fingerprint(hashes.SHA256()).hex().upper()
    with pytest.raises(ValueError, match="does not match"):
        load_certificate(str(path), "00" * 20)


def _jwt_header(assertion: str | bytes) -> dict[str, Any]:
    head = (assertion.decode() if isinstance(assertion, bytes) else assertion).split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))  # type: ignore[no-any-return]


def test_certificate_signs_a_client_assertion(tmp_path: Path) -> None:
    path, _ = _certificate(tmp_path)
    entra = FakeEntra()
    provider = make(entra, client_secret=None, certificate_file=str(path))
    assert provider.token(EWS).token == "token-1"
    form = entra.token_posts[0]
    assert "client_secret" not in form
    header = _jwt_header(form["client_assertion"][0])
    assert header["alg"] == "PS256"
    assert "x5t#S256" in header
    assert "x5c" in header


def test_key_with_sha1_thumbprint_only(tmp_path: Path) -> None:
    path, cert = _certificate(tmp_path, with_cert=False)
    sha1 = cert.fingerprint(hashes.SHA1()).hex()
    entra = FakeEntra()
    provider = make(
        entra, client_secret=None, certificate_file=str(path), certificate_thumbprint=sha1
    )
    provider.token(EWS)
    header = _jwt_header(entra.token_posts[0]["client_assertion"][0])
    assert header["alg"] == "RS256"
    assert "x5t" in header


def test_unusable_certificate_is_an_auth_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    provider = make(FakeEntra(), client_secret=None, certificate_file=str(path))
    with pytest.raises(AuthError) as caught:
        provider.token(EWS)
    assert caught.value.error_code == "certificate_invalid"
    assert str(path) in (caught.value.hint or "")
