"""``GraphClient``: one tenant's pooled HTTPS client for Graph v1.0 (httpx, tokens from
``calsync.auth``, the configured CA passed as ``verify``), with per-mailbox request counts and
JSON batching (at most 20 requests per ``$batch``).

Every request holds permits of its mailbox's concurrency gate (``gate.MailboxGates``, shared by
the app's clients: at most 4 in flight per mailbox, a ``$batch`` counting as up to 4). Two
counts per mailbox: ``request_count`` (HTTP requests, as the canonical log line reports them)
and ``budget_count`` (what Outlook counts against 10,000 requests per 10 minutes: each request
inside a ``$batch`` individually, the envelope not), which the scheduler's request budget reads.
"""

from __future__ import annotations

import ssl
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from calsync.auth import TokenProvider
from calsync.errors import AuthError, CalsyncError, TransientError
from calsync.graph.errors import classify
from calsync.graph.gate import MailboxGates

log = structlog.get_logger("calsync.graph")

BATCH_LIMIT = 20
PREFER = 'IdType="ImmutableId"'


@dataclass(frozen=True, slots=True)
class GraphSettings:
    tenant: str
    graph_url: str = "https://graph.microsoft.com/v1.0"
    ca_file: str | None = None
    timeout_s: float = 30.0
    max_connections: int = 20
    page_size: int = 200
    max_concurrent_per_mailbox: int = 4  # Outlook's limit per app and mailbox


@dataclass(frozen=True, slots=True)
class SubRequest:
    """One request of a ``$batch`` (``url`` relative to the version root)."""

    method: str
    url: str
    body: Any = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SubResponse:
    status: int
    body: Any
    headers: dict[str, str]


class GraphClient:
    def __init__(self, settings: GraphSettings, provider: TokenProvider) -> None:
        self.settings = settings
        self.provider = provider
        self.base = settings.graph_url.rstrip("/")
        self.scope = provider.scope_for("graph", settings.graph_url)
        verify: Any = (
            ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else True
        )
        self._http = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(settings.timeout_s, connect=10.0),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            trust_env=False,
        )
        self._counts: Counter[str] = Counter()
        self._units: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.gates = MailboxGates.for_app(provider.client_id, settings.max_concurrent_per_mailbox)

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def close(self) -> None:
        self._http.close()

    def user_url(self, address: str, path: str) -> str:
        return f"/users/{quote(address)}{path}"

    def request_count(self, address: str) -> int:
        with self._lock:
            return self._counts[address.lower()]

    def budget_count(self, address: str) -> int:
        """Requests Outlook counts for ``address``'s mailbox (those inside a batch each)."""
        with self._lock:
            return self._units[address.lower()]

    def _count(self, address: str, units: int) -> None:
        with self._lock:
            self._counts[address.lower()] += 1
            self._units[address.lower()] += units

    def _headers(self, token: str, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token}",
            "Prefer": PREFER,
            "Accept": "application/json",
        }
        for key, value in (extra or {}).items():
            if key.lower() == "prefer":
                headers["Prefer"] = f"{headers['Prefer']}, {value}"
            else:
                headers[key] = value
        return headers

    def call(
        self,
        address: str,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        item: str | None = None,
        allow: Sequence[int] = (),
        carries: int = 0,
    ) -> tuple[int, Any]:
        """Send one request for ``address``'s mailbox; (status, JSON body) for a success or a
        status in ``allow``, else the classified calsync error. ``carries``: the number of
        requests a ``$batch`` holds (0 for a plain request)."""
        full = url if url.startswith("http") else self.base + url
        for attempt in (1, 2):
            token = self.provider.token(self.scope).token
            self._count(address, carries or 1)
            try:
                with self.gates.hold(address, carries or 1):
                    response = self._http.request(
                        method, full, json=body, headers=self._headers(token, headers)
                    )
            except httpx.HTTPError as exc:
                raise TransientError(
                    f"Graph request failed: {type(exc).__name__}: {exc}", error_code="network"
                ) from exc
            data = _json(response)
            if response.status_code == 401 and attempt == 1:
                self.provider.invalidate(self.scope, token)  # expired mid-round: fetch anew
                continue
            if response.is_success or response.status_code in allow:
                return response.status_code, data
            raise self._error(response.status_code, data, response.headers, address, item)
        raise AuthError("Graph refused a fresh token", tenant=self.tenant)  # pragma: no cover

    def _error(
        self, status: int, data: Any, headers: Any, address: str, item: str | None
    ) -> CalsyncError:
        error = classify(status, data, headers, mailbox=address, tenant=self.tenant, item=item)
        log.debug("graph_error", mailbox=address, status=status, error_code=error.error_code)
        return error

    def batch(
        self, address: str, requests: Sequence[SubRequest], *, headers: dict[str, str] | None = None
    ) -> list[SubResponse]:
        """Send ``requests`` in ``$batch`` envelopes of at most 20; answers in request order.
        A throttled sub-request raises ``ThrottledError`` (the caller's run backs off)."""
        out: list[SubResponse] = []
        for start in range(0, len(requests), BATCH_LIMIT):
            chunk = requests[start : start + BATCH_LIMIT]
            payload = {
                "requests": [
                    {
                        "id": str(n),
                        "method": r.method,
                        "url": r.url,
                        **(
                            {
                                "body": r.body,
                                "headers": {
                                    "Content-Type": "application/json",
                                    **(r.headers or {}),
                                },
                            }
                            if r.body is not None
                            else {"headers": r.headers or {}}
                        ),
                    }
                    for n, r in enumerate(chunk)
                ]
            }
            _, data = self.call(
                address, "POST", "/$batch", body=payload, headers=headers, carries=len(chunk)
            )
            answers = {str(a.get("id")): a for a in (data or {}).get("responses", [])}
            for n, _request in enumerate(chunk):
                answer = answers.get(str(n), {"status": 500, "body": None, "headers": {}})
                status = int(answer.get("status", 500))
                sub = SubResponse(status, answer.get("body"), dict(answer.get("headers") or {}))
                if status in (429, 503):
                    raise self._error(status, sub.body, sub.headers, address, None)
                out.append(sub)
        return out

    def error_of(self, address: str, sub: SubResponse, item: str | None) -> CalsyncError:
        return self._error(sub.status, sub.body, sub.headers, address, item)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
