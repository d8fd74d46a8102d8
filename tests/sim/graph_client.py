"""A plain httpx client of the simulator's Graph endpoints (for its fidelity tests)."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote

import httpx

from calsync.sim import SimHandle

CALSYNC_PROP = "String {4ca80195-c234-4a35-b00a-22be78edc0d5} Name calsync-id"


def graph_token(sim: SimHandle, tenant: dict[str, Any], scope: str | None = None) -> str:
    response = httpx.post(
        f"{sim.info['authority']}/{tenant['tenant_id']}/oauth2/v2.0/token",
        data={
            "client_id": tenant["client_id"],
            "client_secret": tenant["client_secret"],
            "grant_type": "client_credentials",
            "scope": scope or "https://graph.microsoft.com/.default",
        },
        verify=ssl.create_default_context(cafile=sim.ca_file),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


class Graph:
    def __init__(self, sim: SimHandle, tenant: dict[str, Any], token: str | None = None) -> None:
        self.base = sim.info["graph_url"]
        self.http = httpx.Client(
            verify=ssl.create_default_context(cafile=sim.ca_file),
            headers={"Authorization": f"Bearer {token or graph_token(sim, tenant)}"},
            timeout=30,
        )

    def close(self) -> None:
        self.http.close()

    def url(self, user: str, path: str) -> str:
        return f"{self.base}/users/{quote(user)}{path}"

    def get(self, user: str, path: str, **params: Any) -> httpx.Response:
        return self.http.get(self.url(user, path), params=params)

    def send(self, method: str, user: str, path: str, body: Any = None,
             **headers: str) -> httpx.Response:  # fmt: skip
        return self.http.request(method, self.url(user, path), json=body, headers=headers)

    def follow(self, url: str, **headers: str) -> httpx.Response:
        return self.http.get(url, headers=headers)

    def delta_round(self, first: str, **headers: str) -> tuple[list[dict[str, Any]], str]:
        """Every entry of one delta round and its deltaLink."""
        entries: list[dict[str, Any]] = []
        url = first
        while True:
            response = self.follow(url, **headers)
            assert response.status_code == 200, response.text
            body = response.json()
            entries += body["value"]
            assert not ("@odata.nextLink" in body and "@odata.deltaLink" in body)
            if "@odata.deltaLink" in body:
                return entries, body["@odata.deltaLink"]
            url = body["@odata.nextLink"]
