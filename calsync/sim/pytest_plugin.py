"""pytest fixtures for a simulator: `pytest_plugins = ["calsync.sim.pytest_plugin"]`.

- `calsync_sim`: one simulator per test session (3 mailboxes x 20 events, 2 tenants; fresh
  faults for every test).
- `calsync_sim_factory(**options)`: more simulators with other options (same keywords as
  `start_in_thread`), stopped at the end of the test.

Starting one takes about half a second (key generation; calendars are generated lazily).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from calsync.sim.thread import SimHandle, start_in_thread


@pytest.fixture(scope="session")
def _calsync_sim_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with start_in_thread(tmp_path_factory.mktemp("calsync-sim"), tenants=2) as handle:
        yield handle


@pytest.fixture
def calsync_sim(_calsync_sim_session: SimHandle) -> Iterator[SimHandle]:
    yield _calsync_sim_session
    _calsync_sim_session.admin.clear_faults()


@pytest.fixture
def calsync_sim_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., SimHandle]]:
    started: list[SimHandle] = []

    def start(**options: Any) -> SimHandle:
        handle = start_in_thread(tmp_path_factory.mktemp("calsync-sim"), **options)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
