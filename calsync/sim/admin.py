"""A small synchronous client of the simulator's admin API (for tests, demos, benchmarks)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class AdminError(RuntimeError):
    """The admin API answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class AdminClient:
    """`AdminClient(sim.json["admin_url"], sim.json["ca_file"])`."""

    def __init__(self, admin_url: str, ca_file: str, timeout: float = 30.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=ca_file)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - the URL is the simulator's https admin URL
            self.admin_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AdminError(exc.code, exc.read().decode(errors="replace")) from exc
        return json.loads(raw) if raw else None

    @staticmethod
    def _q(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    # mailboxes and events ---------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/info")
        return result

    def mailboxes(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/mailboxes")
        return result

    def events(self, address: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/mailboxes/{self._q(address)}/events")
        return result

    def event(self, address: str, item_id: str) -> dict[str, Any]:
        path = f"/mailboxes/{self._q(address)}/events/{self._q(item_id)}"
        result: dict[str, Any] = self._call("GET", path)
        return result

    def create_event(self, address: str, **fields: Any) -> dict[str, str]:
        """POST an event (fields as in GET …/events); returns {"item_id", "change_key"}."""
        result: dict[str, str] = self._call("POST", f"/mailboxes/{self._q(address)}/events", fields)
        return result

    def patch_event(self, address: str, item_id: str, **fields: Any) -> dict[str, str]:
        path = f"/mailboxes/{self._q(address)}/events/{self._q(item_id)}"
        result: dict[str, str] = self._call("PATCH", path, fields)
        return result

    def delete_event(self, address: str, item_id: str) -> None:
        self._call("DELETE", f"/mailboxes/{self._q(address)}/events/{self._q(item_id)}")

    # stats, faults, secrets -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def reset_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/stats/reset")
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge faults (server_busy_rate=0.5, deny_mailboxes=[…], …); returns the active set."""
        result: dict[str, Any] = self._call("POST", "/faults", faults)
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def add_secret(self, tenant: str, expires: str | None = None) -> str:
        """Add a client secret to a tenant's app (as an admin does before rotating)."""
        body = {"expires": expires} if expires else {}
        result: dict[str, str] = self._call("POST", f"/tenants/{self._q(tenant)}/secrets", body)
        return result["client_secret"]
