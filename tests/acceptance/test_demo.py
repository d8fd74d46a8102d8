"""`calsync demo` as a newcomer runs it: every demo mailbox syncs, edits arrive, Ctrl-C stops."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from daemon_proc import Proc

pytestmark = pytest.mark.acceptance


def test_demo_syncs_every_mailbox_shows_edits_arriving_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    demo = Proc(["demo", "--dir", str(tmp_path / "demo"), "--mailboxes", "2"])
    try:
        demo.wait(lambda: demo.stdout, 20, "the folder line on stdout")
        assert str(tmp_path / "demo") in demo.stdout[0]
        started = demo.wait_event("daemon_started", 30)
        assert started["mailboxes"] == 2
        demo.wait(
            lambda: len({e["mailbox"] for e in demo.since(0, "sync_finished")}) == 2,
            30,
            "sync_finished for both demo mailboxes",
        )
        arrived = demo.wait_event("demo_edit_arrived", 30, direction="exchange -> local")
        assert "moved in Outlook" in arrived["subject"]
        demo.wait_event("demo_edit_arrived", 15, direction="local -> exchange")
        demo.wait_event("demo_ready", 15)
        code = demo.stop(signal.SIGINT, timeout=20)
    finally:
        demo.close()
    assert code == 0
    assert demo.events[-1]["event"] == "daemon_stopped"
    assert {p.name for p in (tmp_path / "demo").iterdir()} >= {
        "sim.json",
        "calsync.toml",
        "calsync.db",
    }
