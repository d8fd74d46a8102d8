"""Faults on the wire: connection resets for Graph, and corrupted responses for EWS and Graph.

``corrupt`` (a fault key of ``POST /_sim/faults``) damages the responses of item operations
(EWS SyncFolderItems/GetItem, Graph calendar GETs and ``$batch``) for the listed mailboxes::

    {"corrupt": {"mode": "unknown_enum", "mailboxes": ["user001@…"], "match": "Dentist"}}

Whole-response modes (every item response for the mailbox):
- ``malformed``: EWS answers XML whose elements are broken, Graph a body that is not JSON;
- ``truncated``: the body is cut in half (a dropped connection after the headers).
Item modes (only items whose subject contains ``match``; every item when ``match`` is absent):
- ``unknown_enum``: free/busy and sensitivity carry values no schema knows;
- ``missing_fields``: the item has no start and no end;
- ``odd_timezone``: the item's time zone is an id no table knows (``Customized Time Zone``, as
  Outlook writes for an imported iCalendar invitation; Graph: ``tzone://Microsoft/Custom``).
Like the other held faults, ``corrupt`` stays until changed or cleared (``DELETE /_sim/faults``).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web
from lxml import etree

if TYPE_CHECKING:
    from calsync.sim.faults import Faults

WHOLE = ("malformed", "truncated")
ITEM = ("unknown_enum", "missing_fields", "odd_timezone")
MODES = (*WHOLE, *ITEM)
EWS_OPS = frozenset({"SyncFolderItems", "GetItem"})
_T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def check(spec: Any) -> None:
    """Raise ValueError when a ``corrupt`` value is malformed."""
    if spec is None:
        return
    if not isinstance(spec, dict) or spec.get("mode") not in MODES:
        raise ValueError(f"corrupt must be an object with mode one of {list(MODES)}")
    if not isinstance(spec.get("mailboxes"), list) or not spec["mailboxes"]:
        raise ValueError("corrupt.mailboxes must be a non-empty list")
    if "match" in spec and not isinstance(spec["match"], str):
        raise ValueError("corrupt.match must be a string")


def _spec(faults: Faults, mailbox: str | None) -> dict[str, Any] | None:
    spec = faults.active.get("corrupt")
    if not spec or mailbox is None:
        return None
    if mailbox.lower() not in (str(m).lower() for m in spec["mailboxes"]):
        return None
    return dict(spec)


def _wanted(spec: dict[str, Any], subject: str | None) -> bool:
    match = spec.get("match")
    return match is None or match in (subject or "")


# EWS --------------------------------------------------------------------------------------------


def corrupt_ews(faults: Faults, mailbox: str | None, op: str, body: bytes) -> bytes:
    """The SOAP response ``body`` of ``op`` for ``mailbox``, damaged as the fault says."""
    spec = _spec(faults, mailbox) if op in EWS_OPS else None
    if spec is None:
        return body
    mode = spec["mode"]
    if mode == "truncated":
        return body[: len(body) // 2]
    if mode == "malformed":  # no element survives past the envelope, even for a recovering parser
        return body[:120] + body[120:].replace(b"<", b"{")
    root = etree.fromstring(body, _PARSER)
    for item in root.iter(_T + "CalendarItem"):
        if _wanted(spec, item.findtext(_T + "Subject")):
            _damage_ews_item(item, mode)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def _damage_ews_item(item: etree._Element, mode: str) -> None:
    if mode == "unknown_enum":
        for tag, value in (("LegacyFreeBusyStatus", "Quantum"), ("Sensitivity", "TopSecret")):
            node = item.find(_T + tag)
            if node is None:
                node = etree.SubElement(item, _T + tag)
            node.text = value
    elif mode == "missing_fields":
        for tag in ("Start", "End"):
            for node in item.findall(_T + tag):
                item.remove(node)
    elif mode == "odd_timezone":
        for tag in ("StartTimeZone", "EndTimeZone"):
            node = item.find(_T + tag)
            if node is not None:
                node.set("Id", "Customized Time Zone")
                node.set("Name", "Customized Time Zone")
        for tag in ("StartTimeZoneId", "EndTimeZoneId"):
            node = item.find(_T + tag)
            if node is not None:
                node.text = "Customized Time Zone"


# Graph ------------------------------------------------------------------------------------------


def graph_mailbox(path: str, body: Any) -> str | None:
    """The mailbox a Graph request is about (for ``$batch``: its first sub-request's)."""
    if path == "/$batch":
        subs = body.get("requests") if isinstance(body, dict) else None
        if not subs:
            return None
        path = "/" + urllib.parse.unquote(urllib.parse.urlsplit(str(subs[0].get("url"))).path)
        path = "/" + path.lstrip("/")
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "users":
        return urllib.parse.unquote(parts[2])
    return None


def reset(faults: Faults, tenant: str, mailbox: str | None, request: web.Request) -> bool:
    """``reset_rate`` for Graph: abort the connection (True: the caller answers nothing)."""
    if not faults.roll("reset_rate", tenant, mailbox):
        return False
    if request.transport is not None:
        request.transport.abort()
    return True


def corrupt_graph(
    faults: Faults, method: str, mailbox: str | None, status: int, payload: Any
) -> bytes | None:
    """Damage the JSON ``payload``'s items in place, or return the raw bytes to send instead
    (whole-response modes). Only successful GETs and ``$batch`` answers are touched."""
    spec = _spec(faults, mailbox) if method in ("GET", "POST") and status == 200 else None
    if spec is None or not isinstance(payload, dict):
        return None
    mode = spec["mode"]
    if mode in WHOLE:
        text = json.dumps(payload).encode()
        if mode == "truncated":
            return text[: len(text) // 2]
        return b'{"value": [' + text[1:] + b"<html>"
    for event in _graph_events(payload):
        if _wanted(spec, event.get("subject")):
            _damage_graph_event(event, mode)
    return None


def _graph_events(payload: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if "responses" in payload:  # $batch
        for sub in payload["responses"]:
            if isinstance(sub.get("body"), dict):
                found += _graph_events(sub["body"])
        return found
    if isinstance(payload.get("value"), list):
        found += [e for e in payload["value"] if isinstance(e, dict)]
    elif "subject" in payload:
        found.append(payload)
    return found


def _damage_graph_event(event: dict[str, Any], mode: str) -> None:
    if mode == "unknown_enum":
        event["showAs"] = "quantum"
        event["sensitivity"] = "topSecret"
    elif mode == "missing_fields":
        event.pop("start", None)
        event.pop("end", None)
    elif mode == "odd_timezone":
        for key in ("start", "end"):
            if isinstance(event.get(key), dict):
                event[key]["timeZone"] = "tzone://Microsoft/Custom"
        event["originalStartTimeZone"] = "tzone://Microsoft/Custom"
        event["originalEndTimeZone"] = "tzone://Microsoft/Custom"
