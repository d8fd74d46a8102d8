"""Writing a series' exceptions over Graph: cancelled and modified occurrences.

After the master is written, its instances around the exceptions' original starts are listed
(``/instances``, original starts compared to the minute, as Exchange keys occurrences), then
each deleted occurrence is DELETEd and each modified one PATCHed, 20 per ``$batch``. Graph cannot
restore a cancelled occurrence nor reset an exception to the pattern: those are logged.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog

from calsync.errors import ItemError
from calsync.graph.client import GraphClient, SubRequest
from calsync.graph.mapping import data_to_event
from calsync.model import EventData, ItemRef

log = structlog.get_logger("calsync.graph")


def has_exceptions(data: EventData) -> bool:
    return bool(data.recurrence and (data.deleted_occurrences or data.modified_occurrences))


def _minute(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def _instances(
    client: GraphClient, address: str, base: str, ref: ItemRef, window: tuple[datetime, datetime]
) -> dict[datetime, dict[str, Any]]:
    lo, hi = window
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    url: str | None = (
        f"{base}/events/{quote(ref.item_id, safe='')}/instances?startDateTime={lo.strftime(fmt)}"
        f"&endDateTime={hi.strftime(fmt)}&$select=id,type,originalStart&$top=500"
    )
    out: dict[datetime, dict[str, Any]] = {}
    while url:
        _, body = client.call(address, "GET", url, item=ref.item_id)
        for inst in (body or {}).get("value") or []:
            if inst.get("originalStart"):
                original = datetime.fromisoformat(
                    str(inst["originalStart"]).replace("Z", "+00:00")[:25]
                )
                out[_minute(original)] = inst
        url = (body or {}).get("@odata.nextLink")
    return out


def write_exceptions(
    client: GraphClient, address: str, base: str, ref: ItemRef, data: EventData
) -> ItemRef:
    """Make the master ``ref``'s exceptions those of ``data``; returns the master's new ref."""
    originals = [*data.deleted_occurrences, *(m.original_start for m in data.modified_occurrences)]
    lo, hi = min(originals) - timedelta(days=2), max(originals) + timedelta(days=2)
    found = _instances(client, address, base, ref, (lo, hi))
    requests: list[SubRequest] = []
    for original in data.deleted_occurrences:
        inst = found.get(_minute(original))
        if inst is None:
            continue  # cancelled already
        requests.append(SubRequest("DELETE", f"{base}/events/{quote(str(inst['id']), safe='')}"))
    for modified in data.modified_occurrences:
        inst = found.get(_minute(modified.original_start))
        if inst is None:
            raise ItemError(
                f"occurrence {modified.original_start:%Y-%m-%dT%H:%M:%SZ} is not in the series",
                item=ref.item_id,
                error_code="bad_item",
            )
        plain = replace(
            modified.data, recurrence=None, deleted_occurrences=(), modified_occurrences=()
        )
        body = data_to_event(plain, with_recurrence=False)
        requests.append(
            SubRequest("PATCH", f"{base}/events/{quote(str(inst['id']), safe='')}", body)
        )
    for answer in client.batch(address, requests):
        if answer.status not in (200, 204, 404):
            raise client.error_of(address, answer, ref.item_id)
    url = f"{base}/events/{quote(ref.item_id, safe='')}?$select=changeKey"
    _, master = client.call(address, "GET", url, item=ref.item_id)
    return ItemRef(ref.item_id, str(master["changeKey"]))
