"""A pytest plugin: every log line the test suite produces is scanned for configured secrets.

Registered from ``tests/conftest.py`` (``pytest_plugins``). What it reads:

- in-process: every line calsync's log pipeline renders (``structlog``'s ``ProcessorFormatter``,
  which renders the stdlib logs of the libraries too) and each test's captured stdout/stderr;
- subprocesses: ``SECRET_SCAN_LOG_DIR`` (a session folder) is exported, with a
  ``sitecustomize`` on ``PYTHONPATH`` that makes every ``python -m calsync …`` child copy its
  stderr and stdout there through ``tee`` (so even a SIGKILLed daemon loses nothing), and every
  ``*.log`` file under pytest's base temporary folder is read too.

What it looks for: the client secrets, passwords and private keys that the simulators and the
tests configured (every ``sim.json``, ``*.secret``, ``*.pem`` and ``*.toml`` under the base
temporary folder) and anything shaped like a JWT (the simulator's tokens and client assertions
are JWTs). A leak makes the session fail, naming the file and line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENV = "SECRET_SCAN_LOG_DIR"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
MIN_SECRET = 8  # shorter values (test placeholders like "x") would match anywhere
SITECUSTOMIZE = """\
import os, sys
_dir = os.environ.get("SECRET_SCAN_LOG_DIR")
if _dir and sys.orig_argv[1:3] == ["-m", "calsync"] and os.path.isdir(_dir):
    import subprocess
    _path = os.path.join(_dir, "proc-%d.log" % os.getpid())
    for _fd in (1, 2):
        try:
            _tee = subprocess.Popen(["tee", "-a", _path], stdin=subprocess.PIPE, stdout=_fd,
                                    start_new_session=True)
        except OSError:
            break
        os.dup2(_tee.stdin.fileno(), _fd)
        _tee.stdin.close()
"""


@dataclass(frozen=True)
class Leak:
    source: str
    line_no: int
    what: str
    line: str

    def describe(self) -> str:
        return f"{self.source}:{self.line_no}: {self.what} in: {self.line[:300]}"


def scan(lines: Iterable[tuple[str, int, str]], secrets: Iterable[str]) -> list[Leak]:
    """Leaks among ``(source, line number, text)`` lines: a secret value or a JWT."""
    values = sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)
    leaks: list[Leak] = []
    for source, number, text in lines:
        for value in values:
            if value in text:
                leaks.append(Leak(source, number, f"a configured secret ({value[:3]}…)", text))
                break
        else:
            found = JWT.search(text)
            if found:
                leaks.append(Leak(source, number, f"a JWT ({found.group()[:12]}…)", text))
    return leaks


def secrets_under(folder: Path) -> set[str]:
    """The secret values configured under ``folder``: simulator files, secret files, private
    keys, and client secrets / passwords written into config files."""
    found: set[str] = set()
    for path in _files(folder, ("sim.json",)):
        found |= _sim_json(path)
    for path in _files(folder, (".secret",)):
        found.add(_read(path).strip())
    for path in _files(folder, (".pem", ".key")):
        found |= _private_key_lines(_read(path))
    for path in _files(folder, (".toml",)):
        found |= _toml_secrets(path)
    return {s for s in found if len(s) >= MIN_SECRET}


def _files(folder: Path, endings: tuple[str, ...]) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for root, _dirs, names in os.walk(folder):
        for name in names:
            if name.endswith(endings):
                yield Path(root, name)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _sim_json(path: Path) -> set[str]:
    try:
        info = json.loads(_read(path))
    except ValueError:
        return set()
    out: set[str] = set()
    for tenant in info.get("tenants") or []:
        for key in ("client_secret", "password"):
            if isinstance(tenant.get(key), str):
                out.add(tenant[key])
    return out


def _private_key_lines(text: str) -> set[str]:
    out: set[str] = set()
    for block in re.findall(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)-----END", text, re.S):
        out |= {line.strip() for line in block.splitlines() if len(line.strip()) >= 40}
    return out


def _toml_secrets(path: Path) -> set[str]:
    try:
        data = tomllib.loads(_read(path))
    except (tomllib.TOMLDecodeError, ValueError):
        return set()
    out: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("client_secret", "password", "client_state") and isinstance(inner, str):
                    out.add(inner)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(data)
    return out


def _log_lines(path: Path) -> Iterator[tuple[str, int, str]]:
    for number, line in enumerate(_read(path).splitlines(), start=1):
        yield str(path), number, line


class SecretScan:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.folder = Path(tempfile.mkdtemp(prefix="calsync-test-logs-"))
        site = self.folder / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        self._saved = {k: os.environ.get(k) for k in (ENV, "PYTHONPATH")}
        os.environ[ENV] = str(self.folder)
        path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(site) + (os.pathsep + path if path else "")
        self.inprocess = (self.folder / "in-process.log").open("a", encoding="utf-8")
        self.leaks: list[Leak] = []
        self._patch_formatter()

    def _patch_formatter(self) -> None:
        import structlog

        original = structlog.stdlib.ProcessorFormatter.format
        sink = self.inprocess

        def format(formatter: Any, record: Any) -> str:
            text: str = original(formatter, record)
            sink.write(text + "\n")
            return text

        structlog.stdlib.ProcessorFormatter.format = format  # type: ignore[method-assign]
        self._restore = lambda: setattr(structlog.stdlib.ProcessorFormatter, "format", original)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, text in (("stdout", report.capstdout), ("stderr", report.capstderr)):
            for line in text.splitlines():
                self.inprocess.write(f"[{report.nodeid} {report.when} {name}] {line}\n")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._restore()
        self.inprocess.close()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        base = self._basetemp()
        secrets = secrets_under(base) if base is not None else set()
        logs = sorted(p for p in self.folder.glob("*.log"))
        if base is not None:
            logs += sorted(_files(base, (".log",)))
        self.leaks = scan((line for path in logs for line in _log_lines(path)), secrets)
        self.checked = (len(logs), len(secrets))
        if self.leaks and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if not self.leaks:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _basetemp(self) -> Path | None:
        factory = getattr(self.config, "_tmp_path_factory", None)
        if factory is None:
            return None
        try:
            return Path(factory.getbasetemp())
        except OSError:
            return None

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not hasattr(self, "checked"):
            return
        files, secrets = self.checked
        if not self.leaks:
            terminalreporter.write_line(
                f"secret scan: no secret in {files} log files ({secrets} secrets checked)"
            )
            return
        terminalreporter.section("secrets leaked into logs", sep="=", red=True, bold=True)
        for leak in self.leaks[:50]:
            terminalreporter.write_line(leak.describe())
        terminalreporter.write_line(f"(logs kept in {self.folder})")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or sys.platform == "win32":
        return
    config.pluginmanager.register(SecretScan(config), "calsync-secret-scan")
