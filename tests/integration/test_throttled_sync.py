"""ErrorServerBusy on every request: each mailbox reports `throttled`, no thread deadlocks.

exchangelib shrinks its session pool on ErrorServerBusy while holding a non-reentrant lock;
with all sessions checked out by other worker threads that deadlocked a whole tenant.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from calsync.cli import main
from calsync.sim import start_in_thread


def test_every_mailbox_throttled_ends_promptly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_in_thread(tmp_path, mailboxes=6, events_per_mailbox=3) as sim:
        config = tmp_path / "calsync.toml"
        assert main(["sync", "--once", "--config", str(config)]) == 0
        capsys.readouterr()
        sim.admin.set_faults(server_busy_rate=1.0, server_busy_backoff_ms=500)
        result: list[int] = []
        worker = threading.Thread(
            target=lambda: result.append(
                main(["sync", "--once", "--json", "--config", str(config)])
            ),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive(), "sync --once hung under ErrorServerBusy"
        assert result == [1]
        report = json.loads(capsys.readouterr().out)
        assert {m["status"] for m in report["mailboxes"]} == {"throttled"}
        assert {m["error_code"] for m in report["mailboxes"]} == {"ErrorServerBusy"}
