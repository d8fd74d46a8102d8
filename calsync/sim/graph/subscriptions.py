"""Graph change notifications in the simulator: ``/subscriptions`` and webhook deliveries.

* ``POST /subscriptions`` (resource ``users/{id}/events``, ``changeType`` a subset of
  ``created,updated,deleted``, ``notificationUrl``, optional ``lifecycleNotificationUrl``,
  ``clientState``, ``expirationDateTime``): before creating, the simulator POSTs
  ``notificationUrl?validationToken=…`` (and the lifecycle URL when it differs) and creates the
  subscription only when the answer is ``200`` with the token as the body, within
  ``validation_timeout_s`` (Graph: 10 s); else ``400 InvalidRequest`` "Subscription validation
  request failed…". An expiry beyond ``max_expiry_s`` (Graph: 10,080 minutes for events) is
  clamped to it here (Graph answers 400), and the answer carries the real expiry.
* ``GET /subscriptions[/{id}]``, ``PATCH /subscriptions/{id}`` (``expirationDateTime``: renew),
  ``DELETE /subscriptions/{id}``; an unknown or expired id answers ``404``.
* Every change of a subscribed mailbox's events (admin API edits as in Outlook, and Graph or EWS
  writes) is POSTed to ``notificationUrl`` as ``{"value": [notification]}`` with
  ``subscriptionId``, ``clientState``, ``changeType``, ``resource``, ``resourceData`` and
  ``tenantId``; an expired subscription is removed and delivers nothing.
* Admin API: ``GET /_sim/graph/subscriptions`` (live subscriptions with delivery counts),
  ``POST /_sim/graph/subscription-settings`` (``max_expiry_s``, ``validation_timeout_s``,
  ``ca_file``), ``POST /_sim/graph/subscriptions/{id}/lifecycle`` ``{"event":
  "subscriptionRemoved" | "reauthorizationRequired" | "missed"}`` sends that lifecycle
  notification (``subscriptionRemoved`` also removes the subscription) and answers with the
  receiver's status.

Real Graph calls https notification URLs only; the simulator also accepts ``http://`` (such as
``http://127.0.0.1:PORT/…``) so that tests can run a plain receiver. For ``https`` it verifies
the receiver's certificate with ``ca_file`` (else the system's trust store). Deliveries are not
retried (Graph retries for up to 4 hours).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from calsync.sim.graph.handlers import GraphResponse, error
from calsync.sim.graph.ids import graph_id

if TYPE_CHECKING:
    from calsync.sim.core import SimCore
    from calsync.sim.directory import Tenant

MAX_EVENT_EXPIRY_S = 10080 * 60.0
CHANGE_TYPES = {"created", "updated", "deleted"}
KINDS = {"created": "created", "modified": "updated", "deleted": "deleted"}
LIFECYCLE_EVENTS = ("subscriptionRemoved", "reauthorizationRequired", "missed")
VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK "
    "to validation request."
)


def _user(body: Any) -> str | None:
    """The mailbox named by a subscription's ``resource`` (``users/{id}/events``)."""
    resource = body.get("resource") if isinstance(body, dict) else None
    segments = str(resource or "").strip("/").split("/")
    if len(segments) == 3 and segments[0].lower() == "users":
        return urllib.parse.unquote(segments[1]).lower()
    return None


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


@dataclass
class SimSubscription:
    id: str
    tenant: str
    tenant_id: str
    address: str
    resource: str
    change_types: set[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: dt.datetime
    delivered: int = 0
    failed: int = 0
    listener: Callable[[str, str, str, int], None] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.resource,
            "changeType": ",".join(sorted(self.change_types)),
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": _iso(self.expires),
            "applicationId": None,
            "creatorId": None,
        }


