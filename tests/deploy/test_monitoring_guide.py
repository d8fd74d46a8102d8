"""deploy/MONITORING.md cannot drift from calsync/log_events.py, and its journald alerts work.

The journald commands are run as an operator would paste them, against a stand-in
``journalctl`` that prints prepared journal entries (``-o json`` shape: MESSAGE holds the line).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calsync.log_events import CATALOGUE
from deploy import gen_monitoring
from deploy.alerts import ALERTS

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "deploy" / "MONITORING.md"
ALERT = {alert.key: alert for alert in ALERTS}


def test_guide_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploy.gen_monitoring", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_event_and_field_is_in_the_guide() -> None:
    text = GUIDE.read_text()
    for spec in CATALOGUE:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{spec.name}` |"))
        for field in spec.fields:
            assert f"`{field}`" in row, (spec.name, field)


def test_check_fails_on_a_stale_guide_and_the_generator_repairs_it(tmp_path: Path) -> None:
    stale = tmp_path / "MONITORING.md"
    original = GUIDE.read_text()
    stale.write_text(original.replace("| `sync_finished` |", "| `sync_done` |"))
    assert gen_monitoring.main(["--check", "--path", str(stale)]) == 1
    assert gen_monitoring.main(["--path", str(stale)]) == 0
    assert stale.read_text() == original


def test_missing_markers_are_an_error(tmp_path: Path) -> None:
    broken = tmp_path / "MONITORING.md"
    broken.write_text(GUIDE.read_text().replace("<!-- generated:alerts -->", ""))
    assert gen_monitoring.main(["--check", "--path", str(broken)]) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"events": ("sync_failed", "sync_ended")}, "unknown event 'sync_ended'"),
        ({"fields": ("mailbox", "attempts")}, "field 'attempts'"),
        ({"loki": '{unit="x"} | json | event="sync_lost"'}, "undeclared event 'sync_lost'"),
        ({"elastic": "calsync.level : error"}, "uses none of its events"),
    ],
)
def test_an_alert_that_drifted_is_refused(change: dict[str, object], message: str) -> None:
    drifted = dataclasses.replace(ALERT["mailbox-failing"], **change)  # type: ignore[arg-type]
    with pytest.raises(gen_monitoring.DriftError, match=message):
        gen_monitoring.check_alerts((drifted,))


# --- the journald commands, run for real ----------------------------------------------------------

NOW = datetime.now(UTC)


def _line(event: str, minutes_ago: float, **fields: object) -> dict[str, object]:
    stamp = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {"MESSAGE": json.dumps({**fields, "event": event, "level": "info", "timestamp": stamp})}


def _run_journald(alert_key: str, entries: list[dict[str, object]], tmp_path: Path) -> list[str]:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: the journald alert commands are not run")
    noise: list[dict[str, object]] = [
        {"MESSAGE": "Traceback (most recent call last):"},  # not JSON: ignored
        {"MESSAGE": [104, 105]},  # journald's form of a non-UTF-8 message: ignored
    ]
    journal = tmp_path / "journal.json"
    journal.write_text("".join(json.dumps(e) + "\n" for e in [*noise, *entries]))
    fake = tmp_path / "bin" / "journalctl"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ncat '{journal}'\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", ALERT[alert_key].journald],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_journald_mailbox_failing(tmp_path: Path) -> None:
    failed = {"error_code": "ErrorAccessDenied", "hint": "fix the policy", "tenant": "t"}
    entries = [
        _line("sync_finished", 180, mailbox="a@x"),
        _line("sync_failed", 120, mailbox="a@x", **failed),
        _line("sync_failed", 10, mailbox="a@x", **failed),
        _line("sync_failed", 120, mailbox="b@x", **failed),  # recovered since
        _line("sync_finished", 30, mailbox="b@x"),
        _line("sync_finished", 120, mailbox="c@x"),  # failing for 20 minutes only
        _line("sync_failed", 20, mailbox="c@x", **failed),
        _line("sync_failed", 90, mailbox="d@x", **failed),  # never succeeded
    ]
    out = _run_journald("mailbox-failing", entries, tmp_path)
    assert [line.split()[0] for line in out] == ["a@x", "d@x"]
    assert "ErrorAccessDenied fix the policy" in out[0]


def test_journald_auth_failed(tmp_path: Path) -> None:
    entries = [
        _line("sync_finished", 3, mailbox="a@x", tenant="contoso"),
        _line("auth_failed", 2, tenant="contoso", error_code="AADSTS7000222", hint="renew it"),
    ]
    out = _run_journald("auth-failed", entries, tmp_path)
    assert len(out) == 1
    assert "contoso AADSTS7000222: renew it" in out[0]


def test_journald_secret_expiring(tmp_path: Path) -> None:
    entries = [
        _line("secret_expiring", 60, tenant="far", credential="client_secret", days_left=20),
        _line("secret_expiring", 60, tenant="near", credential="client_secret", days_left=7),
        _line("secret_expired", 60, tenant="gone", credential="certificate"),
    ]
    out = _run_journald("secret-expiring", entries, tmp_path)
    assert [line.split()[0] for line in out] == ["near", "gone"]


def test_journald_throttling(tmp_path: Path) -> None:
    entries = [_line("ews_throttled", 5, tenant="busy", back_off_s=2.0) for _ in range(11)]
    entries += [_line("tenant_throttled", 5, tenant="calm", back_off_s=2.0) for _ in range(3)]
    out = _run_journald("throttling", entries, tmp_path)
    assert len(out) == 1
    assert out[0].startswith("busy: 11 throttling answers")


def test_journald_no_sync(tmp_path: Path) -> None:
    quiet = [_line("daemon_heartbeat", 1, healthy=3)]
    assert _run_journald("no-sync", quiet, tmp_path) == ["no sync_finished for 30 minutes"]


def test_journald_no_sync_quiet_when_syncing(tmp_path: Path) -> None:
    busy = [_line("sync_finished", 1, mailbox="a@x")]
    assert _run_journald("no-sync", busy, tmp_path) == []
