from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sim_stack import Stack, build, sim_module


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    state: Path = tmp_path_factory.mktemp("sim")
    with sim_module.start_in_thread(state, mailboxes=20, events_per_mailbox=12, seed=7) as handle:
        yield handle


@pytest.fixture
def stack(sim: Any) -> Iterator[Stack]:
    sim.admin.clear_faults()
    built = build(sim)
    yield built
    sim.admin.clear_faults()
    built.client.close()
