"""The simulator as its own process (`python -m calsync.sim`), for the benchmarks.

Run in the benchmark's own process (`start_in_thread`), the simulator shares one GIL with
whatever else runs there; as a process it has a core of its own, like Exchange does, and its
CPU time (from /proc) is its busy time: the ratio to calsync's time is independent of the
machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from calsync.sim import AdminClient


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SimProcess:
    """`with SimProcess(dir, mailboxes=…) as sim:` — `.info`, `.admin`, `.cpu_s()`, `.pid`."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        mailboxes: int = 3,
        events_per_mailbox: int = 20,
        seed: int = 1,
        tenants: int = 1,
        heartbeat_s: float = 30.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "calsync.sim", "--state-dir", str(self.state_dir),
             "--mailboxes", str(mailboxes), "--events-per-mailbox", str(events_per_mailbox),
             "--seed", str(seed), "--tenants", str(tenants), "--heartbeat", str(heartbeat_s)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if "ready" not in line:
            self.stop()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.pid = self._proc.pid
        self.info: dict[str, Any] = json.loads((self.state_dir / "sim.json").read_text())
        self.admin = AdminClient(self.info["admin_url"], self.info["ca_file"])

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()
