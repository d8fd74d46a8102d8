"""`check` diagnostics, auth failures and throttling against the simulator."""

from __future__ import annotations

from typing import Any

import pytest
from sim_stack import Stack, build

from calsync.errors import AccessDenied, ThrottledError
from calsync.ews import TenantTarget, check_all, check_mailbox, discover_ews_url
from calsync.ews.errors import HINT_ACCESS_DENIED, HINT_NOT_FOUND

MISSING = "nobody@contoso.example"


def _targets(stack: Stack) -> list[TenantTarget]:
    addresses = [*stack.tenant["mailboxes"][:19], MISSING]
    return [TenantTarget(stack.tenant["name"], stack.client, stack.provider, addresses)]


@pytest.mark.parametrize("deny_mode", ["soap", "http403"])
def test_check_reports_exactly_the_broken_mailboxes(stack: Stack, deny_mode: str) -> None:
    denied = stack.tenant["mailboxes"][3:5]
    stack.sim.admin.set_faults(deny_mailboxes=denied, deny_mode=deny_mode)
    report = check_all(_targets(stack), workers=8)
    assert not report.ok
    assert [t.status for t in report.tenants] == ["ok"]
    by_address = {m.address: m for m in report.mailboxes}
    assert len(by_address) == 20
    broken = {a: m for a, m in by_address.items() if m.status != "ok"}
    assert set(broken) == {*denied, MISSING}
    for address in denied:
        assert broken[address].status == "access_denied"
        assert broken[address].hint == HINT_ACCESS_DENIED
        expected = "ErrorAccessDenied" if deny_mode == "soap" else "HTTP403"
        assert broken[address].error_code == expected
    assert broken[MISSING].status == "not_found"
    assert broken[MISSING].error_code == "ErrorNonExistentMailbox"
    assert broken[MISSING].hint == HINT_NOT_FOUND
    document = report.as_dict()
    assert set(document) == {"tenants", "mailboxes"}
    assert set(document["mailboxes"][0]) == {"address", "tenant", "status", "error_code", "hint"}


def test_check_with_expired_secret(stack: Stack) -> None:
    stack.sim.admin.set_faults(expire_secret=stack.tenant["name"])
    fresh = build(stack.sim)  # a new process: no token cached yet
    try:
        report = check_all(_targets(fresh))
    finally:
        fresh.client.close()
    (tenant,) = report.tenants
    assert tenant.status == "auth_failed"
    assert tenant.error_code == "AADSTS7000222"
    assert tenant.hint == (
        "client secret expired: create a new secret in Entra ID → App registrations → "
        "Certificates & secrets and update client_secret_file secrets/contoso"
    )
    assert {m.status for m in report.mailboxes} == {"auth_failed"}
    assert {m.error_code for m in report.mailboxes} == {"AADSTS7000222"}


def test_check_with_certificate(stack: Stack) -> None:
    denied = stack.tenant["mailboxes"][3:5]
    stack.sim.admin.set_faults(deny_mailboxes=denied)
    with_cert = build(stack.sim, certificate=True)
    try:
        report = check_all(_targets(with_cert), workers=8)
    finally:
        with_cert.client.close()
    assert [t.status for t in report.tenants] == ["ok"]
    broken = {m.address: m.status for m in report.mailboxes if m.status != "ok"}
    assert broken == {denied[0]: "access_denied", denied[1]: "access_denied", MISSING: "not_found"}
    assert with_cert.provider.certificate is not None
    assert with_cert.provider.certificate.sha1_thumbprint == stack.tenant["certificate_thumbprint"]


@pytest.mark.parametrize(
    ("faults", "status", "code"),
    [
        ({"ews_blocked": ["contoso"]}, "ews_blocked", "HTTP403"),
        ({"unlicensed": ["user002@contoso.example"]}, "unlicensed", "HTTP403"),
        ({"server_busy_rate": 1.0, "server_busy_backoff_ms": 50}, "throttled", "ErrorServerBusy"),
    ],
)
def test_check_statuses(stack: Stack, faults: dict[str, Any], status: str, code: str) -> None:
    stack.sim.admin.set_faults(**faults)
    result = check_mailbox(stack.client, "user002@contoso.example")
    assert (result.status, result.error_code) == (status, code)
    assert result.hint


def test_throttling_backs_off_per_mailbox(sim: Any) -> None:
    waits: list[float] = []
    stack = build(sim, max_inline_backoff_s=5.0, max_attempts=3)
    stack.client._sleep = waits.append  # record the back-off instead of sleeping
    busy, calm = stack.mailbox(8), stack.mailbox(9)
    sim.admin.set_faults(
        server_busy_rate=1.0, server_busy_backoff_ms=1500, scope={"mailboxes": [busy.address]}
    )
    try:
        with pytest.raises(ThrottledError) as caught:
            list(stack.side.fetch_changes(busy, None))
        assert caught.value.retry_after == 1.5
        assert caught.value.error_code == "ErrorServerBusy"
        assert len(waits) == 2  # two inline back-offs of this mailbox, then the scheduler's turn
        count = len(waits)
        assert list(stack.side.fetch_changes(calm, None))  # the other mailbox does not wait
        assert len(waits) == count
    finally:
        sim.admin.clear_faults()
        stack.client.close()


def test_access_denied_while_syncing(stack: Stack) -> None:
    stack.sim.admin.set_faults(deny_mailboxes=[stack.mailbox(2).address])
    with pytest.raises(AccessDenied):
        list(stack.side.fetch_changes(stack.mailbox(2), None))


def test_autodiscover_v2(stack: Stack) -> None:
    info = stack.sim.info
    url = discover_ews_url(
        stack.mailbox(0).address, info["authority"], ca_file=info["ca_file"], fallback=None
    )
    assert url == info["ews_url"]
