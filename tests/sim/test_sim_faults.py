"""Each fault shows up as the exception exchangelib raises for the real one."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    OAUTH2,
    Account,
    Configuration,
    FailFast,
    Version,
)
from exchangelib.errors import (
    ErrorAccessDenied,
    ErrorInternalServerError,
    ErrorInvalidExchangeImpersonationHeaderData,
    ErrorNonExistentMailbox,
    ErrorServerBusy,
    MalformedResponseError,
    TransportError,
    UnauthorizedError,
)
from exchangelib.version import EXCHANGE_O365
from simclients import CASession, account, msal_app

from calsync.sim import SimHandle

NS = 'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'


def _address(sim: SimHandle, n: int = 5) -> str:
    return str(sim.tenant()["mailboxes"][n])


def _sync(sim: SimHandle, address: str) -> list[Any]:
    acc = account(sim, address)
    return list(acc.calendar.sync_items(only_fields=["id", "changekey"]))


def _raw_ews(
    sim: SimHandle, token: str, op: str = "GetFolder", address: str | None = None
) -> requests.Response:
    imp = (f"<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{address}"
           "</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>") if address else ""  # fmt: skip
    body = (f'<s:Envelope {NS}><s:Header><t:RequestServerVersion Version="Exchange2016"/>{imp}'
            f'</s:Header><s:Body><m:{op}><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape>'
            '</m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds>'
            f"</m:{op}></s:Body></s:Envelope>")  # fmt: skip
    return CASession(sim.ca_file).post(
        sim.info["ews_url"], data=body.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/xml; charset=utf-8"},
    )  # fmt: skip


def test_server_busy_carries_back_off(sim: SimHandle) -> None:
    sim.admin.set_faults(server_busy_rate=1.0, server_busy_backoff_ms=1500)
    with pytest.raises(ErrorServerBusy) as info:
        _sync(sim, _address(sim))
    assert info.value.back_off == 1.5


def test_fault_scope_limits_rate_faults(sim: SimHandle) -> None:
    sim.admin.set_faults(server_busy_rate=1.0, scope={"mailboxes": [_address(sim, 4)]})
    assert _sync(sim, _address(sim, 5))
    with pytest.raises(ErrorServerBusy):
        _sync(sim, _address(sim, 4))


def test_error_rate_gives_http_500_or_503(sim: SimHandle) -> None:
    sim.admin.set_faults(error_rate=1.0, seed=3)
    raised = set()
    for _ in range(6):
        with pytest.raises((ErrorInternalServerError, TransportError, ErrorServerBusy)) as info:
            _sync(sim, _address(sim))
        raised.add(type(info.value))
    assert ErrorInternalServerError in raised
    assert raised - {ErrorInternalServerError}  # the bare 503 too


def test_reset_rate_drops_the_connection(sim: SimHandle) -> None:
    sim.admin.set_faults(reset_rate=1.0)
    with pytest.raises((TransportError, requests.exceptions.ConnectionError)):
        _sync(sim, _address(sim))


def test_latency(sim: SimHandle) -> None:
    acc = account(sim, _address(sim))
    acc.calendar  # noqa: B018 - warm up folder and token
    sim.admin.set_faults(latency_ms=300)
    started = time.monotonic()
    list(acc.calendar.sync_items(only_fields=["id"]))
    assert time.monotonic() - started >= 0.3


def test_denied_mailbox_soap_and_http403(sim: SimHandle) -> None:
    address = _address(sim, 3)
    sim.admin.set_faults(deny_mailboxes=[address])
    with pytest.raises(ErrorAccessDenied):
        _sync(sim, address)
    sim.admin.set_faults(deny_mode="http403")
    with pytest.raises(MalformedResponseError, match="Code: 403"):
        _sync(sim, address)
    assert _sync(sim, _address(sim, 2))


def test_ews_blocked_and_unlicensed_are_http403(sim: SimHandle) -> None:
    sim.admin.set_faults(unlicensed=[_address(sim, 1)])
    with pytest.raises(MalformedResponseError, match="Code: 403"):
        _sync(sim, _address(sim, 1))
    assert _sync(sim, _address(sim, 2))
    sim.admin.set_faults(ews_blocked=["contoso"])
    with pytest.raises(MalformedResponseError, match="Code: 403"):
        _sync(sim, _address(sim, 2))
    assert list(account(sim, str(sim.tenant("fabrikam")["mailboxes"][5]), tenant="fabrikam")
                .calendar.sync_items(only_fields=["id"]))  # fmt: skip


def test_nonexistent_mailbox(sim: SimHandle) -> None:
    with pytest.raises(ErrorNonExistentMailbox):
        _sync(sim, "nobody@contoso.example")
    # a mailbox of another tenant does not exist for this app either
    with pytest.raises(ErrorNonExistentMailbox):
        _sync(sim, str(sim.tenant("fabrikam")["mailboxes"][0]))


def test_app_only_token_needs_impersonation(sim: SimHandle) -> None:
    acc = account(sim, _address(sim))
    plain = Account(_address(sim), config=acc.protocol.config, autodiscover=False,
                    access_type=DELEGATE)  # fmt: skip
    with pytest.raises(ErrorInvalidExchangeImpersonationHeaderData):
        list(plain.calendar.sync_items(only_fields=["id"]))


def test_401_for_missing_expired_or_foreign_token(sim: SimHandle) -> None:
    graph = msal_app(sim).acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    answer = _raw_ews(sim, graph["access_token"], address=_address(sim))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "audience" in answer.headers["x-ms-diagnostics"]
    tenant = sim.call(lambda: sim.core.directory.tenant("contoso"))
    expired = sim.call(
        lambda: sim.core.entra.mint(tenant, "https://outlook.office365.com", "1", -60)
    )
    answer = _raw_ews(sim, expired, address=_address(sim))
    assert answer.status_code == 401
    assert "expired" in answer.headers["x-ms-diagnostics"]
    assert _raw_ews(sim, "", address=_address(sim)).status_code == 401


def test_unauthorized_surfaces_in_exchangelib(sim: SimHandle) -> None:
    from exchangelib import OAuth2Credentials

    class BadToken(OAuth2Credentials):  # type: ignore[misc]
        @property
        def access_token(self) -> dict[str, Any]:
            return {"access_token": "not.a.jwt", "token_type": "Bearer", "expires_in": 3600,
                    "expires_at": time.time() + 3600}  # fmt: skip

        @access_token.setter
        def access_token(self, value: Any) -> None:
            pass

    config = Configuration(
        service_endpoint=sim.info["ews_url"], credentials=BadToken(client_id="x", client_secret=None),
        auth_type=OAUTH2, version=Version(build=EXCHANGE_O365), retry_policy=FailFast(),
    )  # fmt: skip
    bad = Account(_address(sim), config=config, autodiscover=False, access_type=IMPERSONATION)
    with pytest.raises(UnauthorizedError):
        list(bad.calendar.sync_items(only_fields=["id"]))


def test_unknown_operation_is_not_a_version_error(sim: SimHandle) -> None:
    token = msal_app(sim).acquire_token_for_client(
        scopes=["https://outlook.office365.com/.default"]
    )["access_token"]
    sim.admin.reset_stats()
    answer = _raw_ews(sim, token, op="FindPeople", address=_address(sim))
    assert answer.status_code == 200
    assert b"ErrorInvalidOperation" in answer.content
    assert sim.admin.stats()["requests"] == {"FindPeople": 1}


def test_version_probe_without_impersonation_fails_as_on_exchange_online(sim: SimHandle) -> None:
    from simclients import MsalCredentials

    # exchangelib guesses the version with a ConvertId that carries no ExchangeImpersonation
    # header; Exchange Online refuses it for app-only tokens (exchangelib #735): set the version
    config = Configuration(service_endpoint=sim.info["ews_url"], auth_type=OAUTH2,
                           credentials=MsalCredentials(msal_app(sim), sim.tenant()["tenant_id"]))  # fmt: skip
    acc = Account(_address(sim), config=config, autodiscover=False, access_type=IMPERSONATION)
    with pytest.raises(TransportError, match="No valid version headers"):
        acc.calendar  # noqa: B018
