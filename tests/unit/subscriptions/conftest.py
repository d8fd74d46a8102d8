"""Fixtures of the subscription tests (the fakes live in ``subscription_fakes``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from subscription_fakes import TENANT, Changes, FakeBackend, FakeServer, Rig

from calsync.subscriptions import SubscriptionSupervisor, SupervisorSettings


@pytest.fixture
def make_rig() -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(**settings: object) -> Rig:
        server = FakeServer()
        backend = FakeBackend(server)
        changes = Changes()
        values: dict[str, object] = {
            "max_subscriptions_per_connection": 3,
            "max_connections": 10,
            "notification_debounce_ms": 20,
            "reconnect_initial_s": 0.05,
            "reconnect_max_s": 0.2,
            "retry_failed_s": 60.0,
            "stop_grace_s": 2.0,
        }
        values.update(settings)
        supervisor = SubscriptionSupervisor(
            {TENANT: backend},
            changes,
            SupervisorSettings(**values),  # type: ignore[arg-type]
        )
        rig = Rig(server, backend, changes, supervisor)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.supervisor.stop()
