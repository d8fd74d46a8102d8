"""The admin JSON API under /_sim/ (loopback): mailboxes, events, stats, faults, secrets."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web

from calsync.sim.adminjson import AdminInputError, deleted_starts, item_json, patch_from_json
from calsync.sim.ews.ops_write import apply_patch
from calsync.sim.ews.xml import EwsError
from calsync.sim.faults import FaultError
from calsync.sim.mailstore import Item, Mailbox, new_item_id, occurrence_id

if TYPE_CHECKING:
    from calsync.sim.core import SimCore


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


class AdminApi:
    def __init__(self, core: SimCore, info: dict[str, Any]) -> None:
        self.core = core
        self.info = info

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sim/info", self.get_info),
            web.get("/_sim/mailboxes", self.list_mailboxes),
            web.get("/_sim/mailboxes/{address}/events", self.list_events),
            web.post("/_sim/mailboxes/{address}/events", self.create_event),
            web.get("/_sim/mailboxes/{address}/events/{item_id:.+}", self.get_event),
            web.patch("/_sim/mailboxes/{address}/events/{item_id:.+}", self.patch_event),
            web.delete("/_sim/mailboxes/{address}/events/{item_id:.+}", self.delete_event),
            web.get("/_sim/stats", self.get_stats),
            web.post("/_sim/stats/reset", self.reset_stats),
            web.get("/_sim/faults", self.get_faults),
            web.post("/_sim/faults", self.set_faults),
            web.delete("/_sim/faults", self.clear_faults),
            web.post("/_sim/tenants/{name}/secrets", self.add_secret),
            web.get("/autodiscover/autodiscover.json/v1.0/{address}", self.autodiscover),
        ]

    async def get_info(self, request: web.Request) -> web.Response:
        return web.json_response(self.info)

    async def list_mailboxes(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {"address": m.address, "tenant": m.tenant, "events": m.event_count()}
                for m in self.core.mailboxes.values()
            ]
        )

    def _mailbox(self, request: web.Request) -> Mailbox:
        mbx = self.core.mailbox(urllib.parse.unquote(request.match_info["address"]))
        if mbx is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": "no such mailbox"}), content_type="application/json"
            )
        return mbx

    @staticmethod
    def _item_id(request: web.Request) -> str:
        raw = request.raw_path.split("?", 1)[0].split("/events/", 1)[1]
        return urllib.parse.unquote(raw)

    def _item(self, request: web.Request, mbx: Mailbox) -> Item:
        item = mbx.get(self._item_id(request))
        if item is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": "no such event"}), content_type="application/json"
            )
        return item

    async def list_events(self, request: web.Request) -> web.Response:
        mbx = self._mailbox(request)
        items = sorted(mbx.items.values(), key=lambda i: i.created)
        out = [item_json(i, mbx) for i in items]
        out += [item_json(x, mbx) for x in sorted(mbx.exceptions.values(), key=lambda i: i.start)]
        return web.json_response(out)

    async def get_event(self, request: web.Request) -> web.Response:
        mbx = self._mailbox(request)
        return web.json_response(item_json(self._item(request, mbx), mbx))

    async def create_event(self, request: web.Request) -> web.Response:
        mbx = self._mailbox(request)
        data = await request.json()
        try:
            if data.get("series_item_id"):
                item = self._create_exception(mbx, data)
            else:
                patch = patch_from_json(data, None)
                if "start" not in patch or "end" not in patch:
                    raise AdminInputError("start and end are required")
                item = Item(
                    item_id=new_item_id(mbx.address), start=patch["start"], end=patch["end"]
                )
                item.organizer = (str(data.get("organizer") or mbx.address), mbx.display_name)
                apply_patch(item, patch)
                for original in deleted_starts(data):
                    item.deleted.append(original)
                mbx.add(item)
        except (AdminInputError, EwsError, KeyError, TypeError) as exc:
            return _bad(str(exc))
        return web.json_response(
            {"item_id": item.item_id, "change_key": item.change_key}, status=201
        )

    def _create_exception(self, mbx: Mailbox, data: dict[str, Any]) -> Item:
        master = mbx.items.get(str(data["series_item_id"]))
        if master is None or master.recurrence is None:
            raise AdminInputError("series_item_id: no such recurring series")
        original = dt.datetime.fromisoformat(str(data["original_start"])).astimezone(dt.UTC)
        if original not in master.occurrence_starts() or original in master.deleted:
            raise AdminInputError("original_start: not an occurrence of the series")
        existing = master.exceptions.get(original)
        if existing is not None:
            apply_patch(existing, patch_from_json(data, existing))
            mbx.touch(existing)
            return existing
        length = master.end - master.start
        index = master.occurrence_starts().index(original) + 1
        exc = Item(
            item_id=occurrence_id(master, index), start=original, end=original + length,
            uid=master.uid, subject=master.subject, body=master.body, location=master.location,
            start_tz=master.start_tz, end_tz=master.end_tz, is_all_day=master.is_all_day,
            show_as=master.show_as, sensitivity=master.sensitivity,
            categories=list(master.categories), organizer=master.organizer,
            attendees=list(master.attendees), reminder_minutes=master.reminder_minutes,
            reminder_set=master.reminder_set, original_start=original,
        )  # fmt: skip
        apply_patch(exc, patch_from_json(data, exc))
        return mbx.add_exception(master, exc)

    async def patch_event(self, request: web.Request) -> web.Response:
        mbx = self._mailbox(request)
        item = self._item(request, mbx)
        data = await request.json()
        try:
            patch = patch_from_json(data, item)
            if "recurrence" in data and not data["recurrence"] and item.recurrence is not None:
                for exc in item.exceptions.values():
                    mbx.exceptions.pop(exc.item_id, None)
                item.recurrence, item.exceptions, item.deleted = None, {}, []
            apply_patch(item, patch)
            new_deleted = [d for d in deleted_starts(data) if d not in item.deleted]
        except (AdminInputError, EwsError, KeyError, TypeError) as exc:
            return _bad(str(exc))
        if patch or not new_deleted:
            mbx.touch(item)
        for original in new_deleted:
            mbx.delete_occurrence(item, original)
        return web.json_response({"item_id": item.item_id, "change_key": item.change_key})

    async def delete_event(self, request: web.Request) -> web.Response:
        mbx = self._mailbox(request)
        item = self._item(request, mbx)
        mbx.delete(item.item_id)
        return web.Response(status=204)

    async def get_stats(self, request: web.Request) -> web.Response:
        hub = self.core.hub
        return web.json_response(self.core.stats.to_json(len(hub.connections), hub.live()))

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.core.stats.reset()
        hub = self.core.hub
        self.core.stats.max_subscriptions_on_one_connection = max(
            (len(c.subs) for c in hub.connections), default=0
        )
        return web.json_response(self.core.stats.to_json(len(hub.connections), hub.live()))

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.core.faults.snapshot())

    async def set_faults(self, request: web.Request) -> web.Response:
        data = await request.json()
        if not isinstance(data, dict):
            return _bad("a JSON object is expected")
        once = {k: data.pop(k) for k in ("invalidate_sync_state", "drop_streams") if k in data}
        try:
            active = self.core.faults.merge(data)
        except (FaultError, ValueError, TypeError) as exc:
            return _bad(str(exc))
        for address in once.get("invalidate_sync_state") or []:
            mbx = self.core.mailbox(str(address))
            if mbx is not None:
                mbx.generation += 1
        if once.get("drop_streams"):
            self.core.hub.drop_all()
        return web.json_response(active)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.core.faults.clear()
        return web.json_response({})

    async def add_secret(self, request: web.Request) -> web.Response:
        tenant = self.core.directory.tenant(request.match_info["name"])
        if tenant is None:
            return _bad("no such tenant", 404)
        data = await request.json() if request.can_read_body else {}
        try:
            expires = (
                dt.datetime.fromisoformat(str(data.get("expires")))
                if data.get("expires")
                else dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
            )
        except ValueError as exc:
            return _bad(f"expires: {exc}")
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        secret = tenant.add_secret(expires)
        return web.json_response(
            {"client_secret": secret.value, "expires": expires.isoformat()}, status=201
        )

    async def autodiscover(self, request: web.Request) -> web.Response:
        address = request.match_info["address"]
        if self.core.mailbox(address) is None:
            return web.json_response(
                {"ErrorCode": "UserNotFound", "ErrorMessage": "The user was not found."},
                status=404,
            )
        return web.json_response(
            {"Protocol": "EWS", "Url": f"{self.core.base_url}/EWS/Exchange.asmx"}
        )
