"""Keys a SIGHUP cannot apply are named, so the operator knows a restart is due."""

from __future__ import annotations

from typing import Any

import pytest

from calsync.config.load import validate
from calsync.daemon.reload import _needs_restart

BASE: dict[str, Any] = {"store": {"url": "sqlite:////tmp/calsync-reload-keys.db"}}


def with_table(table: str, **keys: Any) -> dict[str, Any]:
    return {**BASE, table: keys}


@pytest.mark.parametrize(
    ("table", "before", "after", "named"),
    [
        (
            "daemon",
            {"max_concurrent_syncs": 8},
            {"max_concurrent_syncs": 4},
            "daemon.max_concurrent_syncs",
        ),
        ("logging", {"level": "info"}, {"level": "debug"}, "logging.level"),
        ("webhooks", {"listen_port": 8443}, {"listen_port": 9443}, "webhooks.listen_port"),
        (
            "webhooks",
            {"public_url": "https://a.example/n"},
            {"public_url": "https://b.example/n"},
            "webhooks.public_url",
        ),
        (
            "webhooks",
            {"client_state": "one-state"},
            {"client_state": "two-state"},
            "webhooks.client_state",
        ),
    ],
)
def test_a_change_that_needs_a_restart_is_named(
    table: str, before: dict[str, Any], after: dict[str, Any], named: str
) -> None:
    old, new = validate(with_table(table, **before)), validate(with_table(table, **after))
    assert _needs_restart(old, new) == [named]


def test_keys_a_reload_applies_are_not_named() -> None:
    old = validate(with_table("daemon", poll_interval=300))
    new = validate(with_table("daemon", poll_interval=60))
    assert _needs_restart(old, new) == []
