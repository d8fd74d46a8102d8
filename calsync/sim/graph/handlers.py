"""The Graph calendar operations: events CRUD, instances, calendarView and its delta."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from calsync.sim.ews.ops_write import apply_patch
from calsync.sim.ews.xml import EwsError
from calsync.sim.graph.delta import Token, TokenGone, delta_page, initial_token, view
from calsync.sim.graph.ids import ews_id, parse_any_filter, parse_expand, parse_instant, prop_key
from calsync.sim.graph.parse import GraphInputError, patch_from_graph
from calsync.sim.graph.render import Instance, event_json, in_window, instances, master_instance
from calsync.sim.mailstore import Item, Mailbox, new_item_id, parse_occurrence_id

if TYPE_CHECKING:
    from calsync.sim.core import SimCore


@dataclass
class GraphRequest:
    method: str
    path: str  # below /graph/v1.0, decoded segments
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: Any = None

    def prefer(self, name: str) -> str | None:
        for value in ",".join(self.headers.getall("Prefer", [])).split(","):
            key, _, val = value.strip().partition("=")
            if key.strip().lower() == name.lower():
                return val.strip().strip('"')
        return None


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    core: SimCore
    mbx: Mailbox
    req: GraphRequest
    params: list[str]

    def link(self, path: str, **query: str) -> str:
        base = f"{self.core.base_url}/graph/v1.0{path}"
        return base + ("?" + urllib.parse.urlencode(query, safe="$") if query else "")

    @property
    def text_body(self) -> bool:
        return (self.req.prefer("outlook.body-content-type") or "").lower() == "text"


def error(status: int, code: str, message: str, **headers: str) -> GraphResponse:
    body = {"error": {"code": code, "message": message,
                      "innerError": {"date": dt.datetime.now(dt.UTC).isoformat()}}}  # fmt: skip
    return GraphResponse(status, body, dict(headers))


def _not_found() -> GraphResponse:
    return error(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def resolve(mbx: Mailbox, event_id: str) -> Instance | None:
    raw = ews_id(event_id)
    if raw is None:
        return None
    item = mbx.get(raw)
    if item is not None:
        if item.master_id is not None:
            return Instance(item, "exception", item.start, item.end, event_id, item.original_start)
        return master_instance(item)
    parsed = parse_occurrence_id(raw)
    if parsed is None or parsed[0] not in mbx.items:
        return None
    master = mbx.items[parsed[0]]
    return next((i for i in instances(mbx, master) if i.event_id == event_id), None)


def _select(ctx: Ctx) -> frozenset[str] | None:
    text = ctx.req.query.get("$select")
    return frozenset(s.strip() for s in text.split(",")) if text else None


def _render(ctx: Ctx, inst: Instance, *, by_id: bool = False) -> dict[str, Any]:
    expand = parse_expand(ctx.req.query.get("$expand", ""))
    return event_json(ctx.mbx, inst, select=_select(ctx), expand=expand,
                      text_body=ctx.text_body, by_id=by_id)  # fmt: skip


def _page(ctx: Ctx, rows: list[Instance], default_top: int) -> GraphResponse:
    q = ctx.req.query
    try:
        top, skip = int(q.get("$top", default_top)), int(q.get("$skip", 0))
    except ValueError:
        return error(400, "ErrorInvalidParameter", "$top and $skip must be numbers")
    chunk = rows[skip : skip + top]
    body: dict[str, Any] = {"value": [_render(ctx, inst) for inst in chunk]}
    if skip + top < len(rows):
        body["@odata.nextLink"] = ctx.link(ctx.req.path, **{**q, "$skip": str(skip + top)})
    return GraphResponse(200, body)


def list_events(ctx: Ctx) -> GraphResponse:
    items = sorted(ctx.mbx.items.values(), key=lambda i: (i.created, i.item_id))
    flt = ctx.req.query.get("$filter")
    if flt:
        wanted = parse_any_filter(flt)
        key = prop_key(wanted[0]) if wanted else None
        if wanted is None or key is None:
            return error(400, "ErrorInvalidUrlQueryFilter", "The $filter is not supported")
        value = wanted[1].lower()
        items = [i for i in items if (i.extended.get(key) or "\0").lower() == value]
    return _page(ctx, [master_instance(i) for i in items], 10)


def _window(ctx: Ctx) -> tuple[dt.datetime, dt.datetime] | GraphResponse:
    q = ctx.req.query
    if "startDateTime" not in q or "endDateTime" not in q:
        return error(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        lo, hi = parse_instant(q["startDateTime"]), parse_instant(q["endDateTime"])
    except ValueError:
        return error(400, "ErrorInvalidParameter", "The value of StartDateTime is invalid.")
    if (hi - lo).days > 1825:
        return error(400, "ErrorInvalidRequest", "The range between the start and end dates is "
                     "greater than the allowed range. Maximum number of days: 1825")  # fmt: skip
    return lo, hi


def calendar_view(ctx: Ctx) -> GraphResponse:
    window = _window(ctx)
    if isinstance(window, GraphResponse):
        return window
    return _page(ctx, view(ctx.mbx, *window), 10)


def event_instances(ctx: Ctx) -> GraphResponse:
    inst = resolve(ctx.mbx, ctx.params[1])
    if inst is None or inst.kind != "seriesMaster":
        return _not_found()
    window = _window(ctx)
    if isinstance(window, GraphResponse):
        return window
    rows = [i for i in instances(ctx.mbx, inst.item) if in_window(i, *window)]
    return _page(ctx, rows, 100)


def calendar_delta(ctx: Ctx) -> GraphResponse:
    q, mbx = ctx.req.query, ctx.mbx
    text = q.get("$deltatoken") or q.get("$skiptoken")
    try:
        if text:
            token = Token.decode(mbx, text)
        else:
            window = _window(ctx)
            if isinstance(window, GraphResponse):
                return window
            token = initial_token(mbx, *window)
    except TokenGone as exc:
        return error(410, "SyncStateNotFound", f"{exc}; generation={mbx.generation}")
    except ValueError as exc:
        return error(400, "ErrorInvalidParameter", str(exc))
    size = int(ctx.req.prefer("odata.maxpagesize") or 100)
    entries, following, final = delta_page(mbx, token, max(1, size), ctx.text_body)
    body: dict[str, Any] = {"value": entries}
    if following is not None:
        body["@odata.nextLink"] = ctx.link(ctx.req.path, **{"$skiptoken": following.encode()})
    else:
        body["@odata.deltaLink"] = ctx.link(ctx.req.path, **{"$deltatoken": final.encode()})
    return GraphResponse(200, body)


def get_event(ctx: Ctx) -> GraphResponse:
    inst = resolve(ctx.mbx, ctx.params[1])
    if inst is None:
        return _not_found()
    return GraphResponse(200, _render(ctx, inst, by_id=True))


def _stale(ctx: Ctx, inst: Instance) -> GraphResponse | None:
    match = ctx.req.headers.get("If-Match")
    if not match or match.strip() == "*":
        return None
    value = re.sub(r"^W/", "", match.strip()).strip('"')
    if value != inst.item.change_key:
        return error(412, "ErrorIrresolvableConflict", "The send or update operation could not "
                     "be performed because the change key passed in the request does not match "
                     "the current change key for the item.")  # fmt: skip
    return None


def _mail_attendees(ctx: Ctx, item: Item) -> None:
    """Graph mails the attendees of an organizer's meeting on every write: count them."""
    if item.attendees and item.organizer[0].lower() == ctx.mbx.address.lower():
        ctx.core.stats.invitations_sent += len(item.attendees)
        item.meeting_request_was_sent = True


