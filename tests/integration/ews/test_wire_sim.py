"""What goes over the wire: headers per mailbox, no cookies, token renewal, redacted SOAP logs."""

from __future__ import annotations

import os
import re
import tempfile
import time
from typing import Any

import pytest
import requests
import structlog
from exchangelib.folders import FolderCollection
from sim_stack import Stack, build, sim_module

from calsync.ews import check_mailbox
from calsync.ews.calendar import calendar_folder
from calsync.ews.transport import operation_of
from calsync.model import EventData

_IMPERSONATED = re.compile(rb"<t:ExchangeImpersonation>.*?<t:PrimarySmtpAddress>(.*?)<", re.S)


def test_every_request_names_its_mailbox_and_carries_no_cookie(stack: Stack) -> None:
    seen: list[tuple[str, str, bytes | None, Any]] = []

    def observe(request: requests.PreparedRequest) -> None:
        body = request.body if isinstance(request.body, bytes) else None
        match = _IMPERSONATED.search(body or b"")
        seen.append(
            (
                str(request.headers.get("X-AnchorMailbox")),
                match.group(1).decode() if match else "",
                body,
                request.headers.get("Cookie"),
            )
        )

    stack.client.transport.observers.append(observe)
    mailboxes = [stack.mailbox(i) for i in (10, 11, 12)]
    # a streaming subscription makes the simulator set an X-BackEndOverrideCookie
    stack.client.call(
        mailboxes[0].address,
        lambda a: FolderCollection(
            account=a, folders=[calendar_folder(a)]
        ).subscribe_to_streaming(),
    )
    for mailbox in mailboxes:
        list(stack.side.fetch_changes(mailbox, None))
        stack.side.find_by_calsync_id(mailbox, "nope")
        ref = stack.side.create(
            mailbox, "cid-wire", EventData("x", sim_module_now(), sim_module_now(hours=1))
        )
        ref = stack.side.update(
            mailbox, ref, EventData("y", sim_module_now(), sim_module_now(hours=1))
        )
        stack.side.delete(mailbox, ref)
        assert check_mailbox(stack.client, mailbox.address).status == "ok"
    operations = {operation_of(body) for *_, body, _ in seen}
    assert {"GetFolder", "FindItem", "GetItem", "SyncFolderItems", "Subscribe"} <= operations
    assert {"CreateItem", "UpdateItem", "DeleteItem"} <= operations
    for anchor, impersonated, _, cookie in seen:
        assert anchor == impersonated
        assert anchor in {m.address for m in mailboxes}
        assert cookie is None
    assert {anchor for anchor, *_ in seen} == {m.address for m in mailboxes}
    # the affinity cookie is kept for the mailbox it belongs to, never sent as a cookie
    assert stack.client.affinity_cookie(mailboxes[0].address)
    assert stack.client.affinity_cookie(mailboxes[1].address) is None
    # the pooled sessions kept no cookie either
    pool = stack.client.protocol._session_pool
    assert all(len(session.cookies) == 0 for session in list(pool.queue))


def test_protocol_debug_logs_soap_without_secrets(sim: Any) -> None:
    stack = build(sim, protocol_debug=True)
    token = stack.provider.token(stack.client.credentials._scope).token
    secret = stack.tenant["client_secret"]
    mailbox = stack.mailbox(13)
    body = "Top secret agenda: merger with Fabrikam"
    try:
        with structlog.testing.capture_logs() as logs:
            ref = stack.side.create(
                mailbox,
                "cid-debug",
                EventData(
                    subject="Debug",
                    body=body,
                    start=sim_module_now(),
                    end=sim_module_now(hours=1),
                ),
            )
            stack.side.get(mailbox, ref.item_id)
    finally:
        stack.client.close()
    soap = [e for e in logs if e["event"] in {"ews_request", "ews_response"}]
    assert {e["event"] for e in soap} == {"ews_request", "ews_response"}
    assert all(e["log_level"] == "debug" and e["mailbox"] == mailbox.address for e in soap)
    create = next(e for e in soap if e["event"] == "ews_request" and e["operation"] == "CreateItem")
    assert "<m:CreateItem" in create["soap"]
    assert f"[redacted {len(body)} chars]" in create["soap"]
    text = repr(logs)
    for forbidden in (token, secret, body, "Bearer"):
        assert forbidden not in text


def sim_module_now(hours: int = 0) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime(2027, 3, 1, 9, tzinfo=UTC) + timedelta(hours=hours)


def test_short_tokens_are_renewed_without_errors() -> None:
    """5-second tokens under continuous traffic: no error, one token per ~2.5 s, not per request.

    The issue asks for 60 s of traffic; CALSYNC_TOKEN_TEST_SECONDS=60 runs exactly that, the
    default keeps the suite fast.
    """
    seconds = float(os.environ.get("CALSYNC_TOKEN_TEST_SECONDS", "12"))
    with (
        tempfile.TemporaryDirectory() as state,
        sim_module.start_in_thread(
            state, mailboxes=4, events_per_mailbox=3, token_lifetime=5
        ) as sim,
    ):
        stack = build(sim)
        try:
            requests_sent = 0
            deadline = time.monotonic() + seconds
            states: dict[int, str | None] = {}
            while time.monotonic() < deadline:
                for index in range(4):
                    for page in stack.side.fetch_changes(stack.mailbox(index), states.get(index)):
                        states[index] = page.sync_state
                    requests_sent += 1
            issued = sim.admin.stats()["tokens_issued"]
        finally:
            stack.client.close()
    expected = seconds / 2.5
    assert requests_sent > 4 * expected  # many requests per token
    assert expected - 1 <= issued <= expected + 2
    assert stack.provider.token_requests == issued


@pytest.mark.parametrize("auth", ["basic"])
def test_on_premises_service_account(auth: str) -> None:
    with (
        tempfile.TemporaryDirectory() as state,
        sim_module.start_in_thread(state, mailboxes=2, events_per_mailbox=3, onprem=True) as sim,
    ):
        tenant = sim.info["tenants"][0]
        from calsync.ews import EwsClient, EwsExchangeSide, EwsSettings, check_mailbox
        from calsync.model import Mailbox

        client = EwsClient(
            EwsSettings(
                tenant=tenant["name"],
                ews_url=sim.info["ews_url"],
                ca_file=sim.info["ca_file"],
                auth=auth,
                username=tenant["username"],
                password=tenant["password"],
            )
        )
        wrong = EwsClient(
            EwsSettings(
                tenant=tenant["name"],
                ews_url=sim.info["ews_url"],
                ca_file=sim.info["ca_file"],
                auth=auth,
                username=tenant["username"],
                password="wrong",
            )
        )
        try:
            side = EwsExchangeSide(client)
            mailbox = Mailbox(address=tenant["mailboxes"][0], tenant=tenant["name"])
            changes = [c for p in side.fetch_changes(mailbox, None) for c in p.changes]
            refused = check_mailbox(wrong, mailbox.address)
        finally:
            client.close()
            wrong.close()
        assert (refused.status, refused.error_code) == ("auth_failed", "HTTP401")
        assert refused.hint is not None
        assert "service account" in refused.hint
        assert len(changes) == len(
            [e for e in sim.admin.events(mailbox.address) if not e["series_item_id"]]
        )
