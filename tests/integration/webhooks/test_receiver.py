"""The receiver alone: validation handshake, clientState check, 202 then hand-off, bad bodies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from structlog.testing import capture_logs
from webhook_stack import CLIENT_STATE, PATH, free_port

from calsync.graph.webhook import Notification, WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, list[list[Notification]]]]:
    got: list[list[Notification]] = []
    rx = WebhookReceiver(
        host="127.0.0.1", port=free_port(), path=PATH, client_state=CLIENT_STATE, sink=got.append
    )
    rx.start()
    yield rx, got
    rx.stop()


def url(rx: WebhookReceiver) -> str:
    return f"http://127.0.0.1:{rx.port}{PATH}"


def note(state: str = CLIENT_STATE, **extra: str) -> dict[str, str]:
    return {"subscriptionId": "sub-1", "clientState": state, "changeType": "updated",
            "resource": "Users/a/Events/b", "tenantId": "t", **extra}  # fmt: skip


def test_validation_token_is_echoed_as_plain_text(
    receiver: tuple[WebhookReceiver, list[list[Notification]]],
) -> None:
    rx, got = receiver
    token = "Validation: Testing client application reachability Request-Id: 1+2/3"
    with httpx.Client(trust_env=False) as http:
        for method in ("POST", "GET"):
            answer = http.request(method, url(rx), params={"validationToken": token})
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            assert answer.text == token  # URL-decoded
        assert http.post(f"http://127.0.0.1:{rx.port}/elsewhere").status_code == 404
    assert got == []


def test_wrong_client_state_is_rejected_and_logged(
    receiver: tuple[WebhookReceiver, list[list[Notification]]],
) -> None:
    rx, got = receiver
    with capture_logs() as logs, httpx.Client(trust_env=False) as http:
        forged = http.post(url(rx), json={"value": [note("guess"), note(""), {"x": 1}]})
        missing = http.post(url(rx), json={"value": [{"subscriptionId": "sub-1"}]})
    assert (forged.status_code, missing.status_code) == (202, 202)
    assert got == []  # nothing reaches the manager: no sync
    rejected = [e for e in logs if e["event"] == "webhook_rejected"]
    assert [(e["reason"], e["count"]) for e in rejected] == [
        ("clientState mismatch", 3),
        ("clientState mismatch", 1),
    ]
    assert rx.rejected == 4 and rx.received == 0
    assert all("guess" not in str(e) and CLIENT_STATE not in str(e) for e in logs)


def test_valid_notifications_are_handed_over_and_bad_ones_dropped(
    receiver: tuple[WebhookReceiver, list[list[Notification]]],
) -> None:
    rx, got = receiver
    with httpx.Client(trust_env=False) as http:
        mixed = http.post(url(rx), json={"value": [note(), note("wrong")]})
        lifecycle = http.post(url(rx), json={"value": [note(lifecycleEvent="subscriptionRemoved")]})
        broken = http.post(url(rx), content=b"{not json", headers={"Content-Type": "text/json"})
        shapeless = http.post(url(rx), json={"values": []})
        wrong_method = http.get(url(rx))
    assert (mixed.status_code, lifecycle.status_code) == (202, 202)
    assert (broken.status_code, shapeless.status_code, wrong_method.status_code) == (400, 400, 405)
    assert got == [
        [Notification("sub-1", "updated", "Users/a/Events/b", None, "t")],
        [Notification("sub-1", "updated", "Users/a/Events/b", "subscriptionRemoved", "t")],
    ]
    assert rx.received == 2 and rx.rejected == 3


def test_a_port_in_use_is_an_os_error() -> None:
    first = WebhookReceiver(host="127.0.0.1", port=free_port(), path=PATH, client_state="s",
                            sink=lambda _n: None)  # fmt: skip
    first.start()
    try:
        second = WebhookReceiver(host="127.0.0.1", port=first.port, path=PATH, client_state="s",
                                 sink=lambda _n: None)  # fmt: skip
        with pytest.raises(OSError):
            second.start()
    finally:
        first.stop()
