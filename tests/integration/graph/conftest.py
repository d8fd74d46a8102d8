from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from graph_stack import GraphStack, graph_stack

from calsync.sim import start_in_thread


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with start_in_thread(
        tmp_path_factory.mktemp("sim"), mailboxes=8, events_per_mailbox=30, seed=5
    ) as handle:
        yield handle


@pytest.fixture
def stack(sim: Any) -> Iterator[GraphStack]:
    sim.admin.clear_faults()
    built = graph_stack(sim, page_size=50)
    yield built
    sim.admin.clear_faults()
    built.close()
