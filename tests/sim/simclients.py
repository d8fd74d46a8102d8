"""Clients of the simulator for the fidelity tests: the real msal and exchangelib."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msal
import requests
from exchangelib import (
    IMPERSONATION,
    OAUTH2,
    Account,
    Configuration,
    FailFast,
    OAuth2Credentials,
    Version,
)
from exchangelib.version import EXCHANGE_O365

from calsync.sim import SimHandle

OUTLOOK_SCOPE = ["https://outlook.office365.com/.default"]


class CASession(requests.Session):
    """msal's http_client: passes the simulator's CA on every request (REQUESTS_CA_BUNDLE is set
    on this machine and would override `session.verify`)."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.ca_file = ca_file

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["verify"] = self.ca_file
        try:
            return super().request(method, url, *args, **kwargs)
        finally:
            self.close()  # no pooled sockets left behind for the garbage collector


def make_adapter_cls(ca_file: str) -> type[requests.adapters.HTTPAdapter]:
    class CAAdapter(requests.adapters.HTTPAdapter):
        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, ca_file, cert)

        def get_connection_with_tls_context(
            self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
        ) -> Any:
            return super().get_connection_with_tls_context(request, ca_file, proxies, cert)

    return CAAdapter


def msal_app(sim: SimHandle, *, tenant: str | None = None, certificate: bool = False,
             secret: str | None = None) -> msal.ConfidentialClientApplication:  # fmt: skip
    t = sim.tenant(tenant)
    credential: Any = secret or t["client_secret"]
    if certificate:
        pem = Path(t["certificate_file"]).read_text()
        key = pem[pem.index("-----BEGIN PRIVATE KEY-----") :]
        cert = pem[: pem.index("-----BEGIN PRIVATE KEY-----")]
        credential = {"private_key": key, "thumbprint": t["certificate_thumbprint"],
                      "public_certificate": cert}  # fmt: skip
    return msal.ConfidentialClientApplication(
        t["client_id"],
        client_credential=credential,
        authority=f"{sim.info['authority']}/{t['tenant_id']}",
        instance_discovery=False,
        http_client=CASession(sim.ca_file),
    )


class MsalCredentials(OAuth2Credentials):  # type: ignore[misc]
    """exchangelib credentials whose token comes from msal (ews-notes 1.6)."""

    def __init__(self, app: msal.ConfidentialClientApplication, tenant_id: str) -> None:
        self._app = app
        super().__init__(client_id=app.client_id, client_secret=None, tenant_id=tenant_id)

    @property
    def access_token(self) -> dict[str, Any] | None:
        result = self._app.acquire_token_for_client(scopes=OUTLOOK_SCOPE)
        if "access_token" not in result:
            raise RuntimeError(
                f"token error: {result.get('error')}: {result.get('error_description')}"
            )
        expires_in = int(result.get("expires_in", 60))
        return {"access_token": result["access_token"], "token_type": "Bearer",
                "expires_in": expires_in, "expires_at": time.time() + expires_in}  # fmt: skip

    @access_token.setter
    def access_token(self, value: Any) -> None:
        pass  # exchangelib resets the token to None when it renews a session: msal owns it


def account(sim: SimHandle, address: str, *, tenant: str | None = None,
            app: msal.ConfidentialClientApplication | None = None) -> Account:  # fmt: skip
    t = sim.tenant(tenant)
    creds = MsalCredentials(app or msal_app(sim, tenant=tenant), t["tenant_id"])
    config = Configuration(
        service_endpoint=sim.info["ews_url"],
        credentials=creds,
        auth_type=OAUTH2,
        version=Version(build=EXCHANGE_O365),
        retry_policy=FailFast(),
        max_connections=4,
    )
    return Account(address, config=config, autodiscover=False, access_type=IMPERSONATION)