class GraphSubscriptions:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.subs: dict[str, SimSubscription] = {}
        self.max_expiry_s = MAX_EVENT_EXPIRY_S
        self.validation_timeout_s = 10.0
        self.delivery_timeout_s = 10.0
        self.ca_file: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # Graph API ----------------------------------------------------------------------------------

    async def handle(self, tenant: Tenant, method: str, path: str, body: Any) -> GraphResponse:
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        template = "/subscriptions" + ("/{id}" if len(parts) > 1 else "")
        sub = self._live(parts[1], tenant) if len(parts) == 2 else None
        self.core.stats.count(f"GRAPH {method} {template}", sub.address if sub else _user(body))
        if len(parts) == 1 and method == "POST":
            return await self._create(tenant, body)
        if len(parts) == 1 and method == "GET":
            mine = [s.to_json() for s in list(self.subs.values()) if self._live(s.id, tenant)]
            return GraphResponse(200, {"value": mine})
        if len(parts) != 2 or method not in ("GET", "PATCH", "DELETE"):
            return error(405, "MethodNotAllowed", f"{method} is not supported on {path}.")
        if sub is None:
            return error(404, "ResourceNotFound", f"The object '{parts[1]}' doesn't exist.")
        if method == "GET":
            return GraphResponse(200, sub.to_json())
        if method == "DELETE":
            self._remove(sub)
            return GraphResponse(204)
        expires = self._expiry(body)
        if isinstance(expires, GraphResponse):
            return expires
        sub.expires = expires
        return GraphResponse(200, sub.to_json())

    def _expiry(self, body: Any) -> dt.datetime | GraphResponse:
        raw = body.get("expirationDateTime") if isinstance(body, dict) else None
        try:
            when = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            return error(400, "InvalidRequest", "expirationDateTime is missing or invalid.")
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        now = dt.datetime.now(dt.UTC)
        if when <= now:
            return error(400, "InvalidRequest", "Subscription expiration must be in the future.")
        return min(when, now + dt.timedelta(seconds=self.max_expiry_s))

    async def _create(self, tenant: Tenant, body: Any) -> GraphResponse:
        if not isinstance(body, dict):
            return error(400, "InvalidRequest", "A subscription object is required.")
        resource = str(body.get("resource", ""))
        address = _user(body)
        if address is None or resource.strip("/").split("/")[2] != "events":
            return error(400, "InvalidRequest", f"Unsupported resource '{resource}'.")
        mbx = self.core.mailbox(address)
        if mbx is None or mbx.tenant != tenant.name:
            return error(404, "ResourceNotFound", "Resource could not be discovered.")
        if self.core.faults.listed("deny_mailboxes", mbx.address):
            return error(403, "ErrorAccessDenied", "Access to OData is disabled.")
        types = {t.strip() for t in str(body.get("changeType", "")).split(",") if t.strip()}
        if not types or not types <= CHANGE_TYPES:
            return error(400, "InvalidRequest", "changeType must be created, updated, deleted.")
        url = str(body.get("notificationUrl", ""))
        lifecycle = body.get("lifecycleNotificationUrl")
        urls = [url] + ([str(lifecycle)] if lifecycle and lifecycle != url else [])
        if any(urllib.parse.urlsplit(u).scheme not in ("http", "https") for u in urls):
            return error(400, "InvalidRequest", "The notification URL must be an https URL.")
        state = body.get("clientState")
        if state is not None and (not isinstance(state, str) or len(state) > 128):
            return error(400, "InvalidRequest", "clientState must be at most 128 characters.")
        expires = self._expiry(body)
        if isinstance(expires, GraphResponse):
            return expires
        for target in urls:
            if not await self._validate(target):
                return error(400, "InvalidRequest", VALIDATION_FAILED)
        sub = SimSubscription(
            id=str(uuid.uuid4()),
            tenant=tenant.name,
            tenant_id=tenant.tenant_id,
            address=mbx.address,
            resource=resource,
            change_types=types,
            notification_url=url,
            lifecycle_url=str(lifecycle) if lifecycle else None,
            client_state=state,
            expires=expires,
        )
        mbx.ensure()  # the seeded calendar exists before anyone listens (no notification storm)
        sub.listener = lambda kind, item_id, ck, _seq: self._on_change(sub, kind, item_id, ck)
        mbx.listeners.append(sub.listener)
        self.subs[sub.id] = sub
        return GraphResponse(201, sub.to_json())

    # subscriptions' life ------------------------------------------------------------------------

    def _live(self, sub_id: str, tenant: Tenant | None = None) -> SimSubscription | None:
        sub = self.subs.get(sub_id)
        if sub is None or (tenant is not None and sub.tenant != tenant.name):
            return None
        if sub.expires <= dt.datetime.now(dt.UTC):
            self._remove(sub)
            return None
        return sub

    def _remove(self, sub: SimSubscription) -> None:
        self.subs.pop(sub.id, None)
        mbx = self.core.mailbox(sub.address)
        if mbx is not None and sub.listener in mbx.listeners:
            mbx.listeners.remove(sub.listener)

    def _on_change(self, sub: SimSubscription, kind: str, item_id: str, change_key: str) -> None:
        change = KINDS.get(kind)
        if change is None or change not in sub.change_types or self._live(sub.id) is None:
            return
        resource = f"Users/{sub.address}/Events/{graph_id(item_id)}"
        note = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": _iso(sub.expires),
            "changeType": change,
            "resource": resource,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": resource,
                "@odata.etag": f'W/"{change_key}"',
                "id": graph_id(item_id),
            },
            "clientState": sub.client_state,
            "tenantId": sub.tenant_id,
        }
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a change made outside the simulator's loop: nobody to deliver
            return
        task = loop.create_task(self._deliver(sub, sub.notification_url, note))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # HTTP to the receiver -----------------------------------------------------------------------

    def _ssl(self, url: str) -> ssl.SSLContext | bool:
        if urllib.parse.urlsplit(url).scheme != "https":
            return False
        return ssl.create_default_context(cafile=self.ca_file)

    async def _validate(self, url: str) -> bool:
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        split = urllib.parse.urlsplit(url)
        added = urllib.parse.urlencode({"validationToken": token})
        query = f"{split.query}&{added}" if split.query else added
        target = urllib.parse.urlunsplit(split._replace(query=query))
        timeout = aiohttp.ClientTimeout(total=self.validation_timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    target, data=b"", headers={"Content-Type": "text/plain"}, ssl=self._ssl(url)
                ) as response,
            ):
                text = await response.text()
                return response.status == 200 and text == token
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, ValueError):
            return False

    async def _deliver(self, sub: SimSubscription, url: str, note: dict[str, Any]) -> int:
        """POST one notification; the receiver's status (0 when unreachable)."""
        timeout = aiohttp.ClientTimeout(total=self.delivery_timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json={"value": [note]}, ssl=self._ssl(url)) as response,
            ):
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, ValueError):
            status = 0
        if 200 <= status < 300:
            sub.delivered += 1
        else:
            sub.failed += 1
        return status

    # admin API ----------------------------------------------------------------------------------

    def admin_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/graph/subscriptions", self._admin_list),
            web.post("/_sim/graph/subscription-settings", self._admin_settings),
            web.post("/_sim/graph/subscriptions/{id}/lifecycle", self._admin_lifecycle),
        ]

    async def _admin_list(self, _request: web.Request) -> web.Response:
        live = [s for s in list(self.subs.values()) if self._live(s.id)]
        return web.json_response(
            [
                {
                    **s.to_json(),
                    "mailbox": s.address,
                    "tenant": s.tenant,
                    "delivered": s.delivered,
                    "failed": s.failed,
                }
                for s in live
            ]
        )

    async def _admin_settings(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "max_expiry_s" in body:
            self.max_expiry_s = float(body["max_expiry_s"])
        if "validation_timeout_s" in body:
            self.validation_timeout_s = float(body["validation_timeout_s"])
        if "ca_file" in body:
            self.ca_file = body["ca_file"] or None
        return web.json_response(
            {
                "max_expiry_s": self.max_expiry_s,
                "validation_timeout_s": self.validation_timeout_s,
                "ca_file": self.ca_file,
            }
        )

    async def _admin_lifecycle(self, request: web.Request) -> web.Response:
        sub = self._live(request.match_info["id"])
        if sub is None:
            return web.json_response({"error": "no such subscription"}, status=404)
        body = await request.json()
        event = body.get("event") if isinstance(body, dict) else None
        if event not in LIFECYCLE_EVENTS:
            return web.json_response({"error": f"event: one of {LIFECYCLE_EVENTS}"}, status=400)
        if event == "subscriptionRemoved":
            self._remove(sub)
        note = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": _iso(sub.expires),
            "tenantId": sub.tenant_id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }
        status = await self._deliver(sub, sub.lifecycle_url or sub.notification_url, note)
        return web.json_response({"status": status})
