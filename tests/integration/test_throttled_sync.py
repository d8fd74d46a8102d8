"""The server throttles every request: each mailbox reports `throttled`, no thread deadlocks.

Over EWS that is ``ErrorServerBusy`` with ``BackOffMilliseconds``; over Graph ``429`` (Outlook's
``ApplicationThrottled``) and ``503``, both with ``Retry-After``. The back-off the server asked
for is what the canonical log line reports.

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
from integration.apis import THROTTLED, use_api

# fault -> (error code, back-off the server asks for in seconds) per API
FAULTS = {
    "ews": {"server_busy_rate": ("ErrorServerBusy", 0.5)},
    "graph": {
        "server_busy_rate": (THROTTLED["graph"], 1.0),
        "error_rate": ("ServiceUnavailable", 1.0),
    },
}


def sync_json(config: Path, result: list[int]) -> None:
    result.append(main(["sync", "--once", "--json", "--config", str(config)]))


def test_every_mailbox_throttled_ends_promptly(
    tmp_path: Path, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_in_thread(tmp_path, mailboxes=6, events_per_mailbox=3) as sim:
        config = use_api(tmp_path / "calsync.toml", api)
        assert main(["sync", "--once", "--config", str(config)]) == 0
        capsys.readouterr()
        for fault, (code, back_off) in FAULTS[api].items():
            sim.admin.clear_faults()
            sim.admin.set_faults(**{fault: 1.0}, server_busy_backoff_ms=500)
            result: list[int] = []
            worker = threading.Thread(target=sync_json, args=(config, result), daemon=True)
            worker.start()
            worker.join(timeout=60)
            assert not worker.is_alive(), f"sync --once hung under {code}"
            assert result == [1]
            captured = capsys.readouterr()
            report = json.loads(captured.out)
            assert {m["status"] for m in report["mailboxes"]} == {"throttled"}
            assert {m["error_code"] for m in report["mailboxes"]} == {code}
            lines = [json.loads(x) for x in captured.err.splitlines() if x.startswith("{")]
            throttled = [x for x in lines if x["event"] == "ews_throttled"]
            assert len(throttled) == 6
            assert {x["back_off_s"] for x in throttled} == {back_off}
