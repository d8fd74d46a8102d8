"""The /graph/v1.0 endpoint: bearer tokens for https://graph.microsoft.com, mailbox policy,
faults (429/503 with Retry-After), request counting and JSON batching."""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from multidict import CIMultiDict

from calsync.sim.entra import GRAPH
from calsync.sim.graph.concurrency import MailboxConcurrency
from calsync.sim.graph.handlers import Ctx, GraphRequest, GraphResponse, error, match
from calsync.sim.graph.subscriptions import GraphSubscriptions
from calsync.sim.wire_faults import corrupt_graph, graph_mailbox, reset

if TYPE_CHECKING:
    from calsync.sim.core import SimCore
    from calsync.sim.directory import Tenant

PREFIX = "/graph/v1.0"
MAX_BATCH = 20


class GraphEndpoint:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.concurrency = MailboxConcurrency(core.stats)  # 4 in flight per app and mailbox
        self.subscriptions = GraphSubscriptions(core)  # change notifications (webhooks)

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", PREFIX + "/{tail:.*}", self.handle),
                *self.subscriptions.admin_routes()]  # fmt: skip

    # authentication ---------------------------------------------------------------------------

    def _tenant(self, header: str) -> Tenant | GraphResponse:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return _unauthorized("Access token is empty.")
        try:
            claims = self.core.entra.verify(value, GRAPH)
        except jwt.ExpiredSignatureError:
            return _unauthorized("Lifetime validation failed, the token is expired.")
        except jwt.InvalidAudienceError:
            return _unauthorized("Invalid audience.")
        except jwt.PyJWTError as exc:
            return _unauthorized(f"Access token validation failure ({type(exc).__name__}).")
        if claims["exp"] <= time.time():
            return _unauthorized("Lifetime validation failed, the token is expired.")
        tenant = self.core.directory.tenant(str(claims.get("tid", "")))
        if tenant is None or "Calendars.ReadWrite" not in claims.get("roles", []):
            return error(403, "ErrorAccessDenied", "Access is denied. Check credentials and "
                         "try again.")  # fmt: skip
        return tenant

    # one request ------------------------------------------------------------------------------

    def dispatch(
        self, tenant: Tenant, req: GraphRequest, over: frozenset[str] = frozenset()
    ) -> GraphResponse:
        """One request; ``over``: mailboxes whose concurrency limit this request exceeds."""
        found = match(req.method, req.path)
        if found is None:
            self.core.stats.count(f"GRAPH {req.method} (unknown)", None)
            return error(400, "BadRequest", f"Resource not found for the segment '{req.path}'.")
        template, params, handler = found
        user = params[0]
        self.core.stats.count(f"GRAPH {req.method} {template}", user)
        if user.lower() in over:
            return error(429, "ApplicationThrottled", "Application is over its "
                         "MailboxConcurrency limit.", **{"Retry-After": "1"})  # fmt: skip
        faults, mbx = self.core.faults, self.core.mailbox(user)
        if mbx is None or mbx.tenant != tenant.name:
            return error(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        if faults.listed("unlicensed", mbx.address):
            return error(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, "
                         "soft-deleted, or is hosted on-premise.")  # fmt: skip
        if faults.listed("deny_mailboxes", mbx.address):
            return error(403, "ErrorAccessDenied", "Access to OData is disabled.")
        retry = str(max(1, math.ceil(faults.backoff_ms / 1000)))
        if faults.roll("server_busy_rate", tenant.name, mbx.address):
            return error(429, "ApplicationThrottled", "Application is over its "
                         "MailboxConcurrency limit.", **{"Retry-After": retry})  # fmt: skip
        if faults.roll("error_rate", tenant.name, mbx.address):
            return error(503, "ServiceUnavailable", "The service is temporarily unavailable.",
                         **{"Retry-After": retry})  # fmt: skip
        mbx.ensure()
        return handler(Ctx(self.core, mbx, req, params))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return _json(error(400, "BadRequest", "Unable to read JSON request payload."))
        if path == "/$batch" and request.method == "POST":
            self.core.stats.count("GRAPH POST /$batch", None)
        tenant = self._tenant(request.headers.get("Authorization", ""))
        if isinstance(tenant, GraphResponse):
            return _json(tenant)
        mailbox = graph_mailbox(path, body)
        if reset(self.core.faults, tenant.name, mailbox, request):
            return web.Response(status=500)  # never delivered: the connection is gone
        loads = self.concurrency.loads(request.method, path, body)
        admitted, refused = self.concurrency.admit(tenant.name, loads)
        over = frozenset(refused)
        try:  # in flight from here (the latency fault makes requests overlap)
            if self.core.faults.latency_s:
                await asyncio.sleep(self.core.faults.latency_s)
            if path == "/$batch" and request.method == "POST":
                return self._out(request.method, mailbox, self._batch(tenant, body, request, over))
            if path.split("/")[1] == "subscriptions":
                return _json(await self.subscriptions.handle(tenant, request.method, path, body))
            query = dict(request.query)
            req = GraphRequest(request.method, path, query, CIMultiDict(request.headers), body)
            return self._out(request.method, mailbox, self.dispatch(tenant, req, over))
        finally:
            self.concurrency.release(tenant.name, admitted)

    def _out(self, method: str, mailbox: str | None, resp: GraphResponse) -> web.Response:
        """The answer, damaged when the ``corrupt`` fault says so (calsync.sim.wire_faults)."""
        raw = corrupt_graph(self.core.faults, method, mailbox, resp.status, resp.body)
        if raw is None:
            return _json(resp)
        return web.Response(status=resp.status, body=raw, headers=resp.headers,
                            content_type="application/json")  # fmt: skip

    # JSON batching ----------------------------------------------------------------------------

    def _batch(
        self, tenant: Tenant, body: Any, request: web.Request, over: frozenset[str] = frozenset()
    ) -> GraphResponse:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return error(400, "BadRequest", "Invalid batch payload format.")
        if len(requests) > MAX_BATCH:
            return error(400, "BadRequest", "Number of batch request steps exceeds the maximum "
                         f"of {MAX_BATCH}.")  # fmt: skip
        out = []
        for sub in requests:
            url = urllib.parse.urlsplit(str(sub.get("url", "")))
            headers = CIMultiDict({str(k): str(v) for k, v in (sub.get("headers") or {}).items()})
            for prefer in request.headers.getall("Prefer", []):
                headers.add("Prefer", prefer)
            req = GraphRequest(
                str(sub.get("method", "GET")).upper(),
                "/" + urllib.parse.unquote(url.path).lstrip("/"),
                dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
                headers,
                sub.get("body"),
            )
            resp = self.dispatch(tenant, req, over)
            out.append({"id": sub.get("id"), "status": resp.status,
                        "headers": resp.headers, "body": resp.body})  # fmt: skip
        return GraphResponse(200, {"responses": out})


def _unauthorized(message: str) -> GraphResponse:
    return error(401, "InvalidAuthenticationToken", message,
                 **{"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})  # fmt: skip


def _json(resp: GraphResponse) -> web.Response:
    if resp.body is None:
        return web.Response(status=resp.status, headers=resp.headers)
    return web.json_response(resp.body, status=resp.status, headers=resp.headers)
