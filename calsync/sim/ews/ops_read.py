"""GetFolder, FindItem, GetItem and SyncFolderItems."""

from __future__ import annotations

from lxml import etree

from calsync.sim.ews import expand
from calsync.sim.ews.context import Ctx
from calsync.sim.ews.parse import parse_shape, text
from calsync.sim.ews.render import Shape, render_item
from calsync.sim.ews.xml import EwsError, M, T, elements, error, ok, response
from calsync.sim.mailstore import Item, SyncStateError

MAX_SYNC_CHANGES = 512


def get_folder(ctx: Ctx, req: etree._Element) -> bytes:
    ids = req.find(M + "FolderIds")
    messages: list[str] = []
    mbx = ctx.mailbox
    for child in elements(ids):
        try:
            which = ctx.folder_ref(child)
        except EwsError as err:
            messages.append(error("GetFolder", err))
            continue
        if which == "root":
            folder = (
                f'<t:Folder><t:FolderId Id="{mbx.root_id}" ChangeKey="{mbx.folder_ck}"/>'
                "<t:DisplayName>Top of Information Store</t:DisplayName>"
                "<t:TotalCount>0</t:TotalCount><t:ChildFolderCount>1</t:ChildFolderCount>"
                "<t:UnreadCount>0</t:UnreadCount></t:Folder>"
            )
        else:
            folder = (
                "<t:CalendarFolder>"
                f'<t:FolderId Id="{mbx.calendar_id}" ChangeKey="{mbx.folder_ck}"/>'
                f'<t:ParentFolderId Id="{mbx.root_id}" ChangeKey="{mbx.folder_ck}"/>'
                "<t:FolderClass>IPF.Appointment</t:FolderClass>"
                "<t:DisplayName>Calendar</t:DisplayName>"
                f"<t:TotalCount>{len(mbx.items)}</t:TotalCount>"
                "<t:ChildFolderCount>0</t:ChildFolderCount></t:CalendarFolder>"
            )
        messages.append(ok("GetFolder", f"<m:Folders>{folder}</m:Folders>"))
    return response("GetFolder", messages)


def find_item(ctx: Ctx, req: etree._Element) -> bytes:
    try:
        if ctx.folder(req.find(M + "ParentFolderIds")) != "calendar":
            return response("FindItem", [ok("FindItem", _root_folder([], 0, 0, True))])
        shape = parse_shape(req.find(M + "ItemShape"))
        if "item:Body" in shape.fields:
            raise EwsError(
                "ErrorInvalidPropertyRequest",
                "The property Body can't be used in FindItem requests.",
            )
        restriction = expand.restriction_root(req)
        view = req.find(M + "CalendarView")
        if view is not None:
            start, end, limit = expand.view_bounds(view)
            pairs = expand.calendar_view(ctx.mailbox, start, end)
            if restriction is not None:
                pairs = [p for p in pairs if expand.matches(p[1], restriction)]
            shown = pairs[:limit]
            body = "".join(render_item(i, shape, ctx.mailbox, kind=k) for k, i in shown)
            inner = (
                f'<m:RootFolder TotalItemsInView="{len(pairs)}" IncludesLastItemInRange='
                f'"{"true" if len(shown) == len(pairs) else "false"}"><t:Items>{body}'
                "</t:Items></m:RootFolder>"
            )
            return response("FindItem", [ok("FindItem", inner)])
        items = sorted(ctx.mailbox.items.values(), key=lambda i: i.created)
        if restriction is not None:
            items = [i for i in items if expand.matches(i, restriction)]
        paging = req.find(M + "IndexedPageItemView")
        offset, limit = 0, 1000
        if paging is not None:
            offset = int(paging.get("Offset") or 0)
            limit = int(paging.get("MaxEntriesReturned") or 1000)
            if paging.get("BasePoint") == "End":
                offset = max(0, len(items) - offset - limit)
        page = items[offset : offset + limit]
        body = "".join(render_item(i, shape, ctx.mailbox, allow_body=False) for i in page)
        last = offset + len(page) >= len(items)
        inner = _root_folder([body], offset + len(page), len(items), last)
        return response("FindItem", [ok("FindItem", inner)])
    except EwsError as err:
        return response("FindItem", [error("FindItem", err)])


