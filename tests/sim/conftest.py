"""Fixtures for the simulator's fidelity tests: the real msal and exchangelib against it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from exchangelib.protocol import BaseProtocol
from simclients import make_adapter_cls

from calsync.sim import SimHandle, start_in_thread


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    handle = start_in_thread(
        tmp_path_factory.mktemp("sim"), mailboxes=6, events_per_mailbox=15, seed=7,
        tenants=2, heartbeat_s=0.5,
    )  # fmt: skip
    with handle:
        yield handle


@pytest.fixture(autouse=True)
def _per_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """For tests of the shared simulator: exchangelib trusts its CA (set per test, so that other
    suites' exchangelib clients are never affected) and the faults are cleared afterwards."""
    if "sim" not in request.fixturenames:
        yield
        return
    handle: SimHandle = request.getfixturevalue("sim")
    old = BaseProtocol.HTTP_ADAPTER_CLS
    BaseProtocol.HTTP_ADAPTER_CLS = make_adapter_cls(handle.ca_file)
    try:
        yield
    finally:
        BaseProtocol.HTTP_ADAPTER_CLS = old
        handle.admin.clear_faults()


@pytest.fixture
def contoso(sim: SimHandle) -> dict[str, Any]:
    return sim.tenant("contoso")
