"""Subscriptions: streaming on one connection for several mailboxes, pull, caps, drops."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from exchangelib import FolderCollection
from exchangelib.errors import ErrorExceededSubscriptionCount, ErrorInvalidSubscription
from exchangelib.properties import ModifiedEvent, StatusEvent
from simclients import OUTLOOK_SCOPE, account, msal_app

from calsync.sim import SimHandle, start_in_thread

NS = ('xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
      'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
      'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"')  # fmt: skip


def _mailboxes(sim: SimHandle, tenant: str = "fabrikam") -> list[str]:
    return [str(a) for a in sim.tenant(tenant)["mailboxes"]]


def _subscribe(sim: SimHandle, address: str, tenant: str = "fabrikam") -> str:
    acc = account(sim, address, tenant=tenant)
    sub_id: str = FolderCollection(account=acc, folders=[acc.calendar]).subscribe_to_streaming()
    assert acc.affinity_cookie  # X-BackEndOverrideCookie from Subscribe
    return sub_id


class RawStream:
    """GetStreamingEvents over plain requests, read document by document."""

    def __init__(self, sim: SimHandle, anchor: str, ids: list[str], tenant: str = "fabrikam",
                 timeout_min: int = 1, token: dict[str, Any] | None = None) -> None:  # fmt: skip
        if token is None:
            token = msal_app(sim, tenant=tenant).acquire_token_for_client(scopes=OUTLOOK_SCOPE)
        subs = "".join(f"<t:SubscriptionId>{i}</t:SubscriptionId>" for i in ids)
        body = (f'<s:Envelope {NS}><s:Header><t:RequestServerVersion Version="Exchange2016"/>'
                "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>"
                f"{anchor}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
                f"</s:Header><s:Body><m:GetStreamingEvents><m:SubscriptionIds>{subs}"
                f"</m:SubscriptionIds><m:ConnectionTimeout>{timeout_min}</m:ConnectionTimeout>"
                "</m:GetStreamingEvents></s:Body></s:Envelope>")  # fmt: skip
        self.session = requests.Session()
        self.response = self.session.post(
            sim.info["ews_url"], data=body.encode(), stream=True, verify=sim.ca_file, timeout=30,
            headers={"Authorization": f"Bearer {token['access_token']}",
                     "Content-Type": "text/xml; charset=utf-8", "X-AnchorMailbox": anchor,
                     "X-PreferServerAffinity": "true"},
        )  # fmt: skip
        self._chunks = self.response.iter_content(chunk_size=None)
        self._buffer = b""

    def next_doc(self) -> bytes:
        end = b"</s:Envelope>"
        while end not in self._buffer:
            self._buffer += next(self._chunks)
        doc, _, self._buffer = self._buffer.partition(end)
        return doc + end

    def close(self) -> None:
        self.response.close()
        self.session.close()


def _read_to_end(stream: RawStream) -> None:
    while True:
        stream.next_doc()


@pytest.fixture
def raw_streams() -> Iterator[list[RawStream]]:
    streams: list[RawStream] = []
    yield streams
    for stream in streams:
        stream.close()


def test_three_mailboxes_on_one_connection_get_an_admin_edit(
    sim: SimHandle, raw_streams: list[RawStream]
) -> None:
    a, b, c = _mailboxes(sim)[3:6]
    ids = [_subscribe(sim, x) for x in (a, b, c)]
    sim.admin.reset_stats()
    stream = RawStream(sim, a, ids)
    raw_streams.append(stream)
    assert b"<m:ConnectionStatus>OK</m:ConnectionStatus>" in stream.next_doc()  # connected
    stats = sim.admin.stats()
    assert stats["streaming"]["open_connections"] == 1
    assert stats["streaming"]["max_subscriptions_on_one_connection"] == 3
    assert stats["requests"] == {"GetStreamingEvents": 1}
    assert stats["by_mailbox"] == {a: {"GetStreamingEvents": 1}}
    target = sim.admin.events(c)[0]
    sim.admin.patch_event(c, target["item_id"], subject="Changed while streaming")
    doc = stream.next_doc()
    while b"ModifiedEvent" not in doc:  # heartbeats may come first
        doc = stream.next_doc()
    assert ids[2].encode() in doc
    assert target["item_id"].encode() in doc


def test_exchangelib_streaming_receives_queued_events(sim: SimHandle) -> None:
    a, b, c = _mailboxes(sim)[0:3]
    ids = [_subscribe(sim, x) for x in (a, b, c)]
    target = sim.admin.events(b)[0]
    sim.admin.patch_event(b, target["item_id"], location="Queued while disconnected")
    anchor = account(sim, a, tenant="fabrikam")
    events = []
    for notification in anchor.calendar.get_streaming_events(ids, connection_timeout=1):
        events += [e for e in notification.events if not isinstance(e, StatusEvent)]
        if events:
            break
    assert isinstance(events[0], ModifiedEvent)
    assert events[0].item_id.id == target["item_id"]
    for sub_id, address in zip(ids, (a, b, c), strict=True):
        acc = account(sim, address, tenant="fabrikam")
        acc.calendar.unsubscribe(sub_id)
    with pytest.raises(ErrorInvalidSubscription):
        list(anchor.calendar.get_streaming_events(ids, connection_timeout=1))


def test_heartbeats_and_dropped_streams(sim: SimHandle, raw_streams: list[RawStream]) -> None:
    a = _mailboxes(sim)[2]
    sub_id = _subscribe(sim, a)
    stream = RawStream(sim, a, [sub_id])
    raw_streams.append(stream)
    for _ in range(3):  # the connect document and two heartbeats (heartbeat_s=0.5 in conftest)
        assert b"<m:ConnectionStatus>OK</m:ConnectionStatus>" in stream.next_doc()
    sim.admin.set_faults(drop_streams=True)
    with pytest.raises(
        (requests.exceptions.ChunkedEncodingError, requests.ConnectionError, StopIteration)
    ):
        _read_to_end(stream)
    assert "drop_streams" not in sim.admin.faults()  # acts once
    again = RawStream(sim, a, [sub_id])  # the subscription survived
    raw_streams.append(again)
    assert b"ConnectionStatus" in again.next_doc()


def test_pull_subscription_and_get_events(sim: SimHandle) -> None:
    address = _mailboxes(sim, "contoso")[0]
    acc = account(sim, address)
    sub_id, watermark = FolderCollection(account=acc, folders=[acc.calendar]).subscribe_to_pull()
    created = sim.admin.create_event(address, subject="Pull me", start="2026-12-20T10:00:00Z",
                                     end="2026-12-20T11:00:00Z", timezone="UTC")  # fmt: skip
    notifications = list(acc.calendar.get_events(sub_id, watermark))
    item_ids = [e.item_id.id for n in notifications for e in n.events if hasattr(e, "item_id")]
    assert created["item_id"] in item_ids
    acc.calendar.unsubscribe(sub_id)


def test_twenty_subscriptions_per_mailbox(sim: SimHandle) -> None:
    address = _mailboxes(sim, "contoso")[1]
    acc = account(sim, address)
    folders = FolderCollection(account=acc, folders=[acc.calendar])
    ids = [folders.subscribe_to_streaming() for _ in range(20)]
    with pytest.raises(ErrorExceededSubscriptionCount):
        folders.subscribe_to_streaming()
    for sub_id in ids:
        acc.calendar.unsubscribe(sub_id)


def test_subscription_cap_per_connection(tmp_path: Path) -> None:
    from exchangelib.errors import ErrorInvalidArgument
    from exchangelib.protocol import BaseProtocol
    from simclients import make_adapter_cls

    with start_in_thread(tmp_path, mailboxes=3, events_per_mailbox=1,
                         max_subscriptions_per_connection=2) as small:  # fmt: skip
        old = BaseProtocol.HTTP_ADAPTER_CLS
        BaseProtocol.HTTP_ADAPTER_CLS = make_adapter_cls(small.ca_file)
        try:
            addresses = _mailboxes(small, "contoso")
            ids = [_subscribe(small, a, tenant="contoso") for a in addresses]
            anchor = account(small, addresses[0])
            with pytest.raises(ErrorInvalidArgument, match="maximum of 2"):
                list(anchor.calendar.get_streaming_events(ids, connection_timeout=1))
            with pytest.raises(ValueError, match="connection_timeout"):
                list(anchor.calendar.get_streaming_events(ids[:2], connection_timeout=0))
        finally:
            BaseProtocol.HTTP_ADAPTER_CLS = old


def test_a_hundred_open_streaming_connections(tmp_path: Path) -> None:
    with start_in_thread(tmp_path, mailboxes=10, events_per_mailbox=2) as big:
        addresses = _mailboxes(big, "contoso")
        token = msal_app(big).acquire_token_for_client(scopes=OUTLOOK_SCOPE)
        streams: list[RawStream] = []
        try:
            ids = [
                _raw_subscribe(big, token["access_token"], a) for a in addresses for _ in range(10)
            ]
            for n, sub_id in enumerate(ids):
                stream = RawStream(big, addresses[n // 10], [sub_id], "contoso", token=token)
                streams.append(stream)
                stream.next_doc()
            assert big.admin.stats()["streaming"]["open_connections"] == 100
            target = big.admin.events(addresses[9])[0]
            big.admin.patch_event(addresses[9], target["item_id"], subject="to all ten")
            doc = streams[-1].next_doc()
            while b"ModifiedEvent" not in doc:
                doc = streams[-1].next_doc()
        finally:
            for stream in streams:
                stream.close()


def _raw_subscribe(sim: SimHandle, token: str, address: str) -> str:
    body = (f'<s:Envelope {NS}><s:Header><t:ExchangeImpersonation><t:ConnectingSID>'
            f"<t:PrimarySmtpAddress>{address}</t:PrimarySmtpAddress></t:ConnectingSID>"
            "</t:ExchangeImpersonation></s:Header><s:Body><m:Subscribe>"
            '<m:StreamingSubscriptionRequest><t:FolderIds><t:DistinguishedFolderId Id="calendar"/>'
            "</t:FolderIds><t:EventTypes><t:EventType>ModifiedEvent</t:EventType></t:EventTypes>"
            "</m:StreamingSubscriptionRequest></m:Subscribe></s:Body></s:Envelope>")  # fmt: skip
    with requests.Session() as session:
        answer = session.post(sim.info["ews_url"], data=body.encode(), verify=sim.ca_file,
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip
    match = re.search(r"<m:SubscriptionId>([^<]+)<", answer.text)
    assert match, answer.text
    return match.group(1)


def test_connection_timeout_closes_the_stream_and_idle_subscriptions_expire(
    tmp_path: Path,
) -> None:
    from exchangelib.protocol import BaseProtocol
    from simclients import make_adapter_cls

    # an EWS "minute" of 0.3 s: ConnectionTimeout=1 ends the stream with ConnectionStatus Closed
    with start_in_thread(tmp_path, mailboxes=2, events_per_mailbox=1, minute_s=0.3,
                         heartbeat_s=0.1) as quick:  # fmt: skip
        old = BaseProtocol.HTTP_ADAPTER_CLS
        BaseProtocol.HTTP_ADAPTER_CLS = make_adapter_cls(quick.ca_file)
        try:
            address = _mailboxes(quick, "contoso")[0]
            sub_id = _subscribe(quick, address, tenant="contoso")
            anchor = account(quick, address)
            assert list(anchor.calendar.get_streaming_events([sub_id], connection_timeout=1)) == []
            assert quick.admin.stats()["streaming"] == {
                "open_connections": 0, "max_subscriptions_on_one_connection": 1,
                "subscriptions": 1,
            }  # fmt: skip
            # 30 EWS minutes without a connection (moved back in time rather than waited for)
            sub = quick.call(lambda: quick.core.hub.subs[sub_id])
            quick.call(lambda: setattr(sub, "last_seen", sub.last_seen - 31 * 0.3))
            assert quick.admin.stats()["streaming"]["subscriptions"] == 0
            with pytest.raises(ErrorInvalidSubscription):
                list(anchor.calendar.get_streaming_events([sub_id], connection_timeout=1))
        finally:
            BaseProtocol.HTTP_ADAPTER_CLS = old


def test_header_hygiene_is_counted(sim: SimHandle) -> None:
    address = _mailboxes(sim, "contoso")[4]
    acc = account(sim, address)
    cal = acc.calendar
    sim.admin.reset_stats()
    list(cal.sync_items(only_fields=["id"]))
    assert sim.admin.stats()["headers"] == {
        "missing_anchor": 0, "anchor_mismatch": 0, "affinity_cookie": 0,
    }  # fmt: skip
    sub_id = FolderCollection(account=acc, folders=[cal]).subscribe_to_streaming()
    list(cal.sync_items(only_fields=["id"]))
    # exchangelib's pooled requests session replays the Subscribe's affinity cookie
    assert sim.admin.stats()["headers"]["affinity_cookie"] >= 1
    cal.unsubscribe(sub_id)
