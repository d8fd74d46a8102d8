"""Headers on the wire for subscription groups (DESIGN.md "Headers on the wire")."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from streaming_stack import Changes, client_for, sim_mailboxes, streaming, wait_subscribed

from calsync.ews.transport import operation_of
from calsync.sim import start_in_thread
from calsync.sim.streaming import backend_cookie

_IMPERSONATED = re.compile(rb"<t:ExchangeImpersonation>.*?<t:PrimarySmtpAddress>(.*?)<", re.S)
_SUB_IDS = re.compile(rb"<t:SubscriptionId>[^<]+</t:SubscriptionId>")


def test_group_requests_carry_the_anchor_and_its_affinity(tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    def observe(request: requests.PreparedRequest) -> None:
        body = request.body if isinstance(request.body, bytes) else b""
        seen.append((operation_of(body), dict(request.headers), body))

    with start_in_thread(tmp_path, mailboxes=7, events_per_mailbox=2) as sim:
        boxes = sim_mailboxes(sim)
        addresses = [b.address for b in boxes]
        anchor_of = {a: addresses[i // 3 * 3] for i, a in enumerate(addresses)}
        client = client_for(sim)
        client.transport.observers.append(observe)
        changes = Changes()
        try:
            with streaming(
                sim, boxes, changes, client, max_subscriptions_per_connection=3
            ) as source:
                wait_subscribed(source, 7, changes)
                item = sim.admin.events(addresses[4])[0]
                sim.admin.patch_event(addresses[4], item["item_id"], subject="wire")
                assert changes.wait(lambda c: addresses[4] in c.of("notification"))
        finally:
            client.close()

    operations = [op for op, _, _ in seen]
    assert operations.count("Subscribe") == 7
    assert operations.count("GetStreamingEvents") == 3
    assert operations.count("Unsubscribe") == 7
    for operation, headers, body in seen:
        match = _IMPERSONATED.search(body)
        assert match, operation
        impersonated = match.group(1).decode()
        anchor = anchor_of[impersonated]
        assert headers["X-AnchorMailbox"] == anchor, (operation, impersonated)
        assert headers["X-PreferServerAffinity"] == "true"
        assert "Cookie" not in headers
        cookie = headers.get("X-BackEndOverrideCookie")
        if operation == "Subscribe" and impersonated == anchor:
            assert cookie is None  # the anchor's Subscribe is the one that returns it
        else:
            assert cookie == backend_cookie(anchor), (operation, impersonated)
        if operation == "GetStreamingEvents":
            assert impersonated == anchor
            group = [a for a in addresses if anchor_of[a] == anchor]
            assert len(_SUB_IDS.findall(body)) == len(group)
        elif operation == "Unsubscribe":
            assert impersonated == anchor
    # the anchor subscribes first in its group; members follow with its cookie
    subscribes = [_IMPERSONATED.search(b).group(1).decode() for o, _, b in seen if o == "Subscribe"]  # type: ignore[union-attr]
    for anchor in set(anchor_of.values()):
        members = [a for a in subscribes if anchor_of[a] == anchor]
        assert members[0] == anchor
