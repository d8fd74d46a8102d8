"""exchangelib services with a subscription group's affinity instead of an account's.

exchangelib keeps affinity per ``Account`` (``X-AnchorMailbox`` = that account, the cookie it last
saw in the session's jar). A subscription group needs (DESIGN.md "Headers on the wire"):

* ``X-AnchorMailbox`` = the group's anchor on every request of the group, whoever is impersonated;
* ``X-PreferServerAffinity: true``;
* ``X-BackEndOverrideCookie`` = the cookie the anchor's Subscribe returned (not yet on that first
  Subscribe), sent as a header: calsync's sessions keep no cookie jar.

Subscribe impersonates the member it subscribes; GetStreamingEvents and Unsubscribe impersonate the
anchor (build them with the anchor's account). ``streaming_protocol`` gives a tenant's streaming
connections their own session pool: a GetStreamingEvents request holds a session for its whole
ConnectionTimeout, and must not starve the sync workers of the shared pool.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable
from typing import Any

from exchangelib import Configuration
from exchangelib.services import GetStreamingEvents, SubscribeToStreaming, Unsubscribe
from exchangelib.services.common import EWSAccountService
from exchangelib.util import MNS, TNS

from calsync.ews.client import CalsyncProtocol, CalsyncRetryPolicy, EwsClient

_COOKIE = re.compile(r"X-BackEndOverrideCookie=([^;,\s]+)")


class _GroupAffinity(EWSAccountService):  # type: ignore[misc]
    group_anchor = ""
    group_cookie: str | None = None
    returned_cookie: str | None = None

    def with_group(self, anchor: str, cookie: str | None) -> _GroupAffinity:
        self.group_anchor, self.group_cookie = anchor, cookie
        return self

    def _extra_headers(self) -> dict[str, str]:
        headers: dict[str, str] = dict(super()._extra_headers())
        headers.pop("X-BackEndOverrideCookie", None)
        headers["X-AnchorMailbox"] = self.group_anchor
        headers["X-PreferServerAffinity"] = "true"
        if self.group_cookie:
            headers["X-BackEndOverrideCookie"] = self.group_cookie
        return headers

    def _handle_response_cookies(self, session: Any) -> None:
        """Never copy a cookie into ``account.affinity_cookie``: the group keeps its own."""

    def _get_response(self, payload: Any, api_version: Any) -> Any:
        response = super()._get_response(payload=payload, api_version=api_version)
        found = _COOKIE.search(response.headers.get("Set-Cookie", ""))
        if found:
            self.returned_cookie = found.group(1)
        return response


class GroupSubscribe(_GroupAffinity, SubscribeToStreaming):  # type: ignore[misc]
    pass


class GroupUnsubscribe(_GroupAffinity, Unsubscribe):  # type: ignore[misc]
    pass


class GroupGetStreamingEvents(_GroupAffinity, GetStreamingEvents):  # type: ignore[misc]
    """GetStreamingEvents that reports each good document and can be aborted from any thread."""

    on_document: Callable[[], None] | None = None
    connect_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._abort_lock = threading.Lock()
        self._aborted = False
        self._response: Any = None
        self.error_subscription_ids: list[str] = []  # of the last document with an error

    @property
    def aborted(self) -> bool:
        return self._aborted

    def call(self, subscription_ids: Any, connection_timeout: int) -> Any:
        result = super().call(
            subscription_ids=subscription_ids, connection_timeout=connection_timeout
        )
        read_s: float = connection_timeout * 60 + 60  # as exchangelib sets it, plus a connect limit
        self.timeout = (self.connect_timeout_s, read_s)
        return result

    def _get_response(self, payload: Any, api_version: Any) -> Any:
        response = super()._get_response(payload=payload, api_version=api_version)
        with self._abort_lock:
            self._response = response
            aborted = self._aborted
        if aborted:
            _shutdown(response)
        return response

    def _get_element_container(self, message: Any, name: Any = None) -> Any:
        # exchangelib reads these ids in the messages namespace only; the schema's type puts
        # SubscriptionId in the types namespace: read both
        self.error_subscription_ids = [
            str(node.text)
            for ns in (MNS, TNS)
            for node in message.iterfind(f"{{{MNS}}}ErrorSubscriptionIds/{{{ns}}}SubscriptionId")
            if node.text
        ]
        result = super()._get_element_container(message=message, name=name)
        if self.on_document is not None:  # no error in this document: connected, or a heartbeat
            self.on_document()
        return result

    def abort(self) -> None:
        with self._abort_lock:
            self._aborted = True
            response = self._response
        if response is not None:
            _shutdown(response)


def _shutdown(response: Any) -> None:
    """Wake a thread blocked reading ``response``: shut its socket down, then close it."""
    connection = getattr(response.raw, "connection", None)  # urllib3 2: the open HTTPConnection
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)
    response.close()


def streaming_protocol(client: EwsClient, pool_size: int) -> Any:
    """A private exchangelib protocol for one tenant's streaming connections.

    Built without exchangelib's protocol cache (keyed on endpoint and credentials, it would hand
    back the tenant's shared protocol), with the same credentials, version, retry policy,
    transport (CA, no cookies, counting, SOAP logs) and timeouts.
    """
    shared = client.config
    config = Configuration(
        service_endpoint=shared.service_endpoint,
        credentials=shared.credentials,
        auth_type=shared.auth_type,
        version=shared.version,
        retry_policy=CalsyncRetryPolicy(),
        max_connections=pool_size,
    )
    protocol: Any = CalsyncProtocol.__new__(CalsyncProtocol)
    protocol.__init__(config=config)  # CalsyncProtocol(config=…) would be the cached one
    protocol.transport = client.transport
    protocol.TIMEOUT = client.protocol.TIMEOUT
    return protocol
