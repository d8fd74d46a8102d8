"""Tenant gates: throttling slows one tenant only; a pause lets one probe run through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calsync.scheduler.tenants import TenantGates

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_a_throttled_tenant_is_gated_until_its_back_off_ends_and_others_are_not() -> None:
    gates = TenantGates()
    assert gates.throttle("a", NOW + timedelta(seconds=5))
    assert not gates.throttle("a", NOW + timedelta(seconds=3))  # same window, not extended
    gate = gates.check("a", NOW + timedelta(seconds=1))
    assert gate is not None and gate.reason == "throttled"
    assert gate.until == NOW + timedelta(seconds=5)
    assert gates.check("b", NOW) is None
    assert gates.check("a", NOW + timedelta(seconds=5)) is None
    assert gates.throttled_until("a") is None


def test_a_paused_tenant_lets_one_probe_through_per_retry_and_resumes() -> None:
    gates = TenantGates(auth_retry_s=900)
    assert gates.pause("a", error_code="AADSTS7000222", message="expired", hint="h", now=NOW)
    assert not gates.pause("a", error_code="AADSTS7000222", message="expired", hint="h", now=NOW)
    gate = gates.check("a", NOW + timedelta(seconds=10))
    assert gate is not None and gate.reason == "paused" and gate.pause is not None
    assert gate.pause.error_code == "AADSTS7000222"
    probe_time = NOW + timedelta(seconds=900)
    assert gates.check("a", probe_time) is None  # the probe
    again = gates.check("a", probe_time)  # a sibling right after the probe waits again
    assert again is not None and again.until == probe_time + timedelta(seconds=900)
    assert gates.check("b", NOW) is None
    assert gates.resume("a")
    assert not gates.resume("a")
    assert gates.check("a", NOW) is None
