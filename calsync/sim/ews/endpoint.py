"""The /EWS/Exchange.asmx endpoint: authentication, impersonation, faults and dispatch."""

from __future__ import annotations

import asyncio
import base64
import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from lxml import etree

from calsync.sim.entra import OUTLOOK
from calsync.sim.ews import ops_read, ops_write
from calsync.sim.ews.context import Ctx
from calsync.sim.ews.xml import NS_M, NS_T, EwsError, S, T, elements, error, fault, response
from calsync.sim.wire_faults import corrupt_ews

if TYPE_CHECKING:
    from calsync.sim.core import SimCore
    from calsync.sim.directory import Tenant

Handler = Callable[[Ctx, etree._Element], bytes]
XML = "text/xml; charset=utf-8"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
WWW_AUTH = (
    'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
    'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
    'token_types="app_asserted_user_v1 service_asserted_app_v1", '
    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'error="invalid_token"'
)
ITEM_OPS = {"GetFolder", "FindItem", "GetItem", "SyncFolderItems", "CreateItem", "UpdateItem",
            "DeleteItem"}  # fmt: skip


class Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EwsEndpoint:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self._tokens: dict[str, dict[str, Any]] = {}
        self.ops: dict[str, Handler] = {
            "GetFolder": ops_read.get_folder,
            "FindItem": ops_read.find_item,
            "GetItem": ops_read.get_item,
            "SyncFolderItems": ops_read.sync_folder_items,
            "CreateItem": ops_write.create_item,
            "UpdateItem": ops_write.update_item,
            "DeleteItem": ops_write.delete_item,
            "Subscribe": core.hub.subscribe,
            "Unsubscribe": core.hub.unsubscribe,
            "GetEvents": core.hub.get_events,
        }

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/EWS/Exchange.asmx", self.handle),
            web.post("/ews/exchange.asmx", self.handle),
        ]

    # authentication ---------------------------------------------------------------------------

    def _tenant_from_auth(self, header: str) -> Tenant:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            return self._basic(value)
        if scheme.lower() != "bearer" or not value:
            raise Unauthorized("The Authorization header is missing or not a bearer token")
        claims = self._tokens.get(value)
        if claims is None:
            try:
                claims = self.core.entra.verify(value, OUTLOOK)
            except jwt.ExpiredSignatureError as exc:
                raise Unauthorized("The token has expired") from exc
            except jwt.InvalidAudienceError as exc:
                raise Unauthorized("The audience claim value is invalid") from exc
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"The token is not valid ({type(exc).__name__})") from exc
            if len(self._tokens) > 10000:
                self._tokens.clear()
            self._tokens[value] = claims
        if claims["exp"] <= time.time():
            raise Unauthorized("The token has expired")
        tenant = self.core.directory.tenant(str(claims.get("tid", "")))
        if tenant is None or "full_access_as_app" not in claims.get("roles", []):
            raise Unauthorized("The token has no full_access_as_app role for this tenant")
        return tenant

    def _basic(self, value: str) -> Tenant:
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise Unauthorized("Bad basic credentials") from exc
        for tenant in self.core.directory.tenants:
            users = (tenant.service_user.lower(), f"{tenant.name}\\svc-calsync")
            if (
                tenant.onprem
                and user.lower() in users
                and hmac.compare_digest(password, tenant.service_password)
            ):
                return tenant
        raise Unauthorized("Bad basic credentials")

    # request ----------------------------------------------------------------------------------

    def _check_headers(self, request: web.Request, address: str) -> None:
        anchor = request.headers.get("X-AnchorMailbox")
        counter = self.core.stats.headers
        if not anchor:
            counter["missing_anchor"] += 1
        elif anchor.lower() != address.lower():
            counter["anchor_mismatch"] += 1
        if "X-BackEndOverrideCookie" in request.headers.get("Cookie", ""):
            counter["affinity_cookie"] += 1

    def _refuse(
        self, tenant: Tenant, address: str | None, exists: bool, *, app_only: bool
    ) -> web.Response | None:
        """The answer for a request that policy or a fault refuses (None: go ahead)."""
        faults = self.core.faults
        if faults.listed("ews_blocked", tenant.name):
            return web.Response(status=403, text="EWS is disabled for this application")
        if address is None:
            if tenant.onprem and app_only is False:
                return None  # a service account may call operations that need no mailbox
            # Exchange Online: an app-only token needs the header for every operation (so
            # exchangelib's version probe fails too: configure the version)
            return _fault(
                "ErrorInvalidExchangeImpersonationHeaderData",
                "ExchangeImpersonation SOAP header must be present for this type of OAuth token.",
            )
        if not exists:
            return _fault(
                "ErrorNonExistentMailbox",
                f"The SMTP address has no mailbox associated with it. ({address})",
            )
        if faults.listed("unlicensed", address):
            return web.Response(status=403, text="Mailbox is not licensed for EWS")
        if faults.listed("deny_mailboxes", address):
            if faults.active.get("deny_mode") == "http403":
                return web.Response(status=403)
            return _fault("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        if faults.roll("server_busy_rate", tenant.name, address):
            err = EwsError(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
                back_off_ms=faults.backoff_ms,
            )
            return web.Response(status=500, body=fault(err), content_type="text/xml")
        if faults.roll("error_rate", tenant.name, address):
            if faults.rng.random() < 0.5:
                return web.Response(status=503, text="Service Unavailable")
            return _fault("ErrorInternalServerError", "An internal server error occurred.")
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        core = self.core
        raw = await request.read()
        try:
            root = etree.fromstring(raw, _PARSER)
            body = root.find(S + "Body")
            children = elements(body)
            req = children[0] if children else None
        except etree.XMLSyntaxError:
            req = None
        if req is None:
            core.stats.count("Invalid", None)
            err = EwsError("ErrorSchemaValidation", "The request failed schema validation.")
            return web.Response(status=500, body=fault(err), content_type="text/xml")
        op = etree.QName(req).localname
        header = root.find(S + "Header")
        address = _impersonated(header)
        core.stats.count(op, address)
        if address and op in ITEM_OPS:
            self._check_headers(request, address)
        faults = core.faults
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        try:
            tenant = self._tenant_from_auth(request.headers.get("Authorization", ""))
        except Unauthorized as exc:
            return web.Response(
                status=401,
                headers={
                    "WWW-Authenticate": WWW_AUTH,
                    "x-ms-diagnostics": (
                        f'2000003;reason="{exc.reason}";error_category="invalid_token"'
                    ),
                },
            )
        if faults.roll("reset_rate", tenant.name, address):
            if request.transport is not None:
                request.transport.abort()  # the client sees its connection reset
            return web.Response(status=500)  # never delivered
        mailbox = core.mailboxes.get(address.lower()) if address else None
        exists = mailbox is not None and mailbox.tenant == tenant.name
        app_only = not request.headers.get("Authorization", "").lower().startswith("basic ")
        refused = self._refuse(tenant, address, exists, app_only=app_only)
        if refused is not None:
            return refused
        if mailbox is None:
            return _unknown(op)
        mailbox.ensure()  # before a subscription can see the seeded calendar being generated
        ctx = Ctx(core=core, tenant=tenant, mailbox=mailbox)
        if op == "GetStreamingEvents":
            return await core.hub.get_streaming_events(ctx, req, request)
        handler = self.ops.get(op)
        if handler is None:
            return _unknown(op)
        out = corrupt_ews(faults, address, op, handler(ctx, req))
        return web.Response(body=out, headers={"Content-Type": XML, **ctx.response_headers})


def _impersonated(header: etree._Element | None) -> str | None:
    if header is None:
        return None
    imp = header.find(T + "ExchangeImpersonation")
    if imp is None:
        return None
    for tag in ("PrimarySmtpAddress", "SmtpAddress", "PrincipalName"):
        node = imp.find(f"{T}ConnectingSID/{T}{tag}")
        if node is not None and node.text:
            return node.text.strip()
    return None


def _fault(code: str, text: str) -> web.Response:
    return web.Response(status=500, body=fault(EwsError(code, text)), headers={"Content-Type": XML})


def _unknown(op: str) -> web.Response:
    """Unknown operations: ErrorInvalidOperation (never a version error: exchangelib would retry
    the request with every API version it knows)."""
    err = EwsError("ErrorInvalidOperation", f"The operation {op} is not supported here.")
    body = response(op, [error(op, err)])
    return web.Response(body=body, headers={"Content-Type": XML})


__all__ = ["NS_M", "NS_T", "EwsEndpoint"]