def _root_folder(bodies: list[str], next_offset: int, total: int, last: bool) -> str:
    return (
        f'<m:RootFolder IndexedPagingOffset="{next_offset}" TotalItemsInView="{total}" '
        f'IncludesLastItemInRange="{"true" if last else "false"}"><t:Items>{"".join(bodies)}'
        "</t:Items></m:RootFolder>"
    )


def lookup(ctx: Ctx, ref: etree._Element) -> tuple[Item, str | None]:
    """An item for an ItemId / OccurrenceItemId / RecurringMasterItemId (+ kind override)."""
    mbx = ctx.mailbox
    local = etree.QName(ref).localname
    if local == "ItemId":
        item_id = ref.get("Id", "")
        item = mbx.get(item_id)
        if item is not None:
            return item, None
        occ = expand.resolve_occurrence_id(mbx, item_id)
        if occ is not None:
            _, shown = expand.occurrence_at(*occ)
            return shown, "Exception" if shown.master_id else "Occurrence"
    elif local == "OccurrenceItemId":
        master = mbx.items.get(ref.get("RecurringMasterId", ""))
        if master is not None and master.recurrence is not None:
            _, shown = expand.occurrence_at(master, int(ref.get("InstanceIndex") or 0))
            return shown, "Exception" if shown.master_id else "Occurrence"
    elif local == "RecurringMasterItemId":
        item = mbx.get(ref.get("OccurrenceId", ""))
        if item is None:
            occ = expand.resolve_occurrence_id(mbx, ref.get("OccurrenceId", ""))
            item = occ[0] if occ else None
        if item is not None:
            return mbx.master_of(item), None
    raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")


def get_item(ctx: Ctx, req: etree._Element) -> bytes:
    shape = parse_shape(req.find(M + "ItemShape"))
    ids = req.find(M + "ItemIds")
    messages: list[str] = []
    for ref in elements(ids):
        try:
            item, kind = lookup(ctx, ref)
        except EwsError as err:
            messages.append(error("GetItem", err))
            continue
        body = render_item(item, shape, ctx.mailbox, kind=kind)
        messages.append(ok("GetItem", f"<m:Items>{body}</m:Items>"))
    if not messages:
        messages.append(error("GetItem", EwsError("ErrorInvalidIdEmpty", "No item ids.")))
    return response("GetItem", messages)


def _sync_error(err: EwsError) -> bytes:
    inner = "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>"
    return response("SyncFolderItems", [error("SyncFolderItems", err, inner)])


def sync_folder_items(ctx: Ctx, req: etree._Element) -> bytes:
    mbx = ctx.mailbox
    try:
        if ctx.folder(req.find(M + "SyncFolderId")) != "calendar":
            raise EwsError("ErrorSyncFolderNotFound", "The folder cannot be synchronized.")
        shape = parse_shape(req.find(M + "ItemShape"))
        max_changes = int(text(req.find(M + "MaxChangesReturned"), "512"))
        if not 1 <= max_changes <= MAX_SYNC_CHANGES:
            raise EwsError("ErrorInvalidArgument", "MaxChangesReturned must be between 1 and 512.")
        token = text(req.find(M + "SyncState")).strip()
        try:
            since = mbx.parse_sync_token(token) if token else 0
        except SyncStateError as exc:
            raise EwsError(
                "ErrorInvalidSyncStateData",
                "Synchronization state data is corrupt or otherwise invalid.",
            ) from exc
    except EwsError as err:
        return _sync_error(err)
    changes, new_seq, last = mbx.changes_since(since, max_changes)
    parts = [
        f"<m:SyncState>{mbx.sync_token(new_seq)}</m:SyncState><m:IncludesLastItemInRange>"
        f"{'true' if last else 'false'}</m:IncludesLastItemInRange><m:Changes>"
    ]
    for kind, item_id, item in changes:
        if item is None:
            ck = mbx.last_ck.get(item_id, "")
            parts.append(f'<t:Delete><t:ItemId Id="{item_id}" ChangeKey="{ck}"/></t:Delete>')
        else:
            tag = "Create" if kind == "create" else "Update"
            parts.append(f"<t:{tag}>{render_item(item, shape, mbx, allow_body=False)}</t:{tag}>")
    parts.append("</m:Changes>")
    return response("SyncFolderItems", [ok("SyncFolderItems", "".join(parts))])


__all__ = ["Shape", "T", "find_item", "get_folder", "get_item", "lookup", "sync_folder_items"]
