"""The pytest plugin other test suites use to get a simulator."""

from __future__ import annotations

from collections.abc import Callable

from calsync.sim import SimHandle

pytest_plugins = ["calsync.sim.pytest_plugin"]


def test_plugin_fixtures(
    calsync_sim: SimHandle, calsync_sim_factory: Callable[..., SimHandle]
) -> None:
    assert [t["name"] for t in calsync_sim.info["tenants"]] == ["contoso", "fabrikam"]
    calsync_sim.admin.set_faults(latency_ms=1)
    other = calsync_sim_factory(mailboxes=1, events_per_mailbox=4)
    assert other.admin.mailboxes() == [
        {"address": "user001@contoso.example", "tenant": "contoso", "events": 4}
    ]
    assert other.url != calsync_sim.url