def create_event(ctx: Ctx) -> GraphResponse:
    mbx = ctx.mbx
    try:
        patch = patch_from_graph(ctx.req.body, False)
        if "start" not in patch or "end" not in patch:
            raise GraphInputError("start and end are required")
        item = Item(item_id=new_item_id(mbx.address), start=patch["start"], end=patch["end"])
        item.organizer = (mbx.address, mbx.display_name)
        _write(item, patch, ctx.req.body)
    except (GraphInputError, EwsError) as exc:
        return error(400, "ErrorInvalidRequest", str(exc))
    mbx.add(item)
    _mail_attendees(ctx, item)
    return GraphResponse(201, _render(ctx, master_instance(item)))


def _write(item: Item, patch: dict[str, Any], body: dict[str, Any]) -> None:
    recurrence = body.get("recurrence") if isinstance(body, dict) else None
    if "recurrence" in body:
        from calsync.sim.graph.parse import recurrence_from_json

        if recurrence:
            zone_start = patch.get("start", item.start)
            patch["recurrence"] = recurrence_from_json(recurrence, zone_start)
        else:
            patch["recurrence"] = None
    apply_patch(item, patch)


def _exception_of(mbx: Mailbox, inst: Instance) -> Item:
    """The exception an occurrence becomes when it is written (the occurrence's id is kept)."""
    master = inst.item
    raw = ews_id(inst.event_id)
    assert raw is not None
    assert inst.original_start is not None
    exc = dataclasses.replace(master, item_id=raw, start=inst.start, end=inst.end,
                              recurrence=None, exceptions={}, deleted=[], extended={},
                              attendees=list(master.attendees),
                              categories=list(master.categories),
                              original_start=inst.original_start)  # fmt: skip
    mbx.add_exception(master, exc)
    return exc


