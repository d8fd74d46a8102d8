"""``WebhookReceiver``: the HTTP(S) endpoint Microsoft Graph posts change notifications to.

An aiohttp server on its own thread and event loop, serving one path (that of the configured
public URL; the operator's reverse proxy forwards to it, or it serves TLS itself):

* validation: a request with ``?validationToken=…`` is answered at once with ``200``,
  ``text/plain`` and the (URL-decoded) token, well within Graph's 10 s;
* notifications: a JSON ``{"value": [...]}``; each entry's ``clientState`` is compared in constant
  time with ours; entries with a wrong or missing one are dropped and logged
  (``webhook_rejected``), the others are handed to ``sink`` (which only queues them: the
  processing happens on the caller's thread) and Graph gets ``202`` at once. Graph retries a
  delivery that is not answered with 2xx within 3 s, so even a rejected batch is answered 202
  (a forged request learns nothing from it);
* lifecycle notifications arrive the same way with ``lifecycleEvent`` set.

The receiver never syncs anything itself and knows nothing of mailboxes: it maps nothing, it
only authenticates and forwards.
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger("calsync.webhooks")

MAX_BODY = 1024 * 1024  # Graph batches notifications; a megabyte is far above a real batch


@dataclass(frozen=True, slots=True)
class Notification:
    """One entry of a notification POST (a change, or a lifecycle event when
    ``lifecycle_event`` is set)."""

    subscription_id: str
    change_type: str | None = None
    resource: str | None = None
    lifecycle_event: str | None = None
    tenant_id: str | None = None


Sink = Callable[[list[Notification]], None]


class WebhookReceiver:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        path: str,
        client_state: str,
        sink: Sink,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path if path.startswith("/") else "/" + path
        self._client_state = client_state.encode()
        self._sink = sink
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self.received = 0  # notifications accepted (tests, heartbeat)
        self.rejected = 0

    # lifecycle ----------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Bind and serve; returns once it accepts connections. OSError when it cannot bind."""
        ready = threading.Event()
        box: dict[str, BaseException] = {}

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready, box))
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="calsync-webhook", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise OSError(f"the webhook listener did not start within {timeout:.0f} s")
        if "error" in box:
            self._thread.join(timeout)
            raise box["error"]

    async def _serve(self, ready: threading.Event, box: dict[str, BaseException]) -> None:
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", self.path, self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, ssl_context=self._ssl)
            await site.start()
            addresses = runner.addresses  # the bound port when 0 was asked for
            if addresses:
                self.port = int(addresses[0][1])
        except BaseException as exc:
            box["error"] = exc
            await runner.cleanup()
            ready.set()
            return
        ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self, timeout: float = 5.0) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout)

    # requests -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("validationToken")
        if token is not None:  # the handshake of a new subscription (or its lifecycle URL)
            return web.Response(status=200, text=token, content_type="text/plain")
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
        try:
            payload: Any = await request.json()
        except ValueError:
            payload = None
        values = payload.get("value") if isinstance(payload, dict) else None
        if not isinstance(values, list):
            self._reject(request, "not a notification payload", 1)
            return web.Response(status=400)
        accepted: list[Notification] = []
        wrong = 0
        for entry in values:
            found = self._check(entry)
            if found is None:
                wrong += 1
            else:
                accepted.append(found)
        if wrong:
            self._reject(request, "clientState mismatch", wrong)
        if accepted:
            self.received += len(accepted)
            self._sink(accepted)
        return web.Response(status=202)

    def _check(self, entry: Any) -> Notification | None:
        if not isinstance(entry, dict):
            return None
        state = entry.get("clientState")
        subscription = entry.get("subscriptionId")
        if not isinstance(state, str) or not isinstance(subscription, str):
            return None
        if not hmac.compare_digest(state.encode(), self._client_state):
            return None
        return Notification(
            subscription_id=subscription,
            change_type=_str(entry.get("changeType")),
            resource=_str(entry.get("resource")),
            lifecycle_event=_str(entry.get("lifecycleEvent")),
            tenant_id=_str(entry.get("tenantId")),
        )

    def _reject(self, request: web.Request, reason: str, count: int) -> None:
        self.rejected += count
        log.warning("webhook_rejected", reason=reason, count=count, remote=request.remote)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
