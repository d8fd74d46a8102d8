from __future__ import annotations

from typing import Any

import pytest
import requests
from exchangelib import errors as ex

from calsync.auth import TenantCredentials, TokenProvider
from calsync.errors import (
    AccessDenied,
    AuthError,
    CalsyncError,
    ConflictError,
    EwsBlocked,
    MailboxNotFound,
    SyncStateInvalid,
    ThrottledError,
    TransientError,
    Unlicensed,
)
from calsync.ews.client import EwsClient, EwsSettings
from calsync.ews.errors import HttpStatusError, classify, event_name
from calsync.ews.transport import operation_of, redact_soap
from calsync.ports import ExchangeSide


def _classify(exc: BaseException) -> CalsyncError:
    return classify(exc, mailbox="alice@contoso.example", tenant="contoso")


@pytest.mark.parametrize(
    ("exc", "cls", "code"),
    [
        (ex.ErrorAccessDenied("Access is denied."), AccessDenied, "ErrorAccessDenied"),
        (ex.ErrorImpersonateUserDenied("no"), AccessDenied, "ErrorImpersonateUserDenied"),
        (ex.ErrorNonExistentMailbox("no such"), MailboxNotFound, "ErrorNonExistentMailbox"),
        (ex.ErrorInvalidSmtpAddress("bad"), MailboxNotFound, "ErrorInvalidSmtpAddress"),
        (ex.ErrorInvalidSyncStateData("stale"), SyncStateInvalid, "ErrorInvalidSyncStateData"),
        (ex.ErrorIrresolvableConflict("c"), ConflictError, "ErrorIrresolvableConflict"),
        (ex.ErrorStaleObject("c"), ConflictError, "ErrorStaleObject"),
        (ex.ErrorExceededConnectionCount("x"), ThrottledError, "ErrorExceededConnectionCount"),
        (ex.ErrorExceededSubscriptionCount("x"), ThrottledError, "ErrorExceededSubscriptionCount"),
        (ex.ErrorTimeoutExpired("t"), TransientError, "ErrorTimeoutExpired"),
        (ex.ErrorInternalServerError("t"), TransientError, "ErrorInternalServerError"),
        (requests.ConnectionError("reset"), TransientError, "ConnectionError"),
        (ex.UnauthorizedError("401"), AuthError, "HTTP401"),
        (HttpStatusError(403, "EWS is disabled for this application"), EwsBlocked, "HTTP403"),
        (HttpStatusError(403, "Mailbox is not licensed for EWS"), Unlicensed, "HTTP403"),
        (HttpStatusError(403, ""), AccessDenied, "HTTP403"),
        (HttpStatusError(503, "down"), TransientError, "HTTP503"),
        (
            ex.MalformedResponseError("Unknown failure in response. Code: 403 headers: {}"),
            AccessDenied,
            "HTTP403",
        ),
    ],
)
def test_classification(exc: BaseException, cls: type[CalsyncError], code: str) -> None:
    error = _classify(exc)
    assert type(error) is cls
    assert error.error_code == code


def test_server_busy_carries_its_back_off() -> None:
    error = _classify(ex.ErrorServerBusy("busy", back_off=2.5))
    assert isinstance(error, ThrottledError)
    assert error.retry_after == 2.5
    assert event_name(error) == "ews_throttled"


def test_mailbox_errors_carry_the_mailbox_and_a_hint() -> None:
    error = _classify(ex.ErrorAccessDenied("Access is denied."))
    assert isinstance(error, AccessDenied)
    assert error.mailbox == "alice@contoso.example"
    assert error.hint and "ApplicationAccessPolicy" in error.hint
    assert event_name(error) == "mailbox_access_denied"


def test_redaction_keeps_the_envelope_and_hides_bodies_and_tokens() -> None:
    soap = (
        '<s:Envelope xmlns:s="x"><s:Header><t:ExchangeImpersonation><t:ConnectingSID>'
        "<t:PrimarySmtpAddress>a@b.c</t:PrimarySmtpAddress></t:ConnectingSID>"
        "</t:ExchangeImpersonation></s:Header><s:Body><m:GetItemResponse><t:CalendarItem>"
        '<t:Subject>Hi</t:Subject><t:Body BodyType="HTML">&lt;p&gt;private&lt;/p&gt;</t:Body>'
        "<t:UniqueBody>private</t:UniqueBody><t:TextBody>private</t:TextBody>"
        "<t:MimeContent>cHJpdmF0ZQ==</t:MimeContent><t:Body/>"
        "<t:Note>access_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl</t:Note>"
        "</t:CalendarItem></m:GetItemResponse></s:Body></s:Envelope>"
    )
    text = redact_soap(soap)
    assert "private" not in text
    assert "cHJpdmF0ZQ==" not in text
    assert "eyJ" not in text
    assert '<t:Body BodyType="HTML">[redacted 26 chars]</t:Body>' in text
    assert "<t:TextBody>[redacted 7 chars]</t:TextBody>" in text
    assert "<t:PrimarySmtpAddress>a@b.c</t:PrimarySmtpAddress>" in text
    assert "<s:Body><m:GetItemResponse>" in text
    assert operation_of(soap.encode()) == "GetItemResponse"


class _Creds:
    def __init__(self) -> None:
        self.credentials = TenantCredentials(
            name="contoso", tenant_id="t", client_id="c", client_secret="s"
        )


def _client(**settings: Any) -> tuple[EwsClient, list[float]]:
    waits: list[float] = []
    provider = TokenProvider(_Creds().credentials, http_client=object())
    client = EwsClient(
        EwsSettings(tenant="contoso", ews_url="https://127.0.0.1:9/EWS/Exchange.asmx", **settings),
        provider,
        sleep=waits.append,
        clock=lambda: 100.0,
    )
    return client, waits


def test_short_back_off_is_waited_for_that_mailbox_only() -> None:
    client, waits = _client(max_inline_backoff_s=5, max_attempts=3)
    answers: list[Any] = [ex.ErrorServerBusy("busy", back_off=2.0), "done"]

    def operation(account: Any) -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert account.primary_smtp_address == "alice@contoso.example"
        return str(answer)

    try:
        assert client.call("alice@contoso.example", operation) == "done"
        assert waits == [2.0]
        assert client.call("bob@contoso.example", lambda a: "bob") == "bob"
        assert waits == [2.0]
    finally:
        client.close()


def test_long_back_off_goes_back_to_the_scheduler() -> None:
    client, waits = _client(max_inline_backoff_s=5)

    def busy(account: Any) -> None:
        raise ex.ErrorServerBusy("busy", back_off=600.0)

    try:
        with pytest.raises(ThrottledError) as caught:
            client.call("alice@contoso.example", busy)
        assert caught.value.retry_after == 600.0
        assert waits == []
    finally:
        client.close()


def test_403_is_not_retried() -> None:
    client, _ = _client()
    calls: list[int] = []

    def forbidden(account: Any) -> None:
        calls.append(1)
        raise HttpStatusError(403, "")

    try:
        with pytest.raises(AccessDenied):
            client.call("alice@contoso.example", forbidden)
        assert calls == [1]
    finally:
        client.close()


def test_ews_side_implements_the_port() -> None:
    from calsync.ews import EwsExchangeSide

    client, _ = _client()
    try:
        side: ExchangeSide = EwsExchangeSide(client)
        assert callable(side.request_count)  # the assignment is what mypy checks
    finally:
        client.close()
