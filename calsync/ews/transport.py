"""The HTTP layer under exchangelib for one tenant: CA pinning, no cookies, counting, SOAP logs.

Every EWS request of a tenant passes ``TenantAdapter.send``, which

* passes the configured CA file as ``verify`` (``REQUESTS_CA_BUNDLE`` cannot replace it),
* drops any ``Cookie`` header: sessions keep no cookie jar, so one mailbox's affinity cookie is
  never replayed for another (DESIGN.md "Headers on the wire"),
* counts the request under the mailbox it is for (``X-AnchorMailbox``) and operation,
* with ``ews_protocol_debug`` logs the SOAP request and response as ``ews_request`` and
  ``ews_response`` debug events, without tokens and with item bodies replaced by their length.
"""

from __future__ import annotations

import functools
import http.cookiejar
import re
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests
import structlog

log = structlog.get_logger("calsync.ews")

_OPERATION = re.compile(rb"<(?:\w+:)?Body\b[^>]*>\s*<(?:\w+:)?(\w+)[\s>/]")
_AFFINITY = re.compile(r"X-BackEndOverrideCookie=([^;,\s]+)")
_ENVELOPE = re.compile(r"<(\w+:)?Envelope\b")
_BODY_NAMES = r"(?P<p>\w+:)?(?P<n>Body|UniqueBody|TextBody|MimeContent)\b[^>]*(?<!/)>"


@functools.cache
def _bodies(soap_prefix: str | None) -> re.Pattern[str]:
    # The SOAP envelope's own Body (s:Body) holds the whole request: never redact that one.
    guard = f"(?!{re.escape(soap_prefix)}Body\\b)" if soap_prefix else "(?=\\w+:)"
    return re.compile(f"(<{guard}{_BODY_NAMES})(?P<text>.*?)(?P<close></(?P=p)?(?P=n)>)", re.S)


_SECRETS = (
    re.compile(r"Bearer\s+[\w\-.~+/=]+"),
    re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"),  # any JWT: access tokens, client assertions
    re.compile(r"(client_secret|client_assertion|access_token|password)=[^&\s<\"]+", re.I),
)


def redact_soap(envelope: str) -> str:
    """The envelope without tokens, and with the text of item bodies replaced by its length."""

    def body(match: re.Match[str]) -> str:
        return f"{match.group(1)}[redacted {len(match.group('text'))} chars]{match.group('close')}"

    found = _ENVELOPE.search(envelope)
    text = _bodies(found.group(1) if found else None).sub(body, envelope)
    for pattern in _SECRETS:
        text = pattern.sub("[redacted]", text)
    return text


def body_text(body: object) -> str:
    """A prepared request's body as text (exchangelib always sends bytes)."""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body if isinstance(body, str) else ""


def operation_of(body: object) -> str:
    """The EWS operation a SOAP request envelope calls (``SyncFolderItems``), or ``?``."""
    raw = body if isinstance(body, bytes) else body_text(body).encode()
    match = _OPERATION.search(raw[:4096])
    return match.group(1).decode() if match else "?"


class RejectAllCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def cookieless_jar() -> requests.cookies.RequestsCookieJar:
    return requests.cookies.RequestsCookieJar(policy=RejectAllCookies())


class PinnedSession(requests.Session):
    """A session that passes the configured CA (and a timeout) on every request."""

    def __init__(self, ca_file: str | None, timeout: float = 30.0):
        super().__init__()
        self.ca_file = ca_file
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.ca_file:
            kwargs["verify"] = self.ca_file
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class TenantTransport:
    """Per-tenant HTTP state shared by all sessions of the tenant's exchangelib protocol."""

    def __init__(self, tenant: str, ca_file: str | None, protocol_debug: bool = False):
        self.tenant = tenant
        self.ca_file = ca_file
        self.protocol_debug = protocol_debug
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._operations: Counter[tuple[str, str]] = Counter()
        self.observers: list[Callable[[requests.PreparedRequest], None]] = []
        self._affinity: dict[str, str] = {}

    def affinity_cookie(self, mailbox: str) -> str | None:
        """The ``X-BackEndOverrideCookie`` Exchange last set for requests anchored on ``mailbox``
        (sessions keep no cookie jar; subscription groups send it as a header)."""
        with self._lock:
            return self._affinity.get(mailbox.lower())

    def note_cookies(self, mailbox: str, response: requests.Response) -> None:
        found = _AFFINITY.search(response.headers.get("Set-Cookie", ""))
        if found and mailbox:
            with self._lock:
                self._affinity[mailbox] = found.group(1)

    def count(self, mailbox: str, operation: str) -> None:
        with self._lock:
            self._requests[mailbox] += 1
            self._operations[mailbox, operation] += 1

    def requests_for(self, mailbox: str) -> int:
        with self._lock:
            return self._requests[mailbox.lower()]

    def operations_for(self, mailbox: str) -> dict[str, int]:
        with self._lock:
            return {op: n for (mb, op), n in self._operations.items() if mb == mailbox.lower()}

    def adapter(self, **kwargs: Any) -> TenantAdapter:
        return TenantAdapter(self, **kwargs)


class TenantAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, transport: TenantTransport, **kwargs: Any):
        super().__init__(**kwargs)
        self.transport = transport

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        transport = self.transport
        request.headers.pop("Cookie", None)
        if transport.ca_file:
            kwargs["verify"] = transport.ca_file
        mailbox = str(request.headers.get("X-AnchorMailbox", "")).lower()
        operation = operation_of(request.body)
        transport.count(mailbox, operation)
        for observer in transport.observers:
            observer(request)
        bound = log.bind(mailbox=mailbox or None, tenant=transport.tenant, operation=operation)
        if transport.protocol_debug:
            bound.debug("ews_request", soap=redact_soap(body_text(request.body)))
        response = super().send(request, stream=stream, **kwargs)
        transport.note_cookies(mailbox, response)
        if transport.protocol_debug:
            soap = "[streaming]" if stream else redact_soap(response.text)
            bound.debug("ews_response", status=response.status_code, soap=soap)
        return response
