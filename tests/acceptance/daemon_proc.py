"""Run a calsync command as a subprocess and wait on its JSON log lines (with deadlines).

A background job of a non-interactive shell starts with SIGINT ignored, and children inherit
that. No ``preexec_fn`` is needed to undo it (and it is unsafe with threads): ``calsync run`` and
``calsync demo`` install their own SIGINT/SIGTERM handlers, which replace an inherited
``SIG_IGN``; the tests send SIGINT only after ``daemon_started``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Event = dict[str, Any]


def calsync(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "calsync", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Proc:
    """``calsync <args>``; stderr lines parsed as JSON events (other lines kept as text)."""

    def __init__(self, args: Sequence[str], *, cwd: Path | None = None) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "calsync", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.events: list[Event] = []
        self.text: list[str] = []
        self.stdout: list[str] = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_stderr(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            with self._cond:
                self.text.append(line.rstrip("\n"))
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                if isinstance(event, dict):
                    self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_stdout(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.stdout.append(line.rstrip("\n"))
                self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def since(self, mark: int, name: str | None = None, **fields: Any) -> list[Event]:
        with self._cond:
            found = self.events[mark:]
        return [
            e
            for e in found
            if (name is None or e.get("event") == name)
            and all(e.get(k) == v for k, v in fields.items())
        ]

    def wait(self, condition: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
        """Wait until ``condition()`` is truthy (re-checked on every new log line)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = condition()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not result):
                    tail = "\n".join(self.text[-30:])
                    raise AssertionError(f"timed out waiting for {what}; last lines:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def wait_event(self, name: str, timeout: float, mark: int = 0, **fields: Any) -> Event:
        found: list[Event] = self.wait(
            lambda: self.since(mark, name, **fields), timeout, f"{name} {fields}"
        )
        return found[0]

    def send(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        try:
            code = self.popen.wait(timeout)
        finally:
            self.kill()
        for t in self._threads:
            t.join(timeout=5)
        return code

    def close(self) -> None:
        self.kill()
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)
