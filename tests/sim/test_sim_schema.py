"""A sample of the simulator's responses validated against the EWS schema subset in
calsync/sim/schema (written down from Microsoft's messages.xsd / types.xsd)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
import xmlschema
from lxml import etree
from simclients import OUTLOOK_SCOPE, msal_app

import calsync.sim
from calsync.sim import SimHandle

SCHEMA_DIR = Path(calsync.sim.__file__).parent / "schema"
NS = ('xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
      'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
      'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"')  # fmt: skip
ALL = "<m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape>"
CAL = '<t:DistinguishedFolderId Id="calendar"/>'


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA_DIR / "messages.xsd"))


@pytest.fixture(scope="module")
def token(sim: SimHandle) -> str:
    return str(msal_app(sim).acquire_token_for_client(scopes=OUTLOOK_SCOPE)["access_token"])


def soap(sim: SimHandle, token: str, address: str, op_xml: str) -> bytes:
    body = (f'<s:Envelope {NS}><s:Header><t:RequestServerVersion Version="Exchange2016"/>'
            "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>"
            f"{address}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
            f"</s:Header><s:Body>{op_xml}</s:Body></s:Envelope>")  # fmt: skip
    with requests.Session() as session:
        answer = session.post(
            sim.info["ews_url"], data=body.encode(), verify=sim.ca_file, timeout=10,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/xml"},
        )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.content


def validate(schema: xmlschema.XMLSchema, raw: bytes) -> etree._Element:
    root = etree.fromstring(raw)
    body = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    message = body[0]
    schema.validate(etree.tostring(message))
    return message


def test_sample_of_responses_is_schema_valid(sim: SimHandle, schema: Any, token: str) -> None:
    address = str(sim.tenant("contoso")["mailboxes"][2])
    events = sim.admin.events(address)
    master = sim.admin.create_event(
        address, subject="Schema series", start="2026-12-02T15:00:00-05:00",
        end="2026-12-02T16:00:00-05:00", timezone="America/New_York",
        recurrence="RRULE:FREQ=MONTHLY;BYDAY=1WE;UNTIL=20270601T200000Z",
        attendees=[{"address": "z@contoso.example", "type": "required", "response": "accepted"}],
        categories=["Blue category"], extended_properties={"calsync-id": "S-1"},
    )  # fmt: skip
    exc = sim.admin.create_event(address, series_item_id=master["item_id"],
                                 original_start="2027-01-06T20:00:00Z", subject="moved",
                                 start="2027-01-07T20:00:00Z", end="2027-01-07T21:00:00Z")  # fmt: skip
    sim.admin.patch_event(address, master["item_id"], deleted_occurrences=["2027-02-03T20:00:00Z"])
    ext = ('<t:AdditionalProperties><t:ExtendedFieldURI PropertySetId="4ca80195-c234-4a35-b00a-'
           '22be78edc0d5" PropertyName="calsync-id" PropertyType="String"/></t:AdditionalProperties>')  # fmt: skip
    samples = [
        f"<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
        f'<m:FolderIds>{CAL}<t:DistinguishedFolderId Id="root"/></m:FolderIds></m:GetFolder>',
        f"<m:SyncFolderItems>{ALL}<m:SyncFolderId>{CAL}</m:SyncFolderId>"
        "<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>",
        f"<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape>{ext}</m:ItemShape>"
        "<m:ItemIds>"
        + "".join(f'<t:ItemId Id="{e["item_id"]}"/>' for e in events[:8])
        + f'<t:ItemId Id="{master["item_id"]}"/><t:ItemId Id="{exc["item_id"]}"/>'
        f'<t:OccurrenceItemId RecurringMasterId="{master["item_id"]}" InstanceIndex="3"/>'
        '<t:ItemId Id="AAMkbogus"/></m:ItemIds></m:GetItem>',
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>Default</t:BaseShape>'
        '</m:ItemShape><m:CalendarView StartDate="2026-11-01T00:00:00Z" '
        f'EndDate="2027-12-31T00:00:00Z"/><m:ParentFolderIds>{CAL}</m:ParentFolderIds></m:FindItem>',
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="5" Offset="0" BasePoint="Beginning"/>'
        '<m:Restriction><t:IsEqualTo><t:ExtendedFieldURI PropertySetId="4ca80195-c234-4a35-b00a-'
        '22be78edc0d5" PropertyName="calsync-id" PropertyType="String"/><t:FieldURIOrConstant>'
        '<t:Constant Value="S-1"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>'
        f"<m:ParentFolderIds>{CAL}</m:ParentFolderIds></m:FindItem>",
        f"<m:SyncFolderItems>{ALL}<m:SyncFolderId>{CAL}</m:SyncFolderId>"
        "<m:SyncState>bm90IGEgc3RhdGU=</m:SyncState>"
        "<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>",
    ]  # fmt: skip
    kinds = set()
    for sample in samples:
        message = validate(schema, soap(sim, token, address, sample))
        kinds |= {etree.QName(e).localname for e in message.iter() if isinstance(e.tag, str)}
    assert {"Recurrence", "ModifiedOccurrences", "DeletedOccurrences", "ExtendedProperty",
            "RequiredAttendees", "Create", "RootFolder", "CalendarFolder"} <= kinds  # fmt: skip


def test_write_and_subscription_responses_are_schema_valid(
    sim: SimHandle, schema: Any, token: str
) -> None:
    address = str(sim.tenant("contoso")["mailboxes"][3])
    created = validate(schema, soap(sim, token, address, (
        '<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>'
        f"{CAL}</m:SavedItemFolderId><m:Items><t:CalendarItem><t:Subject>x</t:Subject>"
        "<t:Start>2026-12-05T10:00:00Z</t:Start><t:End>2026-12-05T11:00:00Z</t:End>"
        "</t:CalendarItem></m:Items></m:CreateItem>")))  # fmt: skip
    item_id = created.find(".//{*}ItemId")
    assert item_id is not None
    ref = f'<t:ItemId Id="{item_id.get("Id")}" ChangeKey="{item_id.get("ChangeKey")}"/>'
    validate(schema, soap(sim, token, address, (
        '<m:UpdateItem ConflictResolution="NeverOverwrite" MessageDisposition="SaveOnly" '
        'SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>'
        f'{ref}<t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/>'
        "<t:CalendarItem><t:Subject>y</t:Subject></t:CalendarItem></t:SetItemField>"
        "</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>")))  # fmt: skip
    stale = validate(schema, soap(sim, token, address, (
        '<m:UpdateItem ConflictResolution="NeverOverwrite"><m:ItemChanges><t:ItemChange>'
        f'{ref}<t:Updates/></t:ItemChange></m:ItemChanges></m:UpdateItem>')))  # fmt: skip
    assert b"ErrorIrresolvableConflict" in etree.tostring(stale)
    subscribed = validate(schema, soap(sim, token, address, (
        f"<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>{CAL}</t:FolderIds>"
        "<t:EventTypes><t:EventType>ModifiedEvent</t:EventType><t:EventType>DeletedEvent"
        "</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest>"
        "</m:Subscribe>")))  # fmt: skip
    sub_id = subscribed.findtext(".//{*}SubscriptionId")
    watermark = subscribed.findtext(".//{*}Watermark")
    validate(schema, soap(sim, token, address, (
        f'<m:DeleteItem DeleteType="HardDelete"><m:ItemIds>{ref.replace("ChangeKey", "X")}'
        "</m:ItemIds></m:DeleteItem>")))  # fmt: skip
    events = validate(schema, soap(sim, token, address, (
        f"<m:GetEvents><m:SubscriptionId>{sub_id}</m:SubscriptionId>"
        f"<m:Watermark>{watermark}</m:Watermark></m:GetEvents>")))  # fmt: skip
    assert re.search(rb"DeletedEvent", etree.tostring(events))
    validate(
        schema,
        soap(
            sim,
            token,
            address,
            (f"<m:Unsubscribe><m:SubscriptionId>{sub_id}</m:SubscriptionId></m:Unsubscribe>"),
        ),
    )


def test_streaming_documents_are_schema_valid(schema: Any) -> None:
    import datetime as dt

    from calsync.sim.mailstore import Mailbox
    from calsync.sim.streaming import Subscription, _notification, _stream_doc

    mbx = Mailbox("a@contoso.example", "contoso", "A")
    sub = Subscription("sub1", mbx, "contoso", "streaming", {"ModifiedEvent", "CreatedEvent"})
    sub.queue.append(("modified", "AAMkx", "ck", 3, dt.datetime.now(dt.UTC)))
    sub.queue.append(("created", "AAMky", "ck", 4, dt.datetime.now(dt.UTC)))
    doc = _stream_doc(f"<m:Notifications>{_notification(sub)}</m:Notifications>", "OK")
    message = validate(schema, doc)
    assert b"CreatedEvent" in etree.tostring(message)
    validate(schema, _stream_doc("", "Closed"))
