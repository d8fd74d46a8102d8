"""The ``corrupt`` fault and Graph connection resets (calsync.sim.wire_faults), unit by unit."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from calsync.sim.faults import FaultError, Faults
from calsync.sim.wire_faults import corrupt_ews, corrupt_graph, graph_mailbox

T = "http://schemas.microsoft.com/exchange/services/2006/types"
BODY = (
    '<?xml version="1.0" encoding="utf-8"?><s:Envelope '
    'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    f'xmlns:t="{T}"><s:Body><m:GetItemResponse><m:ResponseMessages><m:GetItemResponseMessage '
    'ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items>'
    "<t:CalendarItem><t:Subject>poison pill</t:Subject><t:Start>2026-12-01T10:00:00Z</t:Start>"
    "<t:End>2026-12-01T11:00:00Z</t:End><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>"
    '<t:StartTimeZone Id="UTC"/></t:CalendarItem>'
    "<t:CalendarItem><t:Subject>fine</t:Subject><t:Start>2026-12-02T10:00:00Z</t:Start>"
    "<t:End>2026-12-02T11:00:00Z</t:End></t:CalendarItem>"
    "</m:Items></m:GetItemResponseMessage></m:ResponseMessages></m:GetItemResponse></s:Body>"
    "</s:Envelope>"
).encode()
MAILBOX = "user001@contoso.example"


def faults(mode: str, **extra: object) -> Faults:
    f = Faults()
    f.merge({"corrupt": {"mode": mode, "mailboxes": [MAILBOX], **extra}})
    return f


@pytest.mark.parametrize(
    "spec",
    [{"mode": "bogus", "mailboxes": [MAILBOX]}, {"mode": "truncated"}, "truncated",
     {"mode": "truncated", "mailboxes": [MAILBOX], "match": 3}],
)  # fmt: skip
def test_a_bad_corrupt_spec_is_refused(spec: object) -> None:
    with pytest.raises(FaultError):
        Faults().merge({"corrupt": spec})


def items(body: bytes) -> dict[str, etree._Element]:
    root = etree.fromstring(body)
    return {i.findtext(f"{{{T}}}Subject"): i for i in root.iter(f"{{{T}}}CalendarItem")}


def test_item_modes_damage_only_the_matching_item_of_the_listed_mailbox() -> None:
    missing = corrupt_ews(faults("missing_fields", match="poison"), MAILBOX, "GetItem", BODY)
    found = items(missing)
    assert found["poison pill"].find(f"{{{T}}}Start") is None
    assert found["fine"].find(f"{{{T}}}Start") is not None
    enum = items(corrupt_ews(faults("unknown_enum"), MAILBOX, "GetItem", BODY))
    assert enum["fine"].findtext(f"{{{T}}}LegacyFreeBusyStatus") == "Quantum"
    zone = items(corrupt_ews(faults("odd_timezone"), MAILBOX, "GetItem", BODY))
    assert zone["poison pill"].find(f"{{{T}}}StartTimeZone").get("Id") == "Customized Time Zone"
    assert corrupt_ews(faults("missing_fields"), "other@x", "GetItem", BODY) == BODY
    assert corrupt_ews(faults("missing_fields"), MAILBOX, "CreateItem", BODY) == BODY


def test_whole_response_modes_break_the_document() -> None:
    for mode in ("malformed", "truncated"):
        damaged = corrupt_ews(faults(mode), MAILBOX, "SyncFolderItems", BODY)
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(damaged)
        raw = corrupt_graph(faults(mode), "GET", MAILBOX, 200, {"value": [{"subject": "a"}]})
        assert raw is not None
        with pytest.raises(ValueError):
            json.loads(raw)
    assert corrupt_graph(faults("truncated"), "GET", MAILBOX, 404, {"error": {}}) is None


def test_graph_item_modes_and_mailbox_of_a_request() -> None:
    payload = {"responses": [{"id": "1", "status": 200, "body": {
        "subject": "poison", "start": {"dateTime": "x", "timeZone": "UTC"}, "showAs": "busy"}}]}  # fmt: skip
    assert corrupt_graph(faults("unknown_enum"), "POST", MAILBOX, 200, payload) is None
    assert payload["responses"][0]["body"]["showAs"] == "quantum"
    corrupt_graph(faults("missing_fields"), "POST", MAILBOX, 200, payload)
    assert "start" not in payload["responses"][0]["body"]
    assert graph_mailbox("/users/a%40b.example/calendarView/delta", None) == "a@b.example"
    batch = {"requests": [{"url": "/users/c%40d.example/events/1", "method": "GET"}]}
    assert graph_mailbox("/$batch", batch) == "c@d.example"
    assert graph_mailbox("/subscriptions", None) is None