def patch_event(ctx: Ctx) -> GraphResponse:
    mbx = ctx.mbx
    inst = resolve(mbx, ctx.params[1])
    if inst is None:
        return _not_found()
    stale = _stale(ctx, inst)
    if stale is not None:
        return stale
    body = ctx.req.body if isinstance(ctx.req.body, dict) else {}
    if inst.kind in ("occurrence", "exception") and "recurrence" in body:
        return error(400, "ErrorInvalidRequest", "An occurrence cannot get its own recurrence.")
    try:
        patch = patch_from_graph(body, inst.item.is_all_day)
        target = _exception_of(mbx, inst) if inst.kind == "occurrence" else inst.item
        if target.recurrence is not None and "recurrence" in body and not body["recurrence"]:
            for exc in target.exceptions.values():
                mbx.exceptions.pop(exc.item_id, None)
            target.exceptions, target.deleted = {}, []
        _write(target, patch, body)
    except (GraphInputError, EwsError) as exc:
        return error(400, "ErrorInvalidRequest", str(exc))
    mbx.touch(target)
    _mail_attendees(ctx, target)
    fresh = resolve(mbx, inst.event_id)
    assert fresh is not None
    return GraphResponse(200, _render(ctx, fresh))


def delete_event(ctx: Ctx) -> GraphResponse:
    mbx = ctx.mbx
    inst = resolve(mbx, ctx.params[1])
    if inst is None:
        return _not_found()
    stale = _stale(ctx, inst)
    if stale is not None:
        return stale
    _mail_attendees(ctx, inst.item)
    if inst.kind == "occurrence":
        mbx.delete_occurrence(inst.item, inst.original_start)
    else:
        mbx.delete(inst.item.item_id)
    return GraphResponse(204)


Handler = Callable[[Ctx], GraphResponse]
_EVENTS = ("/users/{id}/events", "/users/{id}/calendar/events")
ROUTES: list[tuple[str, str, Handler]] = [
    *(("GET", t, list_events) for t in _EVENTS),
    *(("POST", t, create_event) for t in _EVENTS),
    *(("GET", t + "/{id}", get_event) for t in _EVENTS),
    *(("PATCH", t + "/{id}", patch_event) for t in _EVENTS),
    *(("DELETE", t + "/{id}", delete_event) for t in _EVENTS),
    *(("GET", t + "/{id}/instances", event_instances) for t in _EVENTS),
    ("GET", "/users/{id}/calendarView", calendar_view),
    ("GET", "/users/{id}/calendar/calendarView", calendar_view),
    ("GET", "/users/{id}/calendarView/delta", calendar_delta),
    ("GET", "/users/{id}/calendar/calendarView/delta", calendar_delta),
]
_COMPILED = [
    (m, t, re.compile("^" + re.escape(t).replace(r"\{id\}", "([^/]+)") + "$"), h)
    for m, t, h in ROUTES
]


def match(method: str, path: str) -> tuple[str, list[str], Handler] | None:
    """(route template, decoded path parameters, handler), or None."""
    for m, template, pattern, handler in _COMPILED:
        found = pattern.match(path)
        if found and m == method:
            return template, [urllib.parse.unquote(g) for g in found.groups()], handler
    return None
