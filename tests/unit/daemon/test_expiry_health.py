"""Secret expiry notices, and `calsync health` against a store's heartbeat row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from calsync.cli import main
from calsync.config.load import validate
from calsync.daemon.expiry import expiry_notices, log_expiry
from calsync.store.sql import SqlStore

GUID = "11111111-2222-3333-4444-555555555555"


def config_with(expires: date, tmp_path: Path) -> object:
    secret = tmp_path / "s.secret"
    secret.write_text("abc8Q~secret-value-for-the-test", encoding="utf-8")
    raw = {
        "tenants": [
            {"name": "contoso", "tenant_id": GUID, "client_id": GUID,
             "client_secret_file": str(secret), "secret_expires": expires},
        ],
        "mailboxes": [{"address": "a@contoso.example", "tenant": "contoso"}],
    }  # fmt: skip
    return validate(raw, today=date(2026, 1, 1))


@pytest.mark.parametrize(
    ("days_ahead", "event", "days_left"),
    [(45, None, None), (30, "secret_expiring", 30), (1, "secret_expiring", 1),
     (0, "secret_expiring", 0), (-1, "secret_expired", None)],
)  # fmt: skip
def test_secret_expiry_warns_daily_from_30_days_and_errors_once_passed(
    tmp_path: Path, days_ahead: int, event: str | None, days_left: int | None
) -> None:
    today = date(2026, 11, 22)
    config = config_with(today + timedelta(days=days_ahead), tmp_path)
    with capture_logs() as logs:
        notices = log_expiry(config, today)  # type: ignore[arg-type]
    assert [e["event"] for e in logs] == ([event] if event else [])
    if event == "secret_expiring":
        assert logs[0]["days_left"] == days_left and logs[0]["tenant"] == "contoso"
        assert "Entra ID" in logs[0]["hint"]
    if event == "secret_expired":
        assert logs[0]["expired"] == (today - timedelta(days=1)).isoformat()
    assert len(notices) == (1 if event else 0)
    assert expiry_notices(config, today, warn_days=60)  # type: ignore[arg-type]


def test_health_is_0_only_while_the_heartbeat_is_fresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "calsync.db"
    config = tmp_path / "calsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    store = SqlStore(f"sqlite:///{db}", upgrade=True)
    try:
        assert main(["health", "--config", str(config)]) == 1
        assert "no heartbeat" in capsys.readouterr().out
        store.write_heartbeat(datetime.now(UTC) - timedelta(seconds=5))
        assert main(["health", "--config", str(config)]) == 0
        store.write_heartbeat(datetime.now(UTC) - timedelta(seconds=61))
        assert main(["health", "--config", str(config)]) == 1
        assert "unhealthy" in capsys.readouterr().out
    finally:
        store.close()
