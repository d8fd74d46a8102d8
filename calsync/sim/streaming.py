"""Subscriptions and notifications: Subscribe, GetStreamingEvents, GetEvents, Unsubscribe."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from lxml import etree

from calsync.sim.ews.parse import text
from calsync.sim.ews.xml import NS_M, NS_T, EwsError, M, T, elements, envelope, error, ok, response

if TYPE_CHECKING:
    from calsync.sim.core import SimCore
    from calsync.sim.ews.context import Ctx
    from calsync.sim.mailstore import Mailbox

EVENT_TAGS = {"created": "CreatedEvent", "modified": "ModifiedEvent", "deleted": "DeletedEvent"}
SUBSCRIPTION_IDLE_MINUTES = 30
MAX_SUBSCRIPTIONS_PER_MAILBOX = 20
EVENTS_PER_NOTIFICATION = 50


@dataclass
class Subscription:
    sub_id: str
    mailbox: Mailbox
    tenant: str
    kind: str  # streaming | pull
    event_types: set[str]
    timeout_s: float = SUBSCRIPTION_IDLE_MINUTES * 60.0
    queue: deque[tuple[str, str, str, int, dt.datetime]] = field(default_factory=deque)
    last_seen: float = field(default_factory=time.monotonic)
    connection: Connection | None = None
    watermark: int = 0

    def on_change(self, kind: str, item_id: str, change_key: str, seq: int) -> None:
        if EVENT_TAGS[kind] not in self.event_types:
            return
        self.queue.append((kind, item_id, change_key, seq, dt.datetime.now(dt.UTC)))
        if self.connection is not None:
            self.connection.wake.set()

    def mark(self, seq: int) -> str:
        return base64.b64encode(f"{self.sub_id}:{seq}".encode()).decode()


@dataclass(eq=False)
class Connection:
    subs: list[Subscription]
    request: web.BaseRequest
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False


class Hub:
    """All subscriptions and open streaming connections of one simulator."""

    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.subs: dict[str, Subscription] = {}
        self.connections: set[Connection] = set()

    def live(self) -> int:
        self._expire()
        return len(self.subs)

    def _expire(self) -> None:
        now = time.monotonic()
        for sub in list(self.subs.values()):
            if sub.connection is None and now - sub.last_seen > sub.timeout_s:
                self._remove(sub)

    def _remove(self, sub: Subscription) -> None:
        self.subs.pop(sub.sub_id, None)
        if sub.on_change in sub.mailbox.listeners:
            sub.mailbox.listeners.remove(sub.on_change)

    def drop_all(self) -> int:
        """Close every streaming socket (fault drop_streams); subscriptions survive."""
        count = 0
        for conn in list(self.connections):
            conn.dropped = True
            conn.wake.set()
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
            count += 1
        return count

    def _valid(self, sub_id: str, tenant: str, kind: str) -> bool:
        self._expire()
        sub = self.subs.get(sub_id)
        return sub is not None and sub.tenant == tenant and sub.kind == kind

    def _get(self, sub_id: str, tenant: str) -> Subscription:
        self._expire()
        sub = self.subs.get(sub_id)
        if sub is None or sub.tenant != tenant:
            raise EwsError("ErrorSubscriptionNotFound", "The specified subscription was not found.")
        return sub

    # operations -----------------------------------------------------------------------------

    def subscribe(self, ctx: Ctx, req: etree._Element) -> bytes:
        messages: list[str] = []
        for request in elements(req):
            kind = "pull" if request.tag == M + "PullSubscriptionRequest" else "streaming"
            try:
                if request.tag == M + "PushSubscriptionRequest":
                    raise EwsError("ErrorInvalidOperation", "Push subscriptions are not supported.")
                if request.get("SubscribeToAllFolders") != "true":
                    ctx.folder(request.find(T + "FolderIds"))
                mine = [s for s in self.subs.values() if s.mailbox is ctx.mailbox]
                if len(mine) >= MAX_SUBSCRIPTIONS_PER_MAILBOX:
                    raise EwsError(
                        "ErrorExceededSubscriptionCount",
                        "You have exceeded the available subscriptions for your account.",
                    )
                types = {text(e) for e in request.iter(T + "EventType")}
                minute = self.core.minute_s
                minutes = float(text(request.find(T + "Timeout"), "30"))
                sub = Subscription(
                    sub_id=_new_sub_id(ctx.mailbox.address),
                    mailbox=ctx.mailbox,
                    tenant=ctx.tenant.name,
                    kind=kind,
                    event_types=types or set(EVENT_TAGS.values()),
                    timeout_s=(minutes if kind == "pull" else SUBSCRIPTION_IDLE_MINUTES) * minute,
                    watermark=ctx.mailbox.seq,
                )
            except EwsError as err:
                messages.append(error("Subscribe", err))
                continue
            self.subs[sub.sub_id] = sub
            ctx.mailbox.listeners.append(sub.on_change)
            inner = f"<m:SubscriptionId>{sub.sub_id}</m:SubscriptionId>"
            inner += f"<m:Watermark>{sub.mark(ctx.mailbox.seq)}</m:Watermark>"
            messages.append(ok("Subscribe", inner))
            ctx.response_headers["Set-Cookie"] = (
                f"X-BackEndOverrideCookie={backend_cookie(ctx.mailbox.address)}; path=/; secure; "
                "HttpOnly"
            )
        return response("Subscribe", messages)

    def unsubscribe(self, ctx: Ctx, req: etree._Element) -> bytes:
        messages: list[str] = []
        for node in req.iter(M + "SubscriptionId"):
            try:
                self._remove(self._get(text(node), ctx.tenant.name))
            except EwsError as err:
                messages.append(error("Unsubscribe", err))
                continue
            messages.append(ok("Unsubscribe"))
        return response("Unsubscribe", messages)

    def get_events(self, ctx: Ctx, req: etree._Element) -> bytes:
        sub_id = text(req.find(M + "SubscriptionId"))
        try:
            if not self._valid(sub_id, ctx.tenant.name, "pull"):
                raise EwsError("ErrorInvalidSubscription", "Subscription is invalid.")
            sub = self.subs[sub_id]
        except EwsError as err:
            return response("GetEvents", [error("GetEvents", err)])
        sub.last_seen = time.monotonic()
        previous = sub.mark(sub.watermark)
        events = _drain(sub)
        more = "true" if sub.queue else "false"
        if not events:
            mark = sub.mark(sub.watermark)
            events = f"<t:StatusEvent><t:Watermark>{mark}</t:Watermark></t:StatusEvent>"
        inner = (
            f"<m:Notification><t:SubscriptionId>{sub.sub_id}</t:SubscriptionId>"
            f"<t:PreviousWatermark>{previous}</t:PreviousWatermark><t:MoreEvents>{more}"
            f"</t:MoreEvents>{events}</m:Notification>"
        )
        return response("GetEvents", [ok("GetEvents", inner)])

    async def get_streaming_events(
        self, ctx: Ctx, req: etree._Element, request: web.Request
    ) -> web.StreamResponse:
        ids = [text(n) for n in req.iter(T + "SubscriptionId")]
        bad: list[str] = []
        timeout = int(text(req.find(M + "ConnectionTimeout"), "30") or 30)
        cap = self.core.max_subscriptions_per_connection
        try:
            if not 1 <= timeout <= 30:
                raise EwsError(
                    "ErrorInvalidArgument", "ConnectionTimeout must be between 1 and 30 minutes."
                )
            if len(ids) > cap:
                raise EwsError(
                    "ErrorInvalidArgument",
                    f"The number of subscription ids exceeds the maximum of {cap} per connection.",
                )
            bad = [sid for sid in ids if not self._valid(sid, ctx.tenant.name, "streaming")]
            if bad or not ids:
                raise EwsError("ErrorInvalidSubscription", "Subscription is invalid.")
            subs = [self.subs[sid] for sid in ids]
        except EwsError as err:
            extra = "".join(f"<t:SubscriptionId>{b}</t:SubscriptionId>" for b in bad)
            inner = f"<m:ErrorSubscriptionIds>{extra}</m:ErrorSubscriptionIds>" if extra else ""
            inner += "<m:ConnectionStatus>Closed</m:ConnectionStatus>"  # as documented
            body = response("GetStreamingEvents", [error("GetStreamingEvents", err, inner)])
            return web.Response(body=body, content_type="text/xml", charset="utf-8")
        conn = Connection(subs=subs, request=request)
        for sub in subs:
            if sub.connection is not None:
                sub.connection.subs.remove(sub)
            sub.connection = conn
        self.connections.add(conn)
        stats = self.core.stats
        stats.max_subscriptions_on_one_connection = max(
            stats.max_subscriptions_on_one_connection, len(subs)
        )
        resp = web.StreamResponse(headers={"Content-Type": "text/xml; charset=utf-8"})
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
            await self._pump(conn, resp, timeout * self.core.minute_s)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            conn.dropped = True
        finally:
            self.connections.discard(conn)
            now = time.monotonic()
            for sub in conn.subs:
                sub.connection = None
                sub.last_seen = now
        if not conn.dropped:
            await resp.write_eof()
        return resp

    async def _pump(self, conn: Connection, resp: web.StreamResponse, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        await resp.write(_stream_doc("", "OK"))
        while not conn.dropped:
            notes = "".join(_notification(s) for s in conn.subs if s.queue)
            if notes:
                await resp.write(_stream_doc(f"<m:Notifications>{notes}</m:Notifications>", "OK"))
            remaining = deadline - loop.time()
            if remaining <= 0:
                await resp.write(_stream_doc("", "Closed"))
                return
            conn.wake.clear()
            if any(s.queue for s in conn.subs):
                continue
            try:
                await asyncio.wait_for(conn.wake.wait(), min(self.core.heartbeat_s, remaining))
            except TimeoutError:
                if loop.time() < deadline and not conn.dropped:
                    await resp.write(_stream_doc("", "OK"))


def _drain(sub: Subscription) -> str:
    parts: list[str] = []
    mbx = sub.mailbox
    for _ in range(min(len(sub.queue), EVENTS_PER_NOTIFICATION)):
        kind, item_id, ck, seq, when = sub.queue.popleft()
        sub.watermark = seq
        tag = EVENT_TAGS[kind]
        parts.append(
            f"<t:{tag}><t:Watermark>{sub.mark(seq)}</t:Watermark><t:TimeStamp>"
            f"{when.strftime('%Y-%m-%dT%H:%M:%SZ')}</t:TimeStamp>"
            f'<t:ItemId Id="{item_id}" ChangeKey="{ck}"/>'
            f'<t:ParentFolderId Id="{mbx.calendar_id}" ChangeKey="{mbx.folder_ck}"/></t:{tag}>'
        )
    return "".join(parts)


def _notification(sub: Subscription) -> str:
    return (
        f"<m:Notification><t:SubscriptionId>{sub.sub_id}</t:SubscriptionId>{_drain(sub)}"
        "</m:Notification>"
    )


def _stream_doc(inner: str, status: str) -> bytes:
    return envelope(
        f'<m:GetStreamingEventsResponse xmlns:m="{NS_M}" xmlns:t="{NS_T}"><m:ResponseMessages>'
        '<m:GetStreamingEventsResponseMessage ResponseClass="Success">'
        f"<m:ResponseCode>NoError</m:ResponseCode>{inner}"
        f"<m:ConnectionStatus>{status}</m:ConnectionStatus>"
        "</m:GetStreamingEventsResponseMessage></m:ResponseMessages>"
        "</m:GetStreamingEventsResponse>"
    )


def _new_sub_id(address: str) -> str:
    raw = hashlib.sha1(address.lower().encode(), usedforsecurity=False).digest()[:8]
    return base64.b64encode(b"\x1e\x00" + raw + uuid.uuid4().bytes).decode()


def backend_cookie(address: str) -> str:
    digest = hashlib.sha1(address.lower().encode(), usedforsecurity=False).hexdigest()
    return f"DB{int(digest[:4], 16) % 8}PR04MB{digest[4:8].upper()}.sim.example~{digest[8:24]}"
