"""msal against the simulator's Entra ID: secrets, certificates and AADSTS errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
import msal
import pytest
from simclients import OUTLOOK_SCOPE, CASession, msal_app

from calsync.sim import SimHandle


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_secret_grant_gives_a_signed_outlook_token(sim: SimHandle, contoso: dict[str, Any]) -> None:
    result = msal_app(sim).acquire_token_for_client(scopes=OUTLOOK_SCOPE)
    assert result["token_type"] == "Bearer"
    claims = _claims(result["access_token"])
    assert claims["aud"] == "https://outlook.office365.com"
    assert claims["tid"] == contoso["tenant_id"]
    assert claims["appid"] == contoso["client_id"]
    assert claims["roles"] == ["full_access_as_app"]
    assert claims["exp"] - claims["iat"] == 3600


def test_certificate_assertion_grant(sim: SimHandle) -> None:
    result = msal_app(sim, certificate=True).acquire_token_for_client(
        scopes=["https://graph.microsoft.com/.default"]
    )
    claims = _claims(result["access_token"])
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["appidacr"] == "2"


def test_jwks_verifies_the_token(sim: SimHandle, contoso: dict[str, Any]) -> None:
    token = msal_app(sim).acquire_token_for_client(scopes=OUTLOOK_SCOPE)["access_token"]
    session = CASession(sim.ca_file)
    keys = session.get(f"{sim.url}/{contoso['tenant_id']}/discovery/v2.0/keys").json()["keys"]
    key = jwt.PyJWK(keys[0])
    assert jwt.decode(
        token, key.key, algorithms=["RS256"], audience="https://outlook.office365.com"
    )


def test_wrong_secret_is_aadsts7000215(sim: SimHandle) -> None:
    result = msal_app(sim, secret="not-the-secret").acquire_token_for_client(scopes=OUTLOOK_SCOPE)
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]
    assert result["error_description"].startswith("AADSTS7000215:")


def test_expired_secret_fault_is_aadsts7000222_and_new_secret_works(sim: SimHandle) -> None:
    sim.admin.set_faults(expire_secret="contoso")
    result = msal_app(sim).acquire_token_for_client(scopes=OUTLOOK_SCOPE)
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000222]
    sim.admin.clear_faults()
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    expired = sim.admin.add_secret("contoso", expires=past)
    result = msal_app(sim, secret=expired).acquire_token_for_client(scopes=OUTLOOK_SCOPE)
    assert result["error_codes"] == [7000222]
    fresh = sim.admin.add_secret("contoso")
    assert "access_token" in msal_app(sim, secret=fresh).acquire_token_for_client(
        scopes=OUTLOOK_SCOPE
    )


def test_unknown_app_is_aadsts700016(sim: SimHandle, contoso: dict[str, Any]) -> None:
    app = msal.ConfidentialClientApplication(
        "00000000-1111-2222-3333-444444444444",
        client_credential="x",
        authority=f"{sim.info['authority']}/{contoso['tenant_id']}",
        instance_discovery=False,
        http_client=CASession(sim.ca_file),
    )
    result = app.acquire_token_for_client(scopes=OUTLOOK_SCOPE)
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]


def test_unknown_tenant_is_aadsts90002(sim: SimHandle) -> None:
    authority = f"{sim.info['authority']}/99999999-9999-4999-8999-999999999999"
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal.ConfidentialClientApplication(
            "x",
            client_credential="x",
            authority=authority,
            instance_discovery=False,
            http_client=CASession(sim.ca_file),
        )
    session = CASession(sim.ca_file)
    discovery = session.get(f"{authority}/v2.0/.well-known/openid-configuration")
    assert discovery.status_code == 400
    assert discovery.json()["error_codes"] == [90002]
    token = session.post(
        f"{authority}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert token.json()["error"] == "invalid_request"
    assert token.json()["error_description"].startswith("AADSTS90002:")


def test_token_outage_is_temporarily_unavailable(sim: SimHandle, contoso: dict[str, Any]) -> None:
    sim.admin.set_faults(token_outage=True)
    # msal raises for a 5xx from the token endpoint instead of returning an error dict
    with pytest.raises(msal.exceptions.MsalServiceError, match="503"):
        msal_app(sim).acquire_token_for_client(scopes=OUTLOOK_SCOPE)
    answer = CASession(sim.ca_file).post(
        f"{sim.url}/{contoso['tenant_id']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": contoso["client_id"],
              "client_secret": contoso["client_secret"], "scope": OUTLOOK_SCOPE[0]},
    )  # fmt: skip
    assert answer.status_code == 503
    assert answer.json()["error"] == "temporarily_unavailable"


def test_tokens_are_counted(sim: SimHandle) -> None:
    before = sim.admin.stats()["tokens_issued"]
    msal_app(sim).acquire_token_for_client(scopes=OUTLOOK_SCOPE)
    assert sim.admin.stats()["tokens_issued"] == before + 1


def _assertion(
    contoso: dict[str, Any], aud: str, exp_delta: int, key_pem: bytes | None = None
) -> str:
    import time
    from pathlib import Path

    from cryptography import x509

    from calsync.sim.tls import thumbprints

    pem = Path(contoso["certificate_file"]).read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    now = int(time.time())
    claims = {"aud": aud, "iss": contoso["client_id"], "sub": contoso["client_id"],
              "jti": str(now), "nbf": now - 60, "exp": now + exp_delta}  # fmt: skip
    header = {"x5t": thumbprints(cert)[1]}
    return jwt.encode(claims, key_pem or pem, algorithm="RS256", headers=header)


def test_client_assertions_are_verified(sim: SimHandle, contoso: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    url = f"{sim.url}/{contoso['tenant_id']}/oauth2/v2.0/token"
    session = CASession(sim.ca_file)

    def post(assertion: str) -> dict[str, Any]:
        result: dict[str, Any] = session.post(url, data={
            "grant_type": "client_credentials", "client_id": contoso["client_id"],
            "scope": OUTLOOK_SCOPE[0], "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        }).json()  # fmt: skip
        return result

    assert "access_token" in post(_assertion(contoso, url, 600))
    assert post(_assertion(contoso, "https://elsewhere/token", 600))["error_codes"] == [50012]
    assert post(_assertion(contoso, url, -30))["error_codes"] == [700024]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert post(_assertion(contoso, url, 600, other))["error_codes"] == [700027]
