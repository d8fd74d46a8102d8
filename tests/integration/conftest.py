from __future__ import annotations

import pytest

from integration.apis import APIS


@pytest.fixture(scope="module", params=APIS)
def api(request: pytest.FixtureRequest) -> str:
    """The Exchange API a test runs over ("ews" or "graph"); see ``integration.apis``."""
    return str(request.param)
